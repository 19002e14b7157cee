//! Agents acting for a person under a mandate, end to end over HTTP on SQLite and PostgreSQL:
//! registry (CLI), mandates, RFC 8693 token exchange with nested `act` chains and attenuation,
//! introspection telling the whole story, and revocation that hits only what it should.

use crate::common::*;
use serde_json::Value;

const CALENDAR: &str = "https://calendar.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Register an agent with a generated secret; returns (id, secret).
fn agent(s: &Server, name: &str, owner: &str) -> (String, String) {
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            name,
            "--owner",
            owner,
            "--provider",
            "Acme AI",
            "--model",
            "planner-2",
            "--version",
            "2.1",
            "--scope-ceiling",
            "calendar.read",
            "--scope-ceiling",
            "calendar.write",
            "--generate-secret",
        ],
        None,
    );
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

fn mandate(s: &Server, user: &str, agent: &str, depth: &str) -> String {
    let v = s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            user,
            &format!("--agent={agent}"),
            "--scope",
            "calendar.read",
            "--resource",
            CALENDAR,
            "--expires-in",
            "3600",
            "--max-delegation-depth",
            depth,
        ],
        None,
    );
    v["id"].as_str().unwrap().into()
}

async fn exchange(
    s: &Server,
    agent: &(String, String),
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", AT_TYPE),
    ];
    form.extend_from_slice(extra);
    token(&s.issuer("default"), agent, &form).await
}

async fn delegation(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "calendar.read",
            "--scope",
            "calendar.write",
        ],
    );
    let a = agent(&s, "Planner", "alice");
    let b = agent(&s, "Booker", "alice");
    let c = agent(&s, "Solo", "alice");
    let listed = s.cli(&["agent", "list", "--tenant", "default"], None);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let user_at = person_token(&s, &web, "alice", "openid calendar.read calendar.write").await;
    let issuer = s.issuer("default");

    // No mandate yet: refused.
    let (status, v) = exchange(&s, &a, &user_at, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );

    let m = mandate(&s, "alice", &a.0, "1");
    let (status, v) = exchange(&s, &a, &user_at, &[("resource", CALENDAR)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["issued_token_type"], AT_TYPE);
    assert_eq!(v["scope"], "calendar.read");
    let a_token = v["access_token"].as_str().unwrap().to_string();
    let c1 = claims(&a_token);
    assert_eq!(c1["sub"], alice.as_str(), "sub stays the person");
    assert_eq!(c1["act"], serde_json::json!({"sub": a.0}));
    assert_eq!(c1["mandate"], m.as_str());
    assert_eq!(c1["aud"], CALENDAR);
    assert_eq!(c1["client_id"], a.0.as_str());
    assert!(c1["exp"].as_i64().unwrap() - c1["iat"].as_i64().unwrap() <= 300);

    // Attenuation: more scope, another resource, a wider detail are refused.
    let (status, v) = exchange(&s, &a, &user_at, &[("scope", "calendar.write")]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_scope")),
        "{v}"
    );
    let (status, v) = exchange(&s, &a, &user_at, &[("resource", "https://mail.example")]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
    let (status, v) = exchange(
        &s,
        &a,
        &user_at,
        &[("authorization_details", r#"[{"type":"payment"}]"#)],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_authorization_details")),
        "{v}"
    );
    // A plain client cannot exchange; a bad subject token is refused.
    let (status, v) = exchange(&s, &web, &user_at, &[]).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = exchange(&s, &a, "garbage", &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );

    // Sub-delegation to B: allowed by depth 1, act nests (newest outermost), scope stays narrow.
    let (status, v) = exchange(&s, &b, &a_token, &[]).await;
    assert_eq!(status, 200, "{v}");
    let b_token = v["access_token"].as_str().unwrap().to_string();
    let c2 = claims(&b_token);
    assert_eq!(c2["sub"], alice.as_str());
    assert_eq!(
        c2["act"],
        serde_json::json!({"sub": b.0, "act": {"sub": a.0}})
    );
    assert_eq!(c2["mandate"], m.as_str());
    assert_eq!(c2["scope"], "calendar.read");
    // One more hop exceeds the depth.
    let (status, v) = exchange(&s, &c, &b_token, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );

    // A mandate without sub-delegation.
    mandate(&s, "alice", &c.0, "0");
    let (status, v) = exchange(&s, &c, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let c_token = v["access_token"].as_str().unwrap().to_string();
    let (status, v) = exchange(&s, &b, &c_token, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );

    // Introspection tells the whole story.
    let i = introspect(&issuer, &web, &b_token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["act"]["act"]["sub"], a.0.as_str());
    assert_eq!(i["mandate"], m.as_str());
    assert_eq!(i["agent"]["id"], b.0.as_str());
    assert_eq!(i["agent"]["model"], "planner-2");

    // Suspending C kills C's token only; resuming revives it.
    s.cli(
        &["agent", "suspend", "--tenant", "default", "--", &c.0],
        None,
    );
    assert_eq!(introspect(&issuer, &web, &c_token).await["active"], false);
    assert_eq!(introspect(&issuer, &web, &a_token).await["active"], true);
    let (status, _) = exchange(&s, &c, &user_at, &[]).await;
    assert_eq!(status, 401, "a suspended agent gets nothing");
    s.cli(
        &["agent", "resume", "--tenant", "default", "--", &c.0],
        None,
    );
    assert_eq!(introspect(&issuer, &web, &c_token).await["active"], true);

    // Revoking the mandate kills every token derived from it, down the chain, and nothing else.
    s.revoke_mandate("default", &m);
    assert_eq!(introspect(&issuer, &web, &a_token).await["active"], false);
    assert_eq!(introspect(&issuer, &web, &b_token).await["active"], false);
    assert_eq!(introspect(&issuer, &web, &c_token).await["active"], true);
    assert_eq!(
        introspect(&issuer, &web, &user_at).await["active"],
        true,
        "the person's own token lives"
    );
    let (status, _) = exchange(&s, &a, &user_at, &[]).await;
    assert_eq!(status, 400);

    // The trail: who did it, on whose behalf, through whom, under which mandate.
    let trail = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            &format!("--mandate={m}"),
        ],
        None,
    );
    let trail = trail.as_array().unwrap();
    let exchanged: Vec<&Value> = trail
        .iter()
        .filter(|e| e["event"] == "token_exchanged")
        .collect();
    assert_eq!(exchanged.len(), 2, "{trail:?}");
    let hop2 = exchanged[0];
    assert_eq!(hop2["actor"]["id"], b.0.as_str());
    assert_eq!(hop2["subject"]["id"], alice.as_str());
    assert_eq!(hop2["delegated"], true);
    assert_eq!(
        hop2["act_chain"],
        serde_json::json!([{"type": "agent", "id": b.0}, {"type": "agent", "id": a.0}])
    );
    assert!(trail.iter().any(|e| e["event"] == "mandate_revoked"));
    assert!(trail.iter().any(|e| e["event"] == "mandate_created"));
    let by_agent = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            &format!("--agent={}", a.0),
            "--event",
            "token_exchanged",
        ],
        None,
    );
    assert_eq!(
        by_agent.as_array().unwrap().len(),
        2,
        "A acted directly and through B"
    );

    // Deleting an agent revokes its mandates.
    s.cli(
        &["agent", "delete", "--tenant", "default", "--", &c.0],
        None,
    );
    assert_eq!(introspect(&issuer, &web, &c_token).await["active"], false);
    let gone = s.cli(&["agent", "show", "--tenant", "default", "--", &c.0], None);
    assert_eq!(gone["status"], "deleted");
}

/// RFC 8693 `audience` is honoured and may repeat: the token is for exactly the audiences
/// asked, each inside the mandate, else `invalid_target` (issue 12, item 5).
async fn audiences(backend: Backend) {
    const MAIL: &str = "https://mail.example";
    let s = Server::start(backend).await;
    s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let a = agent(&s, "Planner", "alice");
    s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            "alice",
            &format!("--agent={}", a.0),
            "--scope",
            "calendar.read",
            "--resource",
            CALENDAR,
            "--resource",
            MAIL,
            "--expires-in",
            "3600",
        ],
        None,
    );
    let user_at = person_token(&s, &web, "alice", "openid calendar.read").await;
    let (status, v) = exchange(&s, &a, &user_at, &[("audience", CALENDAR)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(claims(v["access_token"].as_str().unwrap())["aud"], CALENDAR);
    let (status, v) = exchange(
        &s,
        &a,
        &user_at,
        &[("audience", MAIL), ("audience", CALENDAR)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["aud"],
        serde_json::json!([CALENDAR, MAIL])
    );
    let (status, v) = exchange(&s, &a, &user_at, &[("audience", "https://bank.example")]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
    let (status, v) = exchange(
        &s,
        &a,
        &user_at,
        &[("audience", CALENDAR), ("audience", "https://bank.example")],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
    // `resource` and `audience` together: both must be inside the mandate.
    let (status, v) = exchange(
        &s,
        &a,
        &user_at,
        &[("resource", MAIL), ("audience", CALENDAR)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["aud"],
        serde_json::json!([CALENDAR, MAIL])
    );
}

both_backends!(delegation, audiences);
