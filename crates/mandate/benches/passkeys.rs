//! Sign-ins per second over real HTTP against the release binary (SQLite, or PostgreSQL with
//! `BENCH_BACKEND=postgres`): a passkey sign-in (the options request, an ES256 assertion made
//! by a software authenticator in this process, the answer checked by the server: two
//! requests) side by side with a password sign-in (one request, Argon2id within the server's
//! hashing bound). Each connection signs in its own person (a passkey's counter must go up),
//! through the account sign-in (`return_to`), so no OAuth client takes part.
//!
//! ```sh
//! cargo bench -p mandate --bench passkeys            # BENCH_SECS=10 BENCH_CONNS=16
//! ```

#[path = "../tests/e2e/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::webauthn::{SoftPasskey, UV};
use common::*;
use serde_json::Value;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A person's browser on the account sign-in page: (cookie client, csrf).
async fn page(issuer: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = http
        .get(format!(
            "{issuer}/account/login?return_to=/account/passkeys"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (http, hidden(&html, "csrf").expect("csrf"))
}

/// Register a passkey for `user` (password sign-in, then the account page).
async fn enrol(s: &Server, issuer: &str, user: &str) -> SoftPasskey {
    let (http, csrf) = page(issuer).await;
    let r = http
        .post(format!("{issuer}/account/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("return_to", "/account/passkeys"),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let options: Value = http
        .post(format!("{issuer}/account/passkeys/options"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (key, answer) = SoftPasskey::register(&options, &s.public_base(), UV);
    let r = http
        .post(format!("{issuer}/account/passkeys"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ceremony", options["ceremony"].as_str().unwrap()),
            ("credential", answer.as_str()),
            ("name", "bench"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    key
}

/// One passkey sign-in: options, assertion, answer. Ok when the server signed the person in.
async fn passkey_sign_in(issuer: &str, origin: &str, key: &mut SoftPasskey) -> bool {
    let (http, csrf) = page(issuer).await;
    let start = [("csrf", csrf.as_str()), ("return_to", "/account/passkeys")];
    let Ok(r) = http
        .post(format!("{issuer}/login/passkey/options"))
        .form(&start)
        .send()
        .await
    else {
        return false;
    };
    let Ok(options) = r.json::<Value>().await else {
        return false;
    };
    let answer = key.sign_in(&options, origin);
    let r = http
        .post(format!("{issuer}/login/passkey"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("return_to", "/account/passkeys"),
            ("ceremony", options["ceremony"].as_str().unwrap_or_default()),
            ("credential", answer.as_str()),
        ])
        .send()
        .await;
    matches!(r, Ok(r) if r.status() == 303)
}

/// One password sign-in on the same page.
async fn password_sign_in(issuer: &str, user: &str) -> bool {
    let (http, csrf) = page(issuer).await;
    let r = http
        .post(format!("{issuer}/account/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("return_to", "/account/passkeys"),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await;
    matches!(r, Ok(r) if r.status() == 303)
}

fn report(name: &str, mut lat: Vec<Duration>, failed: u64, secs: u64) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{name}: {:.1} sign-ins/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {failed} failed",
        lat.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99),
        lat.len(),
    );
}

#[tokio::main]
async fn main() {
    let secs = env_num("BENCH_SECS", 10);
    let conns = env_num("BENCH_CONNS", 16);
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let s = Server::start_at(
        backend,
        PublicUrl::Localhost,
        &[
            ("MANDATE_CACHE_TTL_MS", "5000"),
            // Only successful sign-ins here: the guessing limits never trip.
            ("MANDATE_LOGIN_IP_FAILURES_BEFORE_DELAY", "1000000"),
        ],
    )
    .await;
    let issuer = s.issuer("default");
    let origin = s.public_base();
    let mut keys = Vec::new();
    for i in 0..conns {
        let user = format!("person{i}");
        s.create_user("default", &user);
        keys.push((user.clone(), enrol(&s, &issuer, &user).await));
    }
    println!("backend {backend:?}, {conns} concurrent people, {secs} s each");

    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = keys
        .into_iter()
        .map(|(user, mut key)| {
            let (issuer, origin) = (issuer.clone(), origin.clone());
            tokio::spawn(async move {
                let (mut lat, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if passkey_sign_in(&issuer, &origin, &mut key).await {
                        lat.push(t.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (user, lat, failed)
            })
        })
        .collect();
    let (mut all, mut failed, mut users) = (Vec::new(), 0, Vec::new());
    for t in tasks {
        let (u, lat, f) = t.await.unwrap();
        all.extend(lat);
        failed += f;
        users.push(u);
    }
    report("passkey sign-in", all, failed, secs);

    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = users
        .into_iter()
        .map(|user| {
            let issuer = issuer.clone();
            tokio::spawn(async move {
                let (mut lat, mut failed) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if password_sign_in(&issuer, &user).await {
                        lat.push(t.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (lat, f) = t.await.unwrap();
        all.extend(lat);
        failed += f;
    }
    report("password sign-in", all, failed, secs);
}
