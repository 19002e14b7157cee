//! Audit trail benchmark: the append path alone (records/s with group commit, many concurrent
//! writers) and `audit verify` over a long log (records/s), on SQLite or PostgreSQL.
//!
//! ```sh
//! cargo run --release -p mandate-store --example audit_bench -- sqlite 64 5 1000000
//! cargo run --release -p mandate-store --example audit_bench -- postgres 64 5 0
//! ```
//! Arguments: backend (`sqlite` or `postgres`), concurrent writers, seconds of append load,
//! records to verify (0: skip; the log is first filled to that size), and optionally a name
//! under which the database is kept for the next run (a file in the temp directory, or a
//! PostgreSQL schema), so that repeated verify runs need not refill a million records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mandate_core::audit::chain::{VERIFY_PAGE, verify_stored};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Personal, Principal};
use mandate_core::store::{AuditLog, AuditSink};
use mandate_store::SqlStore;

/// A typical token_issued record: actor, subject, act chain, detail and personal data.
fn event(tenant: &str, n: u64) -> AuditEvent {
    AuditEvent {
        time: 1_796_000_000 + (n / 1000) as i64,
        tenant_id: tenant.into(),
        kind: EventKind::TokenIssued,
        outcome: Outcome::Success,
        reason: None,
        actor: Principal::Client {
            id: "Qm9vdHN0cmFwQ2xpZW50".into(),
        },
        subject: Some(Principal::User {
            id: "dXNlci0xMjM0NTY3OA".into(),
        }),
        act_chain: vec![],
        client_id: Some("Qm9vdHN0cmFwQ2xpZW50".into()),
        mandate_id: None,
        request_id: None,
        detail: serde_json::json!({
            "grant_type": "client_credentials",
            "scope": "api.read api.write",
            "aud": ["http://127.0.0.1:8080/t/default"],
            "jti": format!("{n:022}"),
            "expires_at": 1_796_000_300,
            "refresh_token_issued": false,
        }),
        personal: Personal {
            ip: Some("127.0.0.1".into()),
            user_agent: Some("wrk/4".into()),
            ..Personal::default()
        },
    }
}

/// `writers` tasks append as fast as acknowledgements come back, for `secs` seconds or until
/// `max` records; returns records appended and elapsed time.
async fn load(store: &Arc<SqlStore>, writers: u64, secs: u64, max: u64) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    if n >= max {
                        done.fetch_sub(1, Ordering::Relaxed);
                        break;
                    }
                    store.record(&event("bench", n)).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    (done.load(Ordering::Relaxed), start.elapsed())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let backend = arg(0, "sqlite");
    let writers: u64 = arg(1, "64").parse().expect("writers");
    let secs: u64 = arg(2, "5").parse().expect("seconds");
    let verify_n: u64 = arg(3, "0").parse().expect("records to verify");
    let keep = args.get(4).cloned();
    let name = keep
        .clone()
        .unwrap_or_else(|| format!("mandate_audit_bench_{}", std::process::id()));
    let dir = std::env::temp_dir().join(&name);
    let url = match backend.as_str() {
        "sqlite" => {
            std::fs::create_dir_all(&dir).expect("temp dir");
            format!("sqlite://{}", dir.join("bench.db").display())
        }
        "postgres" => format!("postgres://postgres@127.0.0.1:5432/test?schema={name}"),
        other => panic!("unknown backend {other}"),
    };
    let store = Arc::new(SqlStore::connect(&url).await.expect("connect"));
    let before = store
        .audit_head("bench")
        .await
        .expect("head")
        .map_or(0, |h| h.seq as u64);
    let (n, took) = load(&store, writers, secs, u64::MAX).await;
    println!(
        "{backend}: append {n} records with {writers} writers in {:.2} s: {:.0} records/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    if verify_n > 0 {
        if before + n < verify_n {
            load(&store, 256, 3600, verify_n - before - n).await;
        }
        if std::env::var_os("AUDIT_BENCH_STAGES").is_some() {
            let (mut read, mut check, mut after, mut n) =
                (Duration::ZERO, Duration::ZERO, (i64::MIN, i64::MIN), 0);
            loop {
                let t = Instant::now();
                let rows = store
                    .audit_chain("bench", after, VERIFY_PAGE)
                    .await
                    .unwrap();
                read += t.elapsed();
                let t = Instant::now();
                for r in &rows {
                    mandate_core::audit::chain::check_content(r).unwrap();
                }
                check += t.elapsed();
                n += rows.len();
                match rows.last() {
                    Some(r) if rows.len() == VERIFY_PAGE as usize => after = (r.seq, r.row_id),
                    _ => break,
                }
            }
            println!("stages: {n} records, read {read:?}, check {check:?}");
        }
        let start = Instant::now();
        let report = verify_stored(store.as_ref(), "bench", None, VERIFY_PAGE)
            .await
            .expect("read")
            .expect("chain verifies");
        let took = start.elapsed();
        println!(
            "{backend}: verify {} records in {:.2} s: {:.0} records/s",
            report.records,
            took.as_secs_f64(),
            report.records as f64 / took.as_secs_f64()
        );
    }
    store.close().await;
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
        if backend == "postgres" {
            // Leave the shared test database as it was.
            let _ = std::process::Command::new("psql")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-c",
                ])
                .arg(format!(
                    "SET client_min_messages = warning; DROP SCHEMA {name} CASCADE"
                ))
                .status();
        }
    }
}
