//! Sign-ins per second over real HTTP against the release binary (SQLite, or PostgreSQL with
//! `BENCH_BACKEND=postgres`): a passkey sign-in (the options request, an ES256 assertion made
//! by a software authenticator in this process, the answer checked by the server: two
//! requests) side by side with a password sign-in (one request, Argon2id within the server's
//! hashing bound). Each connection signs in its own person (a passkey's counter must go up),
//! through the account sign-in (`return_to`), so no OAuth client takes part. Last, password
//! and authenticator-app (TOTP) sign-ins: the password, then a code on the second-factor page
//! (three requests). A code is taken once, so each simulated person signs in at most once per
//! 30-second step within the accepted skew: the run has many people.
//!
//! ```sh
//! cargo bench -p mandate --bench passkeys  # BENCH_SECS=10 BENCH_CONNS=16 BENCH_PASSWORD_CONNS=4 BENCH_TOTP_PEOPLE=400
//! ```

#[path = "../tests/e2e/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Post the password form of the account sign-in page (`back`: its `return_to`).
async fn post_password(
    http: &reqwest::Client,
    issuer: &str,
    csrf: &str,
    back: &str,
    user: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{issuer}/account/login"))
        .form(&[
            ("csrf", csrf),
            ("return_to", back),
            ("username", user),
            ("password", PASSWORD),
        ])
        .send()
        .await
}

/// Register a passkey for `user` (password sign-in, then the account page).
async fn enrol(s: &Server, issuer: &str, user: &str) -> SoftPasskey {
    let (http, csrf) = page(issuer).await;
    let r = post_password(&http, issuer, &csrf, "/account/passkeys", user)
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
    let r = post_password(&http, issuer, &csrf, "/account/passkeys", user).await;
    matches!(r, Ok(r) if r.status() == 303)
}

/// Set up an authenticator app for `user` on the account security page: its key (base32).
async fn enrol_totp(issuer: &str, user: &str) -> String {
    let (http, csrf) = page(issuer).await;
    let r = post_password(&http, issuer, &csrf, "/account/security", user)
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = http
        .post(format!("{issuer}/account/security/totp"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = html.find("id=\"totp-secret\"").expect("the key");
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let key = rest[start..start + rest[start..].find('<').unwrap()]
        .trim()
        .to_string();
    let code = mandate_core::login::totp::code_for_key(&key, unix()).unwrap();
    let r = http
        .post(format!("{issuer}/account/security/totp/confirm"))
        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    key
}

fn unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One password + authenticator-app sign-in with the code of `step` (30-second steps).
async fn totp_sign_in(issuer: &str, user: &str, key: &str, step: u64) -> bool {
    let (http, csrf) = page(issuer).await;
    let Ok(r) = post_password(&http, issuer, &csrf, "/account/passkeys", user).await else {
        return false;
    };
    if r.status() != 200 {
        return false;
    }
    let Ok(html) = r.text().await else {
        return false;
    };
    let code = mandate_core::login::totp::code_for_key(key, step * 30).unwrap();
    let mut form = vec![
        ("csrf", hidden(&html, "csrf").unwrap_or_default()),
        ("method", "totp".to_string()),
        ("code", code),
    ];
    if let Some(back) = hidden(&html, "return_to") {
        form.push(("return_to", back));
    }
    let r = http
        .post(format!("{issuer}/login/second-factor"))
        .form(&form)
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
        &[("MANDATE_CACHE_TTL_MS", "5000")],
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

    // Password sign-ins are bound by Argon2 (the server admits a few hashes at once and
    // answers the rest 429): as many at once as it hashes, plus a short queue.
    let password_conns = env_num("BENCH_PASSWORD_CONNS", 4) as usize;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = users
        .into_iter()
        .take(password_conns)
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

    // Password and authenticator app: each person's codes are taken once, so a person signs in
    // again only with a later step (the server accepts the step before and after the current
    // one); people whose codes are spent wait in the queue for the next step.
    let people = env_num("BENCH_TOTP_PEOPLE", 400);
    let mut queue = VecDeque::new();
    let setup = Instant::now();
    for i in 0..people {
        let user = format!("app{i}");
        s.create_user("default", &user);
        let key = enrol_totp(&issuer, &user).await;
        queue.push_back((user, key, unix() / 30));
    }
    println!(
        "{people} people with an authenticator app set up in {:.0} s",
        setup.elapsed().as_secs_f64()
    );
    let queue = Arc::new(Mutex::new(queue));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..password_conns)
        .map(|_| {
            let (issuer, queue) = (issuer.clone(), queue.clone());
            tokio::spawn(async move {
                let (mut lat, mut failed, mut waited) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let now = unix() / 30;
                    let next = {
                        let mut q = queue.lock().unwrap();
                        let ready = q.iter().position(|(_, _, last)| *last < now + 1);
                        ready.and_then(|i| q.remove(i))
                    };
                    let Some((user, key, last)) = next else {
                        waited += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let step = (last + 1).max(now - 1);
                    let t = Instant::now();
                    if totp_sign_in(&issuer, &user, &key, step).await {
                        lat.push(t.elapsed());
                    } else {
                        failed += 1;
                    }
                    queue.lock().unwrap().push_back((user, key, step));
                }
                (lat, failed, waited)
            })
        })
        .collect();
    let (mut all, mut failed, mut waited) = (Vec::new(), 0, 0);
    for t in tasks {
        let (lat, f, w) = t.await.unwrap();
        all.extend(lat);
        failed += f;
        waited += w;
    }
    report("password + authenticator app sign-in", all, failed, secs);
    if waited > 0 {
        println!("  (waited {waited} times for a person with a code left: add BENCH_TOTP_PEOPLE)");
    }
}
