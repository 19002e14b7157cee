//! 20 simultaneous refreshes with the same refresh token: exactly one succeeds. A burst of
//! parallel failed logins stays within the password-hashing bound.

use crate::common::*;

async fn race(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "dave");
    let web = s.create_web_client("default", &[]);
    let tokens = code_flow_tokens(&s, &Browser::new(), "default", &web, "dave").await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (issuer, web, rt) = (issuer.clone(), web.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            token(
                &issuer,
                &web,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => ok += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(ok, 1, "exactly one concurrent refresh may succeed");
}

#[tokio::test]
async fn concurrent_refresh_sqlite() {
    race(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_refresh_postgres() {
    race(Backend::Postgres).await;
}

/// Resident and peak memory of a process in KiB (VmRSS, VmHWM).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One failed login with a fresh interaction: (status, Retry-After).
async fn failed_login(issuer: &str, client_id: &str, user: &str) -> (u16, Option<String>) {
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (_, html, _) = b
        .get(&auth_url(issuer, client_id, &challenge, "openid", &[]))
        .await;
    let r = b
        .http
        .post(format!("{issuer}/login"))
        .form(&[
            ("csrf", hidden(&html, "csrf").unwrap().as_str()),
            (
                "interaction",
                hidden(&html, "interaction").unwrap().as_str(),
            ),
            ("username", user),
            ("password", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry)
}

/// Issue 12 item 3: 64 parallel failed logins (known and unknown names) run at most
/// `concurrency` Argon2 hashes at once; beyond the queue they get 429 with Retry-After; the
/// server's memory stays bounded during the burst and after it (before: +760 MiB, kept).
#[tokio::test]
async fn login_burst_is_bounded() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("MANDATE_PASSWORD_HASH_CONCURRENCY", "2"),
            ("MANDATE_PASSWORD_HASH_QUEUE", "6"),
            // Only the hashing bound is under test here.
            ("MANDATE_LOGIN_FAILURES_BEFORE_DELAY", "100000"),
            ("MANDATE_LOGIN_FAILURES_BEFORE_LOCKOUT", "100000"),
            ("MANDATE_LOGIN_IP_FAILURES_BEFORE_DELAY", "100000"),
            ("MANDATE_LOGIN_IP_FAILURES_BEFORE_LOCKOUT", "100000"),
        ],
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "eve");
    let web = s.create_web_client("default", &[]);
    // Nor the risk policy: many names failing from one address would be stuffing.
    s.cli(
        &[
            "tenant",
            "risk",
            "default",
            "--rule",
            "credential_stuffing=allow",
        ],
        None,
    );
    let pid = s.pid().unwrap();
    // Warm up: one check each for a known and an unknown name.
    assert_eq!(failed_login(&issuer, &web.0, "eve").await.0, 401);
    assert_eq!(failed_login(&issuer, &web.0, "nobody").await.0, 401);
    let (rss_before, _) = memory_kib(pid);

    let mut tasks = Vec::new();
    for i in 0..64 {
        let (issuer, client) = (issuer.clone(), web.0.clone());
        let user = if i % 2 == 0 {
            "eve".to_string()
        } else {
            format!("ghost{i}")
        };
        tasks.push(tokio::spawn(async move {
            failed_login(&issuer, &client, &user).await
        }));
    }
    let (mut refused, mut judged) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (401, _) => judged += 1,
            (429, retry) => {
                let secs: u64 = retry.expect("Retry-After on 429").parse().unwrap();
                assert!(secs >= 1);
                refused += 1;
            }
            (other, _) => panic!("unexpected status {other}"),
        }
    }
    assert!(judged >= 8, "the bound still serves: {judged} judged");
    assert!(refused >= 1, "beyond the queue, 429");
    // A refused attempt costs nothing else: it is charged to no guessing counter (every
    // attempt came from this address, so its counter holds the judged ones and the warm-up).
    let pool = s.db().await;
    let (failures,): (i64,) = sqlx::query_as(
        "SELECT CAST(failures AS BIGINT) FROM login_throttle WHERE throttle_key LIKE 'ip:%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(failures, judged + 2, "only judged attempts are counted");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (rss_after, peak) = memory_kib(pid);
    eprintln!("RSS before {rss_before} KiB, after {rss_after} KiB, peak {peak} KiB");
    // Two hashes at 19 MiB each may run at once; allow generously for the rest.
    assert!(
        peak < rss_before + 160 * 1024,
        "peak RSS grew by {} MiB",
        (peak - rss_before) / 1024
    );
    assert!(
        rss_after < rss_before + 100 * 1024,
        "RSS stayed {} MiB above its level before the burst",
        (rss_after.saturating_sub(rss_before)) / 1024
    );
    // And the right password still works afterwards.
    let tokens = code_flow_tokens(&s, &Browser::new(), "default", &web, "eve").await;
    assert!(tokens["access_token"].is_string());
}
