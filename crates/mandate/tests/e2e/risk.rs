//! The risk engine over HTTP on SQLite and PostgreSQL (issue 14 item 6): credential stuffing
//! blocked before any password is checked, the same answer for every name; impossible travel
//! between two addresses a GeoIP database (written here) places far apart, behind a trusted
//! proxy; a breached password noticed; an agent asking too fast sent to the person for
//! approval, then suspended with the reason on the person's agents page; every decision with
//! its reasons in the audit trail and the metrics.

use mandate_core::geo::{GeoPoint, mmdb};
use serde_json::Value;

use crate::common::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A browser whose requests come through the trusted proxy from `ip`.
fn browser_from(ip: &str) -> Browser {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-forwarded-for", ip.parse().unwrap());
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(h)
            .build()
            .unwrap(),
    }
}

/// Start a sign-in for `client` and submit `user`'s password: (status, body, Location).
async fn sign_in(
    b: &Browser,
    issuer: &str,
    client: &str,
    user: &str,
    pw: &str,
) -> (u16, String, Option<String>) {
    let (_, challenge) = pkce();
    let (status, html, _) = b
        .get(&auth_url(issuer, client, &challenge, "openid", &[]))
        .await;
    assert_eq!(status, 200, "{html}");
    b.login(issuer, &html, user, pw).await
}

/// The risk decisions recorded, oldest first: (reason, detail).
async fn decisions(s: &Server) -> Vec<(String, Value)> {
    let pool = s.db().await;
    let rows: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT reason, detail FROM audit_events WHERE kind = 'risk_decision' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter()
        .map(|(r, d)| (r.unwrap_or_default(), serde_json::from_str(&d).unwrap()))
        .collect()
}

async fn metrics(s: &Server) -> String {
    reqwest::get(format!("{}/metrics", s.public_base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// One address failing across many names is blocked before any password is checked, and the
/// answer is the same for a name that exists (even with its right password) and one that
/// does not; the decision is audited with its reasons.
async fn credential_stuffing_is_blocked(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "kim");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    // Ten names fail from one address: each judged (401).
    for i in 0..10 {
        let (st, _, _) = sign_in(&b, &issuer, &web.0, &format!("victim{i}"), "guess").await;
        assert_eq!(st, 401, "attempt {i}");
    }
    // Then every attempt from it waits, known name or not, right password or not.
    let (st_known, body_known, _) = sign_in(&b, &issuer, &web.0, "kim", PASSWORD).await;
    let (st_unknown, body_unknown, _) = sign_in(&b, &issuer, &web.0, "nobody", "x").await;
    assert_eq!((st_known, st_unknown), (429, 429));
    let alert = |b: &str| {
        b.split("role=\"alert\">")
            .nth(1)
            .and_then(|x| x.split('<').next())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(alert(&body_known), alert(&body_unknown), "no enumeration");
    let d = decisions(&s).await;
    let blocks: Vec<&(String, Value)> =
        d.iter().filter(|(_, v)| v["decision"] == "block").collect();
    assert_eq!(blocks.len(), 1, "the block is recorded once: {d:?}");
    let (reason, detail) = blocks[0];
    assert_eq!(reason, "block: credential_stuffing");
    assert_eq!(detail["stage"], "attempt");
    assert_eq!(detail["policy"], "default");
    assert_eq!(detail["signals"]["credential_stuffing"], 10.0);
    assert_eq!(detail["matched"][0]["signal"], "credential_stuffing");
    assert_eq!(detail["matched"][0]["at_least"], 10);
    assert!(metrics(&s).await.contains(
        "mandate_risk_decisions_total{decision=\"block\",signal=\"credential_stuffing\"}"
    ));
    // The failures it saw are stored with keyed digests of the names, never the names.
    let pool = s.db().await;
    let accounts: Vec<String> = sqlx::query_scalar("SELECT account FROM risk_failures")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(accounts.len(), 10);
    assert!(accounts.iter().all(|a| !a.contains("victim")));
}

/// Two sign-ins from addresses the GeoIP database places in Berlin and in Sydney, minutes
/// apart: the second must be phishing-resistant (a step-up to a passkey); with the policy set
/// to block, it is refused like too many attempts. A breached password is noticed. Each
/// decision is audited with the speed and the rule.
async fn impossible_travel(backend: Backend) {
    let db = mmdb::write(&[
        (
            "192.0.2.0/24".parse().unwrap(),
            GeoPoint {
                lat: 52.52,
                lon: 13.40,
            },
        ),
        (
            "198.51.100.0/24".parse().unwrap(),
            GeoPoint {
                lat: -33.87,
                lon: 151.21,
            },
        ),
    ])
    .unwrap();
    let path = std::env::temp_dir().join(format!(
        "mandate-risk-{}-{:?}.mmdb",
        std::process::id(),
        backend
    ));
    std::fs::write(&path, db).unwrap();
    let s = Server::start_at(
        backend,
        PublicUrl::Localhost,
        &[
            ("MANDATE_GEOIP_DB", path.to_str().unwrap()),
            ("MANDATE_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "ann");
    let web = s.create_web_client("default", &[]);
    s.cli(
        &[
            "tenant",
            "risk",
            "default",
            "--rule",
            "impossible_travel=passkey@1000",
        ],
        None,
    );

    // Berlin: a first sign-in, nothing to compare with (signed in: the offer of a passkey).
    let signed_in = |(st, body, _): &(u16, String, Option<String>)| {
        *st == 200 && body.contains("name=\"skip_passkey\"")
    };
    let r = sign_in(
        &browser_from("192.0.2.10"),
        &issuer,
        &web.0,
        "ann",
        PASSWORD,
    )
    .await;
    assert!(signed_in(&r), "{r:?}");
    // Sydney a moment later: the session owes a passkey, and ann has none to give, nor a
    // second factor or a verified address to fall back on (only the person's own methods,
    // never one enrolled now), so the client hears that the requirement cannot be met here.
    let sydney = browser_from("198.51.100.7");
    let (st, _, loc) = sign_in(&sydney, &issuer, &web.0, "ann", PASSWORD).await;
    assert_eq!(st, 303, "{loc:?}");
    assert!(
        loc.as_deref()
            .is_some_and(|l| l.contains("error=unmet_authentication_requirements")),
        "{loc:?}"
    );
    // Going on without one gets no code either.
    let (_, challenge) = pkce();
    let (st, _, loc) = sydney
        .get(&auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(st, 303);
    assert!(loc.unwrap().contains("error=login_required"));
    let d = decisions(&s).await;
    // The refusal is on the trail after the decision, with why.
    let (reason, detail) = d.last().unwrap();
    assert_eq!(reason, "refused: no_passkey");
    assert_eq!(
        (detail["stage"].as_str(), detail["owed"].as_str()),
        (Some("step"), Some("phr"))
    );
    let (reason, detail) = &d[d.len() - 2];
    assert_eq!(reason, "passkey: impossible_travel, new_device");
    assert_eq!(detail["policy"], "tenant");
    assert!(detail["signals"]["impossible_travel"].as_f64().unwrap() > 100_000.0);
    let travel = detail["matched"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["signal"] == "impossible_travel")
        .unwrap();
    assert_eq!(
        (travel["action"].as_str(), travel["at_least"].as_u64()),
        (Some("passkey"), Some(1000))
    );

    // Blocked instead: refused as too many attempts, with Retry-After.
    s.cli(
        &[
            "tenant",
            "risk",
            "default",
            "--rule",
            "impossible_travel=block",
        ],
        None,
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (st, _, _) = sign_in(
        &browser_from("192.0.2.11"),
        &issuer,
        &web.0,
        "ann",
        PASSWORD,
    )
    .await;
    assert_eq!(st, 429);
    let d = decisions(&s).await;
    assert_eq!(d.last().unwrap().1["decision"], "block");
    // The places are stored coarse, with the addresses, and go when the person is erased.
    let pool = s.db().await;
    let places: Vec<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT lat_tenths, lon_tenths FROM risk_sign_ins ORDER BY at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(places, [(Some(525), Some(134)), (Some(-339), Some(1512))]);

    // A breached password (an old account's, set before the policy): noticed and recorded.
    s.create_user("default", "bob");
    let weak = mandate_core::crypto::secret::password::hash_bounded("password1".into())
        .await
        .unwrap();
    sqlx::query("UPDATE users SET password_hash = $1 WHERE username = 'bob'")
        .bind(&weak)
        .execute(&pool)
        .await
        .unwrap();
    let r = sign_in(
        &browser_from("192.0.2.12"),
        &issuer,
        &web.0,
        "bob",
        "password1",
    )
    .await;
    assert!(signed_in(&r), "{r:?}");
    let d = decisions(&s).await;
    let (reason, detail) = d.last().unwrap();
    assert_eq!(reason, "allow: breached_password");
    assert_eq!(detail["signals"]["breached_password"], 1.0);
    assert!(
        metrics(&s).await.contains(
            "mandate_risk_decisions_total{decision=\"allow\",signal=\"breached_password\"}"
        )
    );
    s.cli(
        &["user", "erase", "--tenant", "default", "--username", "ann"],
        None,
    );
    let left: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM risk_sign_ins")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "only bob's sign-in is left");
    let _ = std::fs::remove_file(&path);
}

/// Alice, a web client, an agent "Planner" (secret, CIBA poll mode) with a mandate for her
/// calendar, and the tenant's risk `rules`: (web client, agent, a token of alice's).
async fn planner_for_alice(
    s: &Server,
    rules: &[&str],
) -> ((String, String), (String, String), String) {
    s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "calendar.read",
            "--scope",
            "mandate:self",
        ],
    );
    let mut args = vec!["tenant", "risk", "default"];
    for r in rules {
        args.extend(["--rule", r]);
    }
    s.cli(&args, None);
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Planner",
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--ciba-mode",
            "poll",
            "--generate-secret",
        ],
        None,
    );
    let agent = (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
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
            "3600",
        ],
        None,
    );
    let person = person_token(s, &web, "alice", "openid calendar.read").await;
    (web, agent, person)
}

/// The agent exchanges the person's token for one of its own (RFC 8693).
async fn exchange(issuer: &str, agent: &(String, String), person: &str) -> (u16, Value) {
    token(
        issuer,
        agent,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", person),
            ("subject_token_type", AT_TYPE),
        ],
    )
    .await
}

/// An agent asking for tokens for a person faster than the policy allows is told to ask the
/// person (CIBA), then, faster still, suspended: the person sees why on their agents page.
async fn agent_velocity(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let (web, agent, person) = planner_for_alice(
        &s,
        &["agent_velocity=approval@3", "agent_velocity=suspend@5"],
    )
    .await;
    let exchange = || exchange(&issuer, &agent, &person);
    for _ in 0..2 {
        let (st, v) = exchange().await;
        assert_eq!(st, 200, "{v}");
    }
    for _ in 0..2 {
        let (st, v) = exchange().await;
        assert_eq!(
            (st, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .starts_with("approval_required:"),
            "{v}"
        );
    }
    let (st, v) = exchange().await;
    assert_eq!(
        (st, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    let shown = s.cli(
        &["agent", "show", "--tenant", "default", "--", &agent.0],
        None,
    );
    assert_eq!(shown["status"], "suspended");
    assert!(
        shown["status_reason"]
            .as_str()
            .unwrap()
            .contains("agent_velocity")
    );
    let d = decisions(&s).await;
    let kinds: Vec<&str> = d
        .iter()
        .map(|(_, v)| v["decision"].as_str().unwrap())
        .collect();
    assert!(
        kinds.ends_with(&["allow", "allow", "approval", "approval", "suspend"]),
        "{kinds:?}"
    );
    let (reason, detail) = d.last().unwrap();
    assert_eq!(reason, "suspend: agent_velocity");
    assert_eq!(detail["stage"], "token_exchange");
    assert_eq!(detail["signals"]["agent_velocity"], 5.0);
    let pool = s.db().await;
    let suspended: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM audit_events \
         WHERE kind = 'agent_suspended' AND reason = 'risk'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(suspended, 1);
    // The person sees the reason on their agents page.
    let b = Browser::new();
    let (_, challenge) = pkce();
    b.authorize(
        &issuer,
        &auth_url(&issuer, &web.0, &challenge, "openid", &[]),
        "alice",
    )
    .await;
    let (st, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert_eq!(st, 200);
    assert!(
        page.contains("Why:") && page.contains("agent_velocity"),
        "{page}"
    );
    // Resumed by an administrator: the reason goes.
    let shown = s.cli(
        &["agent", "resume", "--tenant", "default", "--", &agent.0],
        None,
    );
    assert!(shown["status_reason"].is_null(), "{shown}");
}

/// The person approving a request of an agent the policy held (CIBA) starts its velocity
/// count again: the agent goes on without asking again at once, and a new burst asks again.
async fn approval_starts_the_agent_count_again(backend: Backend) {
    let s = Server::start_with(backend, &[("MANDATE_CIBA_INTERVAL", "1")]).await;
    let issuer = s.issuer("default");
    let (web, agent, person) = planner_for_alice(&s, &["agent_velocity=approval@3"]).await;
    let exchange = || exchange(&issuer, &agent, &person);
    let held = |v: &Value| {
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("approval_required:"))
    };
    for _ in 0..2 {
        let (st, v) = exchange().await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = exchange().await;
    assert!(st == 400 && held(&v), "{v}");

    // The agent asks the person; she approves through the self-service API.
    let (st, v) = post_auth(
        &format!("{issuer}/bc-authorize"),
        &agent,
        &[("scope", "calendar.read"), ("login_hint", "alice")],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let auth_req_id = v["auth_req_id"].as_str().unwrap().to_string();
    let own = person_token(&s, &web, "alice", "openid mandate:self").await;
    let http = reqwest::Client::new();
    let pending: Value = http
        .get(format!("{issuer}/account/v1/ciba-requests"))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = pending["ciba_requests"][0]["id"].as_str().unwrap();
    let r = http
        .post(format!("{issuer}/account/v1/ciba-requests/{rid}"))
        .bearer_auth(&own)
        .json(&serde_json::json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, v) = token(
        &issuer,
        &agent,
        &[
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", &auth_req_id),
        ],
    )
    .await;
    assert_eq!(st, 200, "{v}");

    // Counted again from the approval: two more, then the person is asked again.
    for _ in 0..2 {
        let (st, v) = exchange().await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = exchange().await;
    assert!(st == 400 && held(&v), "{v}");
}

both_backends!(
    credential_stuffing_is_blocked,
    impossible_travel,
    agent_velocity,
    approval_starts_the_agent_count_again,
);
