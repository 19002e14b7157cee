//! The audit trail as an operator and an investigator use it, over the real server on SQLite
//! and PostgreSQL: durability across `kill -9`, the admin API (authentication, filters, cursor
//! pagination), erasure of a person's data with the chain intact, and tampering with personal
//! data detected.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine;
use serde_json::Value;

/// The `jti` of a JWT, read without verification (the test only needs to name the token).
fn jti(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["jti"].as_str().unwrap().to_string()
}

/// Every line of `mandate audit export` for the default tenant with extra filters.
fn export(s: &Server, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "export", "--tenant", "default"];
    args.extend_from_slice(extra);
    let (ok, out, err) = s.cli_raw(&args, None);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn assert_verifies(s: &Server) -> String {
    let (ok, out, err) = s.cli_raw(&["audit", "verify", "--tenant", "default"], None);
    assert!(ok, "the chain verifies: {out}{err}");
    out
}

/// Token requests from 16 concurrent clients; the server is killed with SIGKILL in the middle.
/// After a restart, every token a client received has its `token_issued` record, and the chain
/// verifies.
async fn kill9_loses_no_acknowledged_record(backend: Backend) {
    let mut s = Server::start(backend).await;
    let svc = s.create_service_client("default");
    let issuer = s.issuer("default");
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop_at = Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (issuer, svc, received) = (issuer.clone(), svc.clone(), received.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            // Bounded: stops at the first failure (the server is gone) or after 20 s.
            while Instant::now() < stop_at {
                let r = http
                    .post(format!("{issuer}/token"))
                    .basic_auth(&svc.0, Some(&svc.1))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if r.status() != 200 {
                    break;
                }
                let Ok(body) = r.json::<Value>().await else {
                    break;
                };
                received
                    .lock()
                    .unwrap()
                    .push(jti(body["access_token"].as_str().unwrap()));
            }
        }));
    }
    // Let the load run, then pull the plug while requests are in flight.
    while received.lock().unwrap().len() < 300 {
        assert!(Instant::now() < stop_at, "no load reached the server");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let received = received.lock().unwrap().clone();
    assert!(received.len() >= 300);

    s.spawn().await;
    let recorded: HashSet<String> = export(&s, &["--event", "token_issued"])
        .iter()
        .filter_map(|r| r["detail"]["jti"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<_> = received.iter().filter(|j| !recorded.contains(*j)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged tokens have no audit record",
        missing.len(),
        received.len()
    );
    assert_verifies(&s);
    // The server still appends after the crash, continuing the same chain.
    let (status, _) = token(
        &s.issuer("default"),
        &svc,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200);
    assert_verifies(&s);
}

async fn admin_get(url: &str, bearer: Option<&str>) -> (u16, Option<String>, Value) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = r.text().await.unwrap();
    (
        status,
        challenge,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn admin_client(s: &Server, tenant: &str, scope: &str) -> (String, String) {
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Ops console",
            "--grant-type",
            "client_credentials",
            "--scope",
            scope,
        ],
        None,
    );
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

async fn client_token(s: &Server, tenant: &str, client: &(String, String)) -> String {
    let (status, v) = token(
        &s.issuer(tenant),
        client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// Only tokens of the tenant's issuer with `mandate:admin` read the log; refusals are 401/403
/// per RFC 6750 and recorded; filters and cursor pagination return exactly the matching records.
async fn admin_api(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_tenant("other");
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    code_flow_tokens(&s, &b, "default", &web, "alice").await;
    let svc = s.create_service_client("default");
    for _ in 0..3 {
        client_token(&s, "default", &svc).await;
    }
    let admin = admin_client(&s, "default", "mandate:admin");
    let admin_token = client_token(&s, "default", &admin).await;
    let url = format!("{}/admin/v1/tenants/default/audit/events", s.base);

    // No token: 401 with a bare challenge.
    let (status, challenge, body) = admin_get(&url, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    // A token without the admin scope: 403 insufficient_scope.
    let plain = client_token(&s, "default", &svc).await;
    let (status, challenge, body) = admin_get(&url, Some(&plain)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(challenge.unwrap().contains("insufficient_scope"));
    // An admin token of another tenant's issuer, and garbage: 401 invalid_token.
    let other_admin = admin_client(&s, "other", "mandate:admin");
    let foreign = client_token(&s, "other", &other_admin).await;
    for bad in [foreign.as_str(), "not-a-token"] {
        let (status, challenge, body) = admin_get(&url, Some(bad)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_token");
        assert!(challenge.unwrap().contains("invalid_token"));
    }
    // Unknown tenant: 404.
    let (status, _, _) = admin_get(
        &format!("{}/admin/v1/tenants/nope/audit/events", s.base),
        Some(&admin_token),
    )
    .await;
    assert_eq!(status, 404);

    // The admin token reads, filtered.
    let (status, _, body) =
        admin_get(&format!("{url}?event=login_succeeded"), Some(&admin_token)).await;
    assert_eq!(status, 200, "{body}");
    let logins = body["events"].as_array().unwrap();
    assert_eq!(logins.len(), 1, "{body}");
    assert_eq!(logins[0]["actor"]["id"], alice.as_str());
    assert_eq!(logins[0]["username"], "alice");
    assert_eq!(logins[0]["ip"], "127.0.0.1");
    assert_eq!(logins[0]["delegated"], false);
    assert_eq!(body["next_cursor"], Value::Null);
    let (_, _, body) = admin_get(
        &format!("{url}?actor={}&event=token_issued", svc.0),
        Some(&admin_token),
    )
    .await;
    let issued = body["events"].as_array().unwrap();
    assert_eq!(issued.len(), 4, "{body}");
    assert!(issued.iter().all(|e| e["client_id"] == svc.0.as_str()));
    let (_, _, body) = admin_get(&format!("{url}?subject={alice}"), Some(&admin_token)).await;
    assert!(
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["subject"]["id"] == alice.as_str()),
        "{body}"
    );
    // Refusals were recorded, with who tried.
    let (_, _, body) = admin_get(
        &format!("{url}?event=admin_access_denied"),
        Some(&admin_token),
    )
    .await;
    let denied = body["events"].as_array().unwrap();
    assert_eq!(denied.len(), 4, "{body}");
    assert!(
        denied
            .iter()
            .any(|e| e["reason"] == "insufficient_scope" && e["client_id"] == svc.0.as_str())
    );

    // Cursor pagination walks the whole log, newest first, without gaps or repeats.
    let (_, _, all) = admin_get(&format!("{url}?limit=1000"), Some(&admin_token)).await;
    let all: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(all.len() > 10);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, _, body) =
            admin_get(&format!("{url}?limit=3{cursor}"), Some(&admin_token)).await;
        assert_eq!(status, 200, "{body}");
        paged.extend(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_i64().unwrap())
                .filter(|seq| *seq <= all[0]),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // Bad parameters: 400 invalid_request.
    for q in [
        "limit=0",
        "limit=5000",
        "event=nonsense",
        "since=yesterday",
        "cursor=-4",
        "colour=blue",
        "actor=a&actor=b",
    ] {
        let (status, _, body) = admin_get(&format!("{url}?{q}"), Some(&admin_token)).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"], "invalid_request", "{q}");
    }
    // The CLI query sees the same, text and JSON.
    let v = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "login_succeeded",
            // `=`: random ids may begin with '-'.
            &format!("--subject={alice}"),
        ],
        None,
    );
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (ok, text, _) = s.cli_raw(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "token_issued",
            "--limit",
            "2",
        ],
        None,
    );
    assert!(ok);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(" token_issued success actor="), "{text}");
    assert_verifies(&s);
}

/// Erasing a person deletes their personal data from the trail (IP, user agent, username,
/// e-mail), keeps everybody else's and the records themselves, and the chain still verifies.
async fn erasure_keeps_the_chain(backend: Backend) {
    let s = Server::start(backend).await;
    let ada = s.create_user("default", "ada");
    s.create_user("default", "bob");
    let web = s.create_web_client("default", &[]);
    code_flow_tokens(&s, &Browser::new(), "default", &web, "ada").await;
    code_flow_tokens(&s, &Browser::new(), "default", &web, "bob").await;
    let issuer = s.issuer("default");
    // A failed login under ada's name from an unauthenticated browser.
    let b = Browser::new();
    let (_, challenge) = pkce();
    let (_, html, _) = b
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (status, page, _) = b.login(&issuer, &html, "ada", "wrong password!").await;
    assert_ne!(status, 303, "{page}");

    let about_ada = |records: &[Value]| -> Vec<Value> {
        records
            .iter()
            .filter(|r| {
                r["subject"]["id"] == ada.as_str()
                    || r["actor"]["id"] == ada.as_str()
                    || r["username"] == "ada"
            })
            .cloned()
            .collect()
    };
    let before = export(&s, &[]);
    let ada_before = about_ada(&before);
    assert!(ada_before.iter().any(|r| r["event"] == "login_failed"));
    assert!(ada_before.iter().any(|r| r["email"] == "ada@example.com"));
    assert!(ada_before.iter().any(|r| r["ip"] == "127.0.0.1"));

    let out = s.cli(
        &["user", "erase", "--tenant", "default", "--username", "ada"],
        None,
    );
    assert_eq!(out["erased"], ada.as_str());
    let after = export(&s, &[]);
    assert_eq!(
        after.len(),
        before.len() + 1,
        "records stay; the erasure is added"
    );
    assert_eq!(after.last().unwrap()["event"], "user_erased");
    for r in &after[..before.len()] {
        let is_ada = ada_before.iter().any(|a| a["seq"] == r["seq"]);
        for field in ["ip", "user_agent", "username", "email"] {
            if is_ada {
                assert!(r.get(field).is_none(), "{field} erased: {r}");
            }
        }
        if !is_ada {
            let orig = before.iter().find(|b| b["seq"] == r["seq"]).unwrap();
            assert_eq!(r, orig, "other records unchanged");
        }
    }
    assert!(after.iter().any(|r| r["username"] == "bob"));
    assert_verifies(&s);
    // Ada cannot log in any more; the erasure was recorded by its actor.
    let b = Browser::new();
    let (_, html, _) = b
        .get(&auth_url(&issuer, &web.0, &challenge, "openid", &[]))
        .await;
    let (_, page, _) = b.login(&issuer, &html, "ada", PASSWORD).await;
    assert!(page.contains("name=\"password\""), "login refused");
    let (ok, _, err) = s.cli_raw(
        &["user", "erase", "--tenant", "default", "--username", "ada"],
        None,
    );
    assert!(!ok && err.contains("not found"), "{err}");
}

/// Personal data changed in its own table is caught by the commitment.
async fn tampered_personal_data(backend: Backend) {
    let mut s = Server::start(backend).await;
    s.create_user("default", "eve");
    let web = s.create_web_client("default", &[]);
    code_flow_tokens(&s, &Browser::new(), "default", &web, "eve").await;
    let login = export(&s, &["--event", "login_succeeded"]);
    let seq = login[0]["seq"].as_i64().unwrap();
    s.kill();
    let db = s.db().await;
    sqlx::query("UPDATE audit_events SET ip = '203.0.113.66' WHERE seq = $1")
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();
    let (ok, _, err) = s.cli_raw(&["audit", "verify", "--tenant", "default"], None);
    assert!(!ok);
    assert!(
        err.trim()
            .starts_with(&format!("error: record {seq}: personal data")),
        "{err}"
    );
}

/// Issue 12 item 15: one unauthenticated request with a 45 KB Basic user name, a long user
/// agent and long parameter names writes a small audit record, and the error it gets quotes
/// a bounded amount of what it sent.
async fn reflected_text_is_bounded(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let huge_user = "u".repeat(45_000);
    let long_name = "p".repeat(8_000);
    let body = format!(
        "grant_type=client_credentials&{long_name}=1&{long_name}=2&{}x=3",
        "q".repeat(20_000)
    );
    let r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&huge_user, Some("secret"))
        .header("user-agent", "A".repeat(6_000))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!((400..500).contains(&status), "{status}: {text:.200}");
    assert!(text.len() < 1024, "a bounded error: {} bytes", text.len());
    // The same credentials alone, so that authentication fails and is recorded.
    let r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&huge_user, Some("secret"))
        .header("user-agent", "A".repeat(6_000))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let records = export(&s, &[]);
    assert!(
        records
            .iter()
            .any(|r| r.to_string().contains("client_auth_failed")),
        "the failure is recorded"
    );
    for r in &records {
        let n = r.to_string().len();
        assert!(
            n < 4096,
            "an audit record of {n} bytes: {:.300}",
            r.to_string()
        );
    }
    assert_verifies(&s);
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    kill9_loses_no_acknowledged_record,
    admin_api,
    erasure_keeps_the_chain,
    tampered_personal_data,
    reflected_text_is_bounded,
);
