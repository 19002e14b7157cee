//! Per-tenant settings (`mandate tenant set`), over real HTTP on SQLite and PostgreSQL:
//! impersonation is off until a tenant enables it, then a non-agent client gets a token for the
//! person with no `act`, recorded as impersonation, that only narrows and never launders a
//! delegated token; the accepted RFC 9396 types are published in discovery and enforced.

use crate::common::*;
use serde_json::{Value, json};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn created(v: &Value) -> (String, String) {
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

async fn exchange(
    s: &Server,
    client: &(String, String),
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", AT_TYPE),
    ];
    form.extend_from_slice(extra);
    token(&s.issuer("default"), client, &form).await
}

async fn impersonation(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let support = created(&s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Support desk",
            "--grant-type",
            EXCHANGE,
            "--scope",
            "calendar.read",
        ],
        None,
    ));
    let person = person_token(&s, &web, "alice", "openid calendar.read").await;

    // Off by default: only agents exchange, and nothing changes.
    let before = snapshot(&s).await;
    let (status, v) = exchange(&s, &support, &person, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{v}"
    );
    assert_eq!(snapshot(&s).await, before);

    let shown = s.cli(&["tenant", "set", "default", "--impersonation", "on"], None);
    assert_eq!(shown["settings"]["impersonation"], true, "{shown}");
    // Other nodes (and this one's tenant cache) pick it up within the cache lifetime.
    let mut result = (0, Value::Null);
    for _ in 0..50 {
        result = exchange(&s, &support, &person, &[]).await;
        if result.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, v) = result;
    assert_eq!(status, 200, "{v}");
    let c = claims(v["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], alice.as_str());
    assert!(c.get("act").is_none() && c.get("mandate").is_none(), "{c}");
    assert_eq!(c["client_id"], support.0.as_str());
    assert_eq!(v["scope"], "calendar.read");
    let active = introspect(
        &s.issuer("default"),
        &web,
        v["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(active["active"], true, "{active}");

    // Only narrows: more scope or another audience is refused.
    let (status, v) = exchange(&s, &support, &person, &[("scope", "calendar.write")]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_scope")),
        "{v}"
    );
    let (status, v) = exchange(
        &s,
        &support,
        &person,
        &[("resource", "https://elsewhere.example")],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );

    // A delegated token is never laundered into a plain one.
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
        ],
        None,
    );
    let (status, v) = exchange(&s, &agent, &person, &[]).await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();
    let (status, v) = exchange(&s, &support, &delegated, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    // An agent still gets delegation (act), not impersonation.
    assert_eq!(claims(&delegated)["act"], json!({"sub": agent.0}));

    // Recorded as impersonation, with the client as actor and the person as subject.
    let events = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "token_impersonated",
            "--json",
        ],
        None,
    );
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"]["id"], support.0.as_str());
    assert_eq!(events[0]["subject"]["id"], alice.as_str());
    let changed = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "tenant_settings_changed",
            "--json",
        ],
        None,
    );
    assert_eq!(changed.as_array().unwrap().len(), 1);
}

async fn details_types(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_user("default", "alice");
    let discovery = |s: &Server| {
        let url = format!("{}/.well-known/openid-configuration", s.issuer("default"));
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Any type accepted: omitted (RFC 9396 §10), not an empty list.
    assert_eq!(
        discovery(&s)
            .await
            .get("authorization_details_types_supported"),
        None
    );
    s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--authorization-details-type",
            "calendar",
            "--authorization-details-type",
            "payment_initiation",
        ],
        None,
    );
    let agent = secret_agent(&s, "default", "Planner", "alice", "calendar.read");
    // A mandate with an unknown type is refused; a known one is recorded.
    let (ok, _, err) = s.cli_raw(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            "alice",
            &format!("--agent={}", agent.0),
            "--authorization-details",
            r#"[{"type":"mail","actions":["send"]}]"#,
        ],
        None,
    );
    assert!(!ok, "an unknown type must be refused");
    assert!(err.contains("authorization_details"), "{err}");
    s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            "alice",
            &format!("--agent={}", agent.0),
            "--authorization-details",
            r#"[{"type":"calendar","actions":["read"]}]"#,
        ],
        None,
    );
    // Published in discovery once every node's tenant cache has it.
    let mut listed = Value::Null;
    for _ in 0..50 {
        listed = discovery(&s).await["authorization_details_types_supported"].clone();
        if !listed.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(listed, json!(["calendar", "payment_initiation"]));
    // A token request with another type: invalid_authorization_details (RFC 9396 §5).
    let (status, v) = exchange(
        &s,
        &agent,
        "any-subject-token",
        &[("authorization_details", r#"[{"type":"mail"}]"#)],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_authorization_details")),
        "{v}"
    );
    // Back to any type.
    let shown = s.cli(
        &[
            "tenant",
            "set",
            "default",
            "--any-authorization-details-type",
        ],
        None,
    );
    assert_eq!(shown["settings"]["authorization_details_types"], json!([]));
}

#[tokio::test]
async fn impersonation_sqlite() {
    impersonation(Backend::Sqlite).await;
}

#[tokio::test]
async fn impersonation_postgres() {
    impersonation(Backend::Postgres).await;
}

#[tokio::test]
async fn details_types_sqlite() {
    details_types(Backend::Sqlite).await;
}

#[tokio::test]
async fn details_types_postgres() {
    details_types(Backend::Postgres).await;
}
