//! Delegation under load, over real HTTP against the release binary on SQLite (or PostgreSQL
//! with `BENCH_BACKEND=postgres`): client_credentials tokens/s as the baseline (without and with
//! DPoP), RFC 8693 token exchanges/s without and with DPoP, and introspection of delegated tokens/s. Same client,
//! same concurrency for each, so the ratios are fair on a loaded machine too.
//!
//! ```sh
//! cargo bench -p mandate --bench delegation            # BENCH_SECS=10 BENCH_CONNS=32
//! ```

#[path = "../tests/e2e/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One request: (url, basic auth, form, DPoP key) → status.
struct Job {
    url: String,
    auth: (String, String),
    form: Vec<(String, String)>,
    dpop: Option<DpopKey>,
}

async fn run(name: &str, job: Job, secs: u64, conns: u64) {
    let job = Arc::new(job);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns as usize)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (job, http) = (job.clone(), http.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut failed = 0u64;
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let mut r = http
                        .post(&job.url)
                        .basic_auth(&job.auth.0, Some(&job.auth.1))
                        .form(&job.form);
                    if let Some(k) = &job.dpop {
                        r = r.header("DPoP", k.proof("POST", &job.url, None, None));
                    }
                    let resp = r.send().await.unwrap();
                    let ok = resp.status().is_success();
                    let _ = resp.bytes().await;
                    if ok {
                        lat.push(start.elapsed());
                    } else {
                        failed += 1;
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (lat, f) = t.await.unwrap();
        all.extend(lat);
        failed += f;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} failed",
        all.len() as f64 / secs as f64,
        pct(0.50),
        pct(0.99),
        all.len(),
        failed
    );
}

#[tokio::main]
async fn main() {
    let secs = env_num("BENCH_SECS", 10);
    let conns = env_num("BENCH_CONNS", 32);
    let backend = match std::env::var("BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    // Caches as in production (the test harness turns them off).
    let s = Server::start_with(backend, &[("MANDATE_CACHE_TTL_MS", "5000")]).await;
    s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let service = s.create_service_client("default");
    let agent = secret_agent(&s, "default", "Planner", "alice", "calendar.read");
    s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            "alice",
            &format!("--agent={}", agent.0),
            "--scope",
            "calendar.read",
            "--expires-in",
            "86400",
        ],
        None,
    );
    let issuer = s.issuer("default");
    // The person's own token: it lives 5 minutes, longer than the runs.
    let person = person_token(&s, &web, "alice", "openid calendar.read").await;
    let token_url = format!("{issuer}/token");
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let exchange_form = form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", &person),
        ("subject_token_type", AT_TYPE),
    ]);
    let (_, v) = token(
        &issuer,
        &agent,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &person),
            ("subject_token_type", AT_TYPE),
        ],
    )
    .await;
    let delegated = v["access_token"]
        .as_str()
        .expect("exchange works")
        .to_string();

    println!("backend {backend:?}, {conns} concurrent requests, {secs} s each");
    run(
        "client_credentials",
        Job {
            url: token_url.clone(),
            auth: service.clone(),
            form: form(&[("grant_type", "client_credentials")]),
            dpop: None,
        },
        secs,
        conns,
    )
    .await;
    run(
        "client_credentials + DPoP",
        Job {
            url: token_url.clone(),
            auth: service.clone(),
            form: form(&[("grant_type", "client_credentials")]),
            dpop: Some(DpopKey::new()),
        },
        secs,
        conns,
    )
    .await;
    run(
        "token exchange",
        Job {
            url: token_url.clone(),
            auth: agent.clone(),
            form: exchange_form.clone(),
            dpop: None,
        },
        secs,
        conns,
    )
    .await;
    run(
        "token exchange + DPoP",
        Job {
            url: token_url.clone(),
            auth: agent.clone(),
            form: exchange_form,
            dpop: Some(DpopKey::new()),
        },
        secs,
        conns,
    )
    .await;
    run(
        "introspection of a delegated token",
        Job {
            url: format!("{issuer}/introspect"),
            auth: service,
            form: form(&[("token", &delegated)]),
            dpop: None,
        },
        secs,
        conns,
    )
    .await;
}
