//! OpenID CIBA (Client-Initiated Backchannel Authentication) for agents, end to end over real
//! HTTP on SQLite and PostgreSQL: an agent asks at `/bc-authorize`, the person approves or
//! denies on their own signed-in page, the agent polls (or is pinged) and redeems its
//! `auth_req_id` for a delegated token under the mandate the approval recorded.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CALENDAR: &str = "https://calendar.example";
const CIBA: &str = "urn:openid:params:grant-type:ciba";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn err(r: &(u16, Value), status: u16, error: &str) {
    assert_eq!(
        (r.0, r.1["error"].as_str()),
        (status, Some(error)),
        "{}",
        r.1
    );
}

/// Register an agent owned by alice with a generated secret and `extra` flags.
fn agent(s: &Server, name: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "agent",
        "create",
        "--tenant",
        "default",
        "--name",
        name,
        "--owner",
        "alice",
        "--provider",
        "Acme AI",
        "--model",
        "planner-2",
        "--scope-ceiling",
        "calendar.read",
        "--scope-ceiling",
        "calendar.write",
        "--generate-secret",
    ];
    args.extend_from_slice(extra);
    let v = s.cli(&args, None);
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

async fn bc(s: &Server, client: &(String, String), form: &[(&str, &str)]) -> (u16, Value) {
    post_auth(
        &format!("{}/bc-authorize", s.issuer("default")),
        client,
        form,
    )
    .await
}

async fn poll(s: &Server, client: &(String, String), auth_req_id: &str) -> (u16, Value) {
    token(
        &s.issuer("default"),
        client,
        &[("grant_type", CIBA), ("auth_req_id", auth_req_id)],
    )
    .await
}

/// A request for alice's calendar; returns the auth_req_id.
async fn ask(s: &Server, agent: &(String, String), extra: &[(&str, &str)]) -> String {
    let mut form = vec![
        ("scope", "openid calendar.read"),
        ("login_hint", "alice"),
        ("binding_message", "Book lunch, code 4711"),
        ("resource", CALENDAR),
    ];
    form.extend_from_slice(extra);
    let r = bc(s, agent, &form).await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1["auth_req_id"].as_str().unwrap().to_string()
}

/// A browser signed in as `username` (through the web client's code flow).
async fn signed_in(s: &Server, web: &(String, String), username: &str) -> Browser {
    let b = Browser::new();
    code_flow_tokens(s, &b, "default", web, username).await;
    b
}

/// The approval link of the person's newest pending request, from their agents page.
async fn pending_link(s: &Server, b: &Browser) -> String {
    let (status, page, _) = b
        .get(&format!("{}/account/agents", s.issuer("default")))
        .await;
    assert_eq!(status, 200, "{page}");
    let page = unescape(&page);
    assert!(page.contains("Waiting for your approval"), "{page}");
    let start = page.find("/account/ciba/").expect("a pending request");
    let begin = page[..start].rfind('"').unwrap() + 1;
    let end = start + page[start..].find('"').unwrap();
    page[begin..end].to_string()
}

/// Approve or deny on the request's page; returns the status of the POST.
async fn decide(b: &Browser, link: &str, decision: &str) -> u16 {
    let (status, page, _) = b.get(link).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    b.post_form(link, &[("csrf", &csrf), ("decision", decision)])
        .await
        .0
}

fn audit(s: &Server) -> Vec<Value> {
    let (ok, out, e) = s.cli_raw(&["audit", "export", "--tenant", "default"], None);
    assert!(ok, "{e}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A tiny HTTP receiver: every request's (path, headers lowercased, JSON body) goes to the
/// channel; it answers 204.
async fn receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String, Value)>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = c.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let head = text[..h].to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse().unwrap())
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len {
                            let body = &buf[h + 4..h + 4 + len];
                            let path = head.split(' ').nth(1).unwrap_or("").to_string();
                            let json = serde_json::from_slice(body).unwrap_or(Value::Null);
                            let _ = tx.send((path, head, json));
                            let _ = c
                                .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String, Value)>,
) -> (String, String, Value) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a notification within 10 s")
        .unwrap()
}

/// A server with a CIBA webhook going to the test, alice and bob, a web client, and alice's
/// poll-mode agent "Planner".
struct Ciba {
    s: Server,
    issuer: String,
    alice: String,
    web: (String, String),
    a: (String, String),
    hooks: tokio::sync::mpsc::UnboundedReceiver<(String, String, Value)>,
}

async fn ciba(backend: Backend) -> Ciba {
    let (hook, hooks) = receiver().await;
    let hook_url = format!("{hook}/hook");
    let s = Server::start_with(
        backend,
        &[
            ("MANDATE_CIBA_WEBHOOK_URL", &hook_url),
            ("MANDATE_CIBA_INTERVAL", "2"),
            DEV_LOOPBACK,
        ],
    )
    .await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let a = agent(&s, "Planner", &["--ciba-mode", "poll"]);
    Ciba {
        s,
        issuer,
        alice,
        web,
        a,
        hooks,
    }
}

const DETAILS: &str = r#"[{"type":"calendar","actions":["read"]}]"#;

/// The agent asks for alice's calendar (with authorization details); returns the response and
/// the webhook's notice.
async fn request_calendar(c: &mut Ciba) -> ((u16, Value), (String, String, Value)) {
    let (s, a, hooks) = (&c.s, &c.a, &mut c.hooks);
    let r = bc(
        s,
        a,
        &[
            ("scope", "openid calendar.read"),
            ("login_hint", "alice"),
            ("binding_message", "Book lunch, code 4711"),
            ("resource", CALENDAR),
            ("authorization_details", DETAILS),
            ("acr_values", "urn:whatever"),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    (r, next(hooks).await)
}

/// Discovery advertises CIBA (poll and ping, no user codes, no signed requests).
async fn discovery_advertises_ciba(backend: Backend) {
    let Ciba { s: _s, issuer, .. } = ciba(backend).await;
    let d: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["backchannel_authentication_endpoint"],
        format!("{issuer}/bc-authorize")
    );
    assert_eq!(
        d["backchannel_token_delivery_modes_supported"],
        json!(["poll", "ping"])
    );
    assert_eq!(d["backchannel_user_code_parameter_supported"], false);
    assert!(
        d.get("backchannel_authentication_request_signing_alg_values_supported")
            .is_none()
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(CIBA))
    );
}

/// A request is announced by webhook with the approval link (never the auth_req_id, which is
/// stored only as a keyed digest) and is pending; only alice sees and can decide it (not bob
/// with his own CSRF token, not an anonymous browser); a forged form does nothing.
async fn pending_request_reaches_only_the_person(backend: Backend) {
    let mut c = ciba(backend).await;
    let (r, (path, _, notice)) = request_calendar(&mut c).await;
    let Ciba {
        s,
        issuer,
        web,
        a,
        hooks,
        ..
    } = &mut c;
    assert_eq!(r.1["expires_in"], 300);
    assert_eq!(r.1["interval"], 2);
    let id = r.1["auth_req_id"].as_str().unwrap().to_string();
    assert!(id.len() >= 40, "high-entropy handle");

    // The webhook hears of it, with the approval link.
    assert_eq!(path, "/hook");
    assert_eq!(notice["tenant"], "default");
    assert_eq!(notice["user"]["username"], "alice");
    assert_eq!(notice["agent"]["id"], a.0.as_str());
    assert_eq!(notice["binding_message"], "Book lunch, code 4711");
    let link = notice["approval_url"].as_str().unwrap().to_string();
    assert!(
        link.starts_with(&format!("{issuer}/account/ciba/")),
        "{link}"
    );
    assert!(
        !notice.to_string().contains(&id),
        "the webhook never sees the auth_req_id"
    );

    // Stored only as a keyed digest.
    let pool = s.db().await;
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM ciba_requests WHERE id = $1 OR ping_auth_req_id = $1 \
         OR notification_token = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(n, 0);
    pool.close().await;

    err(&poll(s, a, &id).await, 400, "authorization_pending");

    // Bob cannot see or decide it, even with a valid CSRF token of his own session (from a
    // request of his own).
    let bob = signed_in(s, web, "bob").await;
    let (status, _, _) = bob.get(&link).await;
    assert_eq!(status, 404);
    let r = bc(s, a, &[("scope", "calendar.read"), ("login_hint", "bob")]).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let _ = next(hooks).await;
    let bob_link = pending_link(s, &bob).await;
    assert_ne!(bob_link, link);
    let (_, bob_page, _) = bob.get(&bob_link).await;
    let bob_csrf = hidden(&bob_page, "csrf").unwrap();
    let (status, _, _) = bob
        .post_form(&link, &[("csrf", &bob_csrf), ("decision", "approve")])
        .await;
    assert_eq!(status, 404);
    // Not signed in at all: nothing shown, the sign-in page instead (issue 12 item 27).
    let (status, anon, loc) = Browser::new().get(&link).await;
    assert_eq!(status, 303);
    assert!(!anon.contains("Planner"));
    assert!(loc.unwrap().contains("/account/login?return_to="));

    // Alice sees it on her page and on its own page, with the agent and what it asks.
    let b = signed_in(s, web, "alice").await;
    assert_eq!(pending_link(s, &b).await, link);
    let (status, page, _) = b.get(&link).await;
    assert_eq!(status, 200);
    let page = unescape(&page);
    for want in [
        "Planner",
        "Acme AI",
        "planner-2",
        "alice",
        "Book lunch, code 4711",
        "calendar.read",
        CALENDAR,
    ] {
        assert!(page.contains(want), "{want} missing: {page}");
    }
    // A forged form (no CSRF token) does nothing.
    let (status, _, _) = b.post_form(&link, &[("decision", "approve")]).await;
    assert_eq!(status, 400);
}

/// Approved: the poll gives the delegated token (sub/act/mandate, ID token, active), the
/// auth_req_id is single-use, the mandate is listed, the token cannot be laundered into a
/// plain user token, and it is all audited. One story: each step follows the approval.
async fn approval_gives_a_delegated_token(backend: Backend) {
    let mut c = ciba(backend).await;
    let (r, (_, _, notice)) = request_calendar(&mut c).await;
    let Ciba {
        s,
        issuer,
        alice,
        web,
        a,
        ..
    } = &c;
    let details = DETAILS;
    let id = r.1["auth_req_id"].as_str().unwrap().to_string();
    let link = notice["approval_url"].as_str().unwrap().to_string();
    let b = signed_in(s, web, "alice").await;

    assert_eq!(decide(&b, &link, "approve").await, 303);
    // Decided: the page is gone.
    assert_eq!(b.get(&link).await.0, 404);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, v) = poll(s, a, &id).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "calendar.read");
    assert!(v["refresh_token"].is_null());
    assert!(v["expires_in"].as_i64().unwrap() <= 300);
    assert_eq!(
        v["authorization_details"],
        serde_json::from_str::<Value>(details).unwrap()
    );
    let at = v["access_token"].as_str().unwrap().to_string();
    let c = claims(&at);
    assert_eq!(c["sub"], alice.as_str(), "sub is the person");
    assert_eq!(c["act"], json!({"sub": a.0}));
    assert_eq!(c["aud"], CALENDAR);
    assert_eq!(c["client_id"], a.0.as_str());
    let mandate = c["mandate"].as_str().expect("mandate claim").to_string();
    let idt = claims(v["id_token"].as_str().expect("id_token: openid was asked"));
    assert_eq!(idt["sub"], alice.as_str());
    assert_eq!(idt["aud"], a.0.as_str());
    assert!(idt["at_hash"].is_string());

    let i = introspect(issuer, web, &at).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["act"]["sub"], a.0.as_str());
    assert_eq!(i["mandate"], mandate.as_str());

    // One-time.
    err(&poll(s, a, &id).await, 400, "invalid_grant");

    // The mandate is recorded (origin ciba) and listed for alice; nothing is pending any more.
    let (_, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert!(
        page.contains("Planner") && !page.contains("/account/ciba/"),
        "{page}"
    );

    // No laundering: exchanging it keeps the delegation; a plain client cannot exchange it.
    let (status, v) = token(
        issuer,
        a,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &at),
            ("subject_token_type", AT_TYPE),
        ],
    )
    .await;
    if status == 200 {
        let c = claims(v["access_token"].as_str().unwrap());
        assert_eq!(c["act"]["sub"], a.0.as_str(), "{c}");
        assert_eq!(c["mandate"], mandate.as_str());
        assert_eq!(c["sub"], alice.as_str());
    } else {
        assert_eq!(status, 400, "{v}");
    }
    let r = token(
        issuer,
        web,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &at),
            ("subject_token_type", AT_TYPE),
        ],
    )
    .await;
    err(&r, 400, "unauthorized_client");

    // Audit: requested (actor agent), approved (by alice), token issued under the mandate.
    let records = audit(s);
    let find = |kind: &str| {
        records
            .iter()
            .find(|r| r["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} record"))
            .clone()
    };
    let req = find("ciba_requested");
    assert_eq!(req["actor"], json!({"type": "agent", "id": a.0}));
    assert_eq!(req["subject"], json!({"type": "user", "id": alice}));
    let ok = find("ciba_approved");
    assert_eq!(ok["actor"], json!({"type": "user", "id": alice}));
    assert_eq!(ok["mandate_id"], mandate.as_str());
    assert_eq!(ok["client_id"], a.0.as_str());
    let m = records
        .iter()
        .find(|r| r["event"] == "mandate_created" && r["mandate_id"] == mandate.as_str())
        .expect("mandate_created");
    assert_eq!(m["detail"]["origin"], "ciba");
    assert_eq!(m["detail"]["scope"], "calendar.read");
    let issued = records
        .iter()
        .find(|r| r["event"] == "token_issued" && r["detail"]["grant_type"] == CIBA)
        .expect("token_issued");
    assert_eq!(issued["actor"], json!({"type": "agent", "id": a.0}));
    assert_eq!(issued["subject"], json!({"type": "user", "id": alice}));
    assert_eq!(issued["mandate_id"], mandate.as_str());
    assert!(!records.iter().any(|r| r["event"] == "token_request_failed"
        && r["reason"] == "authorization_pending"), "pending polls are not failures");
    let (ok, out, e) = s.cli_raw(&["audit", "verify", "--tenant", "default"], None);
    assert!(ok, "{out}{e}");
}

/// Denied → access_denied (400 at the token endpoint); expired → expired_token (audited).
async fn deny_and_expire(backend: Backend) {
    let s = Server::start_with(backend, &[("MANDATE_CIBA_INTERVAL", "1"), DEV_LOOPBACK]).await;
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &["--scope", "openid"]);
    let a = agent(&s, "Planner", &["--ciba-mode", "poll"]);

    let id = ask(&s, &a, &[]).await;
    let b = signed_in(&s, &web, "alice").await;
    let link = pending_link(&s, &b).await;
    assert_eq!(decide(&b, &link, "deny").await, 303);
    tokio::time::sleep(Duration::from_secs(1)).await;
    err(&poll(&s, &a, &id).await, 400, "access_denied");
    // No mandate came of it.
    let v = s.cli(
        &["mandate", "list", "--tenant", "default", "--user", "alice"],
        None,
    );
    assert_eq!(v.as_array().map_or(0, Vec::len), 0, "{v}");

    // (3 s: the page must still list it when the suite loads the machine.)
    let id = ask(&s, &a, &[("requested_expiry", "3")]).await;
    let link = pending_link(&s, &b).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    err(&poll(&s, &a, &id).await, 400, "expired_token");
    // Too late to approve.
    assert_eq!(b.get(&link).await.0, 404);
    let records = audit(&s);
    assert!(records.iter().any(|r| r["event"] == "ciba_denied"));
    let exp = records
        .iter()
        .find(|r| r["event"] == "ciba_expired")
        .expect("ciba_expired");
    assert_eq!(exp["actor"]["type"], "agent");
    assert_eq!(exp["subject"]["type"], "user");

    // requested_expiry beyond the maximum is cut to it.
    let r = bc(
        &s,
        &a,
        &[
            ("scope", "calendar.read"),
            ("login_hint", "alice"),
            ("requested_expiry", "100000"),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["expires_in"], 600);
}

/// Ping mode: the client_notification_token is required; the ping carries the auth_req_id with
/// the bearer token; then the tokens are fetched.
async fn ping_mode(backend: Backend) {
    let (cb, mut pings) = receiver().await;
    let endpoint = format!("{cb}/ciba/cb");
    let s = Server::start_with(backend, &[("MANDATE_CIBA_INTERVAL", "1"), DEV_LOOPBACK]).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client("default", &["--scope", "openid"]);
    let a = agent(
        &s,
        "Pinger",
        &[
            "--ciba-mode",
            "ping",
            "--ciba-notification-endpoint",
            &endpoint,
        ],
    );
    let r = bc(
        &s,
        &a,
        &[("scope", "calendar.read"), ("login_hint", "alice")],
    )
    .await;
    err(&r, 400, "invalid_request");

    let id = ask(
        &s,
        &a,
        &[(
            "client_notification_token",
            "8d67dc78-7faa-4d41-aabd-67707b374255",
        )],
    )
    .await;
    let b = signed_in(&s, &web, "alice").await;
    let link = pending_link(&s, &b).await;
    assert_eq!(decide(&b, &link, "approve").await, 303);
    let (path, head, body) = next(&mut pings).await;
    assert_eq!(path, "/ciba/cb");
    assert!(
        head.contains("authorization: bearer 8d67dc78-7faa-4d41-aabd-67707b374255"),
        "{head}"
    );
    assert_eq!(body, json!({"auth_req_id": id}));
    let (status, v) = poll(&s, &a, &id).await;
    assert_eq!(status, 200, "{v}");
    let c = claims(v["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["act"]["sub"], a.0.as_str());
    assert!(v["id_token"].is_string());
    // Once pinged, the auth_req_id kept for the ping is forgotten.
    let pool = s.db().await;
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM ciba_requests WHERE ping_auth_req_id IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
    pool.close().await;

    // A denial is pinged too.
    let id = ask(&s, &a, &[("client_notification_token", "second-token")]).await;
    let link = pending_link(&s, &b).await;
    assert_eq!(decide(&b, &link, "deny").await, 303);
    let (_, head, body) = next(&mut pings).await;
    assert!(head.contains("authorization: bearer second-token"));
    assert_eq!(body["auth_req_id"], id.as_str());
    err(&poll(&s, &a, &id).await, 400, "access_denied");
}

/// Polling faster than the interval: slow_down, and the interval grows by 5 s each time. (The
/// webhook here goes nowhere: that never holds the request up.)
#[tokio::test]
async fn slow_down_on_eager_polling() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("MANDATE_CIBA_WEBHOOK_URL", "http://127.0.0.1:9/nowhere"),
            DEV_LOOPBACK,
        ],
    )
    .await;
    s.create_user("default", "alice");
    let a = agent(&s, "Planner", &["--ciba-mode", "poll"]);
    let r = bc(
        &s,
        &a,
        &[("scope", "calendar.read"), ("login_hint", "alice")],
    )
    .await;
    assert_eq!(r.1["interval"], 5, "the spec's default interval");
    let id = r.1["auth_req_id"].as_str().unwrap().to_string();
    err(&poll(&s, &a, &id).await, 400, "authorization_pending");
    let r = poll(&s, &a, &id).await;
    err(&r, 400, "slow_down");
    assert!(
        r.1["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds"),
        "{}",
        r.1
    );
    let r = poll(&s, &a, &id).await;
    err(&r, 400, "slow_down");
    assert!(
        r.1["error_description"]
            .as_str()
            .unwrap()
            .contains("15 seconds"),
        "{}",
        r.1
    );
    let pool = s.db().await;
    let (interval,): (i64,) = sqlx::query_as("SELECT poll_interval FROM ciba_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(interval, 15);
    pool.close().await;
}

async fn ciba_rows(s: &Server) -> i64 {
    let pool = s.db().await;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ciba_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// A server with alice, a web client, two poll-mode agents and one without CIBA.
struct BadRequests {
    s: Server,
    web: (String, String),
    a: (String, String),
    other: (String, String),
    plain: (String, String),
}

async fn bad_requests_server() -> BadRequests {
    let s = Server::start(Backend::Sqlite).await;
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &["--scope", "openid"]);
    let a = agent(&s, "Planner", &["--ciba-mode", "poll"]);
    let other = agent(&s, "Other", &["--ciba-mode", "poll"]);
    let plain = agent(&s, "Plain", &[]);
    BadRequests {
        s,
        web,
        a,
        other,
        plain,
    }
}

/// Bad backchannel requests get CIBA §13 / RFC 6749 errors and store nothing.
#[tokio::test]
async fn bad_requests() {
    let BadRequests {
        s,
        web,
        a,
        other,
        plain,
    } = bad_requests_server().await;
    let before = snapshot(&s).await;
    let url = format!("{}/bc-authorize", s.issuer("default"));

    // No client authentication.
    let r = reqwest::Client::new()
        .post(&url)
        .form(&[("scope", "calendar.read"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    // Wrong secret.
    let wrong = (a.0.clone(), "nope".to_string());
    err(
        &bc(
            &s,
            &wrong,
            &[("scope", "calendar.read"), ("login_hint", "alice")],
        )
        .await,
        401,
        "invalid_client",
    );

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("scope", "calendar.read")], "invalid_request"),
        (
            vec![("scope", "calendar.read"), ("login_hint", "nobody")],
            "unknown_user_id",
        ),
        (
            vec![("scope", "calendar.read"), ("login_hint_token", "x.y.z")],
            "invalid_request",
        ),
        (
            vec![("scope", "calendar.read"), ("id_token_hint", "x.y.z")],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("id_token_hint", "x.y.z"),
            ],
            "invalid_request",
        ),
        (
            vec![("scope", "mail.read"), ("login_hint", "alice")],
            "invalid_scope",
        ),
        (
            vec![("scope", "openid"), ("login_hint", "alice")],
            "invalid_scope",
        ),
        (vec![("login_hint", "alice")], "invalid_scope"),
        (
            vec![
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("requested_expiry", "soon"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("requested_expiry", "-5"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("resource", "not a uri"),
            ],
            "invalid_target",
        ),
        (
            vec![
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("authorization_details", "{}"),
            ],
            "invalid_authorization_details",
        ),
    ];
    for (form, want) in &cases {
        let r = bc(&s, &a, form).await;
        assert_eq!(
            (r.0, r.1["error"].as_str()),
            (400, Some(*want)),
            "{form:?}: {}",
            r.1
        );
    }
    let long = "x".repeat(200);
    err(
        &bc(
            &s,
            &a,
            &[
                ("scope", "calendar.read"),
                ("login_hint", "alice"),
                ("binding_message", &long),
            ],
        )
        .await,
        400,
        "invalid_binding_message",
    );
    // Not an agent, or an agent not registered for CIBA.
    let q = [("scope", "calendar.read"), ("login_hint", "alice")];
    err(&bc(&s, &web, &q).await, 400, "unauthorized_client");
    err(&bc(&s, &plain, &q).await, 400, "unauthorized_client");
    // A suspended agent.
    s.cli(
        &["agent", "suspend", "--tenant", "default", "--", &other.0],
        None,
    );
    err(&bc(&s, &other, &q).await, 400, "unauthorized_client");
    s.cli(
        &["agent", "resume", "--tenant", "default", "--", &other.0],
        None,
    );
    assert_eq!(ciba_rows(&s).await, 0, "refused requests store nothing");
    assert_eq!(before, snapshot(&s).await);
}

/// The token endpoint refuses an unknown, missing or another client's auth_req_id and a client
/// without the grant; the request stays pending for its own agent.
#[tokio::test]
async fn bad_auth_req_ids_are_refused() {
    let BadRequests {
        s, web, a, other, ..
    } = bad_requests_server().await;
    // Token endpoint: unknown, missing, another client's auth_req_id; a client without the grant.
    let id = ask(&s, &a, &[]).await;
    err(&poll(&s, &a, "made-up").await, 400, "invalid_grant");
    err(
        &token(&s.issuer("default"), &a, &[("grant_type", CIBA)]).await,
        400,
        "invalid_request",
    );
    err(&poll(&s, &other, &id).await, 400, "invalid_grant");
    err(&poll(&s, &web, &id).await, 400, "unauthorized_client");
    // Still pending for its own agent.
    err(&poll(&s, &a, &id).await, 400, "authorization_pending");
}

/// Registration rules: ping needs an https notification endpoint, poll takes none, push is
/// not offered.
#[tokio::test]
async fn registration_rules() {
    let s = Server::start(Backend::Sqlite).await;
    s.create_user("default", "alice");
    // Registration rules.
    for bad in [
        vec!["--ciba-mode", "ping"],
        vec!["--ciba-mode", "push"],
        vec![
            "--ciba-mode",
            "ping",
            "--ciba-notification-endpoint",
            "http://example.com/cb",
        ],
        vec![
            "--ciba-mode",
            "poll",
            "--ciba-notification-endpoint",
            "https://example.com/cb",
        ],
    ] {
        let mut args = vec![
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Bad",
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--generate-secret",
        ];
        args.extend_from_slice(&bad);
        let (ok, _, _) = s.cli_raw(&args, None);
        assert!(!ok, "{bad:?} must be refused");
    }
}

/// An agent with private_key_jwt (jti replay-protected at /bc-authorize too) and --require-dpop:
/// the token comes only with a DPoP proof and is bound to its key.
#[tokio::test]
async fn private_key_jwt_and_dpop() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let s = Server::start_with(
        Backend::Sqlite,
        &[("MANDATE_CIBA_INTERVAL", "1"), DEV_LOOPBACK],
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &["--scope", "openid"]);
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = kp.to_pkcs8v1().unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&pt[1..33]), "y": B64.encode(&pt[33..65]), "kid": "k1", "alg": "ES256"});
    let path = s.data_dir.with_extension("agent.jwk.json");
    std::fs::write(&path, jwk.to_string()).unwrap();
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Keyed",
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--jwk-file",
            path.to_str().unwrap(),
            "--require-dpop",
            "--ciba-mode",
            "poll",
        ],
        None,
    );
    assert_eq!(v["backchannel_token_delivery_mode"], "poll");
    let agent_id = v["client_id"].as_str().unwrap().to_string();
    let assertion = |jti: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("k1".into());
        let c = json!({"iss": agent_id, "sub": agent_id, "aud": issuer, "jti": jti, "iat": now, "exp": now + 60});
        jsonwebtoken::encode(
            &h,
            &c,
            &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .unwrap()
    };
    let send = |url: String, form: Vec<(&'static str, String)>, dpop: Option<String>| async move {
        let mut r = reqwest::Client::new().post(url).form(&form);
        if let Some(p) = dpop {
            r = r.header("DPoP", p);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };
    let assertion_form = |a: String| {
        vec![
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
            ),
            ("client_assertion", a),
        ]
    };
    let mut form = assertion_form(assertion("bc-1"));
    form.push(("scope", "calendar.read".into()));
    form.push(("login_hint", "alice".into()));
    let r = send(format!("{issuer}/bc-authorize"), form.clone(), None).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let id = r.1["auth_req_id"].as_str().unwrap().to_string();
    // The same assertion again is a replay.
    let r = send(format!("{issuer}/bc-authorize"), form, None).await;
    err(&r, 401, "invalid_client");

    let b = signed_in(&s, &web, "alice").await;
    let link = pending_link(&s, &b).await;
    assert_eq!(decide(&b, &link, "approve").await, 303);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut form = assertion_form(assertion("tok-1"));
    form.push(("grant_type", CIBA.into()));
    form.push(("auth_req_id", id.clone()));
    let r = send(format!("{issuer}/token"), form, None).await;
    err(&r, 400, "invalid_dpop_proof");

    // DPoP proof with a fresh key.
    let dk = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let dpt = dk.public_key().as_ref().to_vec();
    let djwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&dpt[1..33]), "y": B64.encode(&dpt[33..65])});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("dpop+jwt".into());
    h.jwk = Some(serde_json::from_value(djwk.clone()).unwrap());
    let proof = jsonwebtoken::encode(
        &h,
        &json!({"jti": "p-1", "htm": "POST", "htu": format!("{issuer}/token"), "iat": now}),
        &jsonwebtoken::EncodingKey::from_ec_der(dk.to_pkcs8v1().unwrap().as_ref()),
    )
    .unwrap();
    let mut form = assertion_form(assertion("tok-2"));
    form.push(("grant_type", CIBA.into()));
    form.push(("auth_req_id", id.clone()));
    let r = send(format!("{issuer}/token"), form, Some(proof)).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["token_type"], "DPoP");
    let c = claims(r.1["access_token"].as_str().unwrap());
    assert!(c["cnf"]["jkt"].is_string(), "{c}");
    assert_eq!(c["act"]["sub"], agent_id.as_str());
}

/// The person's own `mandate:self` token, through the browser flow of `web`.
async fn self_token(s: &Server, web: &(String, String), username: &str) -> String {
    person_token(s, web, username, "openid mandate:self").await
}

/// The self-service API lists a person's pending requests and decides them; nobody else's.
#[tokio::test]
async fn self_service_api_decides() {
    let s = Server::start_with(
        Backend::Sqlite,
        &[("MANDATE_CIBA_INTERVAL", "1"), DEV_LOOPBACK],
    )
    .await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "mandate:self"]);
    let a = agent(&s, "Planner", &["--ciba-mode", "poll"]);
    let id = ask(&s, &a, &[]).await;
    let alice_at = self_token(&s, &web, "alice").await;
    let bob_at = self_token(&s, &web, "bob").await;
    let http = reqwest::Client::new();
    let list = |at: String| {
        let http = http.clone();
        let url = format!("{issuer}/account/v1/ciba-requests");
        async move {
            let r = http.get(url).bearer_auth(at).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["ciba_requests"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let mine = list(alice_at.clone()).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["agent"]["name"], "Planner");
    assert_eq!(mine[0]["binding_message"], "Book lunch, code 4711");
    let rid = mine[0]["id"].as_str().unwrap().to_string();
    assert!(list(bob_at.clone()).await.is_empty());
    let decide = |at: String, body: Value| {
        let http = http.clone();
        let url = format!("{issuer}/account/v1/ciba-requests/{rid}");
        async move {
            let r = http
                .post(url)
                .bearer_auth(at)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let r = decide(bob_at, json!({"decision": "approve"})).await;
    assert_eq!(r.0, 404, "{}", r.1);
    let r = decide(alice_at.clone(), json!({"decision": "maybe"})).await;
    err(&r, 400, "invalid_request");
    // No token: 401.
    let r = http
        .get(format!("{issuer}/account/v1/ciba-requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = decide(alice_at.clone(), json!({"decision": "approve"})).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["decision"], "approved");
    let mandate = r.1["mandate_id"].as_str().unwrap().to_string();
    assert!(list(alice_at.clone()).await.is_empty());
    let r = decide(alice_at, json!({"decision": "deny"})).await;
    assert_eq!(r.0, 404, "already decided");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, v) = poll(&s, &a, &id).await;
    assert_eq!(status, 200, "{v}");
    let c = claims(v["access_token"].as_str().unwrap());
    assert_eq!(
        (c["sub"].as_str(), c["mandate"].as_str()),
        (Some(alice.as_str()), Some(mandate.as_str()))
    );
}

both_backends!(
    discovery_advertises_ciba,
    pending_request_reaches_only_the_person,
    approval_gives_a_delegated_token,
    deny_and_expire,
    ping_mode
);
