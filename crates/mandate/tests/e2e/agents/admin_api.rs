//! The admin HTTP API for agents and mandates, over real HTTP on SQLite and PostgreSQL: an
//! administrator's client registers an agent and records a mandate, the agent exchanges the
//! person's token under it, and suspending the agent or revoking the mandate through the API
//! takes effect at once. Refusals get the standard errors and change nothing.

use crate::common::*;
use serde_json::{Value, json};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CALENDAR: &str = "https://calendar.example";

async fn call(method: &str, url: &str, bearer: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut r = http
        .request(method.parse().unwrap(), url)
        .bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn client_token(s: &Server, client: &(String, String)) -> String {
    let (status, v) = token(
        &s.issuer("default"),
        client,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

fn service_client(s: &Server, scope: &str) -> (String, String) {
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
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

/// A server with alice, a web client for calendar.read, an admin client and its token, a
/// token without mandate:admin, and the admin API's base URL.
struct Admin {
    s: Server,
    alice: String,
    web: (String, String),
    admin_client: (String, String),
    admin: String,
    plain: String,
    base: String,
}

async fn admin(backend: Backend) -> Admin {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let admin_client = service_client(&s, "mandate:admin");
    let admin = client_token(&s, &admin_client).await;
    let plain = client_token(&s, &service_client(&s, "api.read")).await;
    let base = format!("{}/admin/v1/tenants/default", s.base);
    Admin {
        s,
        alice,
        web,
        admin_client,
        admin,
        plain,
        base,
    }
}

/// Registering an agent needs an admin token; bad bodies are 400 and an unknown owner 404;
/// the refusals change nothing.
async fn agent_registration_refusals_change_nothing(backend: Backend) {
    let Admin {
        s,
        admin,
        plain,
        base,
        ..
    } = admin(backend).await;

    // Only an admin token; the refusal changes nothing.
    let before = snapshot(&s).await;
    let (status, v) = call(
        "POST",
        &format!("{base}/agents"),
        &plain,
        Some(json!({"name": "x", "tenant_owned": true, "scope_ceiling": "calendar.read", "generate_secret": true})),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("insufficient_scope")),
        "{v}"
    );
    // Bad bodies: 400 invalid_request; an unknown owner: 404.
    for bad in [
        json!({"name": "x", "scope_ceiling": "calendar.read", "generate_secret": true}),
        json!({"name": "x", "tenant_owned": true, "scope_ceiling": "calendar.read"}),
        json!({"name": "x", "tenant_owned": true, "scope_ceiling": [], "generate_secret": true}),
        json!({"name": "x", "tenant_owned": true, "scope_ceiling": "a", "generate_secret": true, "color": 1}),
        json!({"name": "x", "tenant_owned": true, "scope_ceiling": "a", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
        json!("not an object"),
    ] {
        let (status, v) = call("POST", &format!("{base}/agents"), &admin, Some(bad.clone())).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
    let (status, v) = call(
        "POST",
        &format!("{base}/agents"),
        &admin,
        Some(
            json!({"name": "x", "owner": "nobody", "scope_ceiling": "a", "generate_secret": true}),
        ),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(snapshot(&s).await.len(), before.len());
    assert_eq!(
        call("GET", &format!("{base}/agents"), &admin, None).await.1["agents"],
        json!([])
    );
}

/// An agent registered and a mandate recorded through the admin API (refusals beyond the
/// ceiling or for an unknown user); the agent exchanges alice's token under it; suspending,
/// resuming, revoking and deleting take effect at once and are audited with the admin client.
/// One story: each step acts on the agent and mandate of the one before.
async fn agent_and_mandate_lifecycle(backend: Backend) {
    let Admin {
        s,
        alice,
        web,
        admin_client,
        admin,
        base,
        ..
    } = admin(backend).await;

    // Register an agent owned by alice, with a secret shown once.
    let (status, v) = call(
        "POST",
        &format!("{base}/agents"),
        &admin,
        Some(json!({
            "name": "Planner", "owner": "alice", "provider": "Acme AI", "model": "planner-2",
            "version": "2.1", "scope_ceiling": ["calendar.read", "calendar.write"],
            "generate_secret": true,
        })),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["owner"], alice.as_str());
    assert_eq!(v["status"], "active");
    assert_eq!(v["scope_ceiling"], "calendar.read calendar.write");
    let agent = (
        v["id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
    let (status, shown) = call("GET", &format!("{base}/agents/{}", agent.0), &admin, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["name"], "Planner");
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is shown once"
    );
    let (status, _) = call("GET", &format!("{base}/agents/nope"), &admin, None).await;
    assert_eq!(status, 404);

    // A mandate through the API; beyond the ceiling or for an unknown user is refused.
    let (status, v) = call(
        "POST",
        &format!("{base}/mandates"),
        &admin,
        Some(json!({"username": "alice", "agent_id": agent.0, "scope": "calendar.delete"})),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (status, _) = call(
        "POST",
        &format!("{base}/mandates"),
        &admin,
        Some(json!({"username": "bob", "agent_id": agent.0, "scope": "calendar.read"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, m) = call(
        "POST",
        &format!("{base}/mandates"),
        &admin,
        Some(json!({
            "username": "alice", "agent_id": agent.0, "scope": ["calendar.read"],
            "resources": [CALENDAR], "expires_in": 3600, "max_token_lifetime": 120,
        })),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["user_id"], alice.as_str());
    assert_eq!(m["origin"], "api");
    let mandate_id = m["id"].as_str().unwrap().to_string();
    let (_, listed) = call(
        "GET",
        &format!("{base}/mandates?username=alice"),
        &admin,
        None,
    )
    .await;
    assert_eq!(listed["mandates"].as_array().unwrap().len(), 1, "{listed}");
    let (status, _) = call("GET", &format!("{base}/mandates"), &admin, None).await;
    assert_eq!(status, 400, "username is required");

    // The agent acts under it.
    let person = person_token(&s, &web, "alice", "openid calendar.read").await;
    let exchange = || async {
        token(
            &s.issuer("default"),
            &agent,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &person),
                ("subject_token_type", AT_TYPE),
                ("resource", CALENDAR),
            ],
        )
        .await
    };
    let (status, v) = exchange().await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();
    assert!(v["expires_in"].as_i64().unwrap() <= 120);
    assert_eq!(
        introspect(&s.issuer("default"), &web, &delegated).await["active"],
        true
    );

    // Suspend through the API: the agent's token is inactive and it gets nothing new.
    let (status, v) = call(
        "POST",
        &format!("{base}/agents/{}/suspend", agent.0),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("suspended")),
        "{v}"
    );
    assert_eq!(
        introspect(&s.issuer("default"), &web, &delegated).await["active"],
        false
    );
    let (status, v) = exchange().await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    let (status, v) = call(
        "POST",
        &format!("{base}/agents/{}/resume", agent.0),
        &admin,
        None,
    )
    .await;
    assert_eq!((status, v["status"].as_str()), (200, Some("active")), "{v}");
    let (status, v) = exchange().await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();

    // Revoke the mandate through the API: derived tokens inactive, the person's own still active.
    let (status, v) = call(
        "DELETE",
        &format!("{base}/mandates/{mandate_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["revoked"], json!([mandate_id]));
    assert_eq!(
        introspect(&s.issuer("default"), &web, &delegated).await["active"],
        false
    );
    assert_eq!(
        introspect(&s.issuer("default"), &web, &person).await["active"],
        true
    );
    let (status, _) = call(
        "DELETE",
        &format!("{base}/mandates/{mandate_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 404, "already revoked");
    let (_, listed) = call(
        "GET",
        &format!("{base}/mandates?username=alice&all=true"),
        &admin,
        None,
    )
    .await;
    assert!(listed["mandates"][0]["revoked_at"].is_i64(), "{listed}");

    // Delete: gone from use, kept for the trail; every change audited with the admin client.
    let (status, v) = call(
        "DELETE",
        &format!("{base}/agents/{}", agent.0),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("deleted")),
        "{v}"
    );
    let (_, events) = call(
        "GET",
        &format!("{base}/audit/events?actor={}&limit=100", admin_client.0),
        &admin,
        None,
    )
    .await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for k in [
        "agent_created",
        "mandate_created",
        "agent_suspended",
        "agent_resumed",
        "mandate_revoked",
        "agent_deleted",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn agent_registration_refusals_change_nothing_sqlite() {
    agent_registration_refusals_change_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn agent_registration_refusals_change_nothing_postgres() {
    agent_registration_refusals_change_nothing(Backend::Postgres).await;
}

#[tokio::test]
async fn agent_and_mandate_lifecycle_sqlite() {
    agent_and_mandate_lifecycle(Backend::Sqlite).await;
}

#[tokio::test]
async fn agent_and_mandate_lifecycle_postgres() {
    agent_and_mandate_lifecycle(Backend::Postgres).await;
}

/// Issue 12 item 7: a client registered with `mandate:admin` does not make the people who sign
/// in to it administrators. An ordinary user's token through such a browser client is refused
/// reading the audit log, registering an agent and creating a mandate from another person
/// (and the SSF and AuthZEN management APIs); granting the person the `admin` role (CLI)
/// allows it at once, revoking it (admin API) refuses it again. `auditor` reads the log only.
/// Every grant and revocation is audited. One story: mallory's one token, refused, allowed and
/// refused again as her roles change, and the trail of it all.
async fn admin_rights_come_from_the_persons_role(backend: Backend) {
    let s = Server::start(backend).await;
    let victim = s.create_user("default", "victim");
    s.create_user("default", "mallory");
    let console = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "mandate:admin",
            "--scope",
            "mandate:ssf",
            "--scope",
            "mandate:authz",
        ],
    );
    let admin_client = service_client(&s, "mandate:admin");
    let admin = client_token(&s, &admin_client).await;
    let base = format!("{}/admin/v1/tenants/default", s.base);
    let issuer = s.issuer("default");
    let agent = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Payer",
            "--tenant-owned",
            "--scope-ceiling",
            "payments.write",
            "--generate-secret",
        ],
        None,
    );
    let agent_id = agent["client_id"].as_str().unwrap().to_string();
    let mallory = person_token(
        &s,
        &console,
        "mallory",
        "openid mandate:admin mandate:ssf mandate:authz",
    )
    .await;

    let audit = format!("{base}/audit/events?limit=5");
    let new_agent = json!({"name": "Mine", "tenant_owned": true, "scope_ceiling": "payments.write",
        "generate_secret": true});
    let new_mandate =
        json!({"username": "victim", "agent_id": agent_id, "scope": ["payments.write"]});
    let refused = |what: &str, (status, v): (u16, Value)| {
        assert_eq!(
            (status, v["error"].as_str()),
            (403, Some("insufficient_scope")),
            "{what}: {v}"
        );
    };
    let before = snapshot(&s).await;
    refused("audit", call("GET", &audit, &mallory, None).await);
    refused(
        "agent",
        call(
            "POST",
            &format!("{base}/agents"),
            &mallory,
            Some(new_agent.clone()),
        )
        .await,
    );
    refused(
        "mandate",
        call(
            "POST",
            &format!("{base}/mandates"),
            &mallory,
            Some(new_mandate.clone()),
        )
        .await,
    );
    refused(
        "roles",
        call("GET", &format!("{base}/roles"), &mallory, None).await,
    );
    refused(
        "self-grant",
        call(
            "PUT",
            &format!("{base}/roles/admin/users/mallory"),
            &mallory,
            None,
        )
        .await,
    );
    refused(
        "ssf",
        call("GET", &format!("{issuer}/ssf/streams"), &mallory, None).await,
    );
    refused(
        "authzen",
        call(
            "POST",
            &format!("{issuer}/access/v1/evaluation"),
            &mallory,
            Some(
                json!({"subject": {"type": "user", "id": "a"}, "action": {"name": "view"},
                "resource": {"type": "doc", "id": "1"}}),
            ),
        )
        .await,
    );
    assert_eq!(snapshot(&s).await, before, "refusals change nothing");
    let (status, v) = call(
        "GET",
        &format!("{base}/mandates?username=victim"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, v["mandates"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );

    // Granted with the CLI: the same token now works (roles are read at every request).
    let v = s.cli(
        &[
            "user",
            "grant-role",
            "--tenant",
            "default",
            "--username",
            "mallory",
            "--role",
            "admin",
        ],
        None,
    );
    assert_eq!(v["granted"], true, "{v}");
    let (status, v) = call("GET", &audit, &mallory, None).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = call("POST", &format!("{base}/agents"), &mallory, Some(new_agent)).await;
    assert_eq!(status, 201, "{v}");
    let (status, m) = call(
        "POST",
        &format!("{base}/mandates"),
        &mallory,
        Some(new_mandate.clone()),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["user_id"], victim.as_str());
    let (status, v) = call("GET", &format!("{issuer}/ssf/streams"), &mallory, None).await;
    assert_ne!(status, 403, "{v}");
    let listed = s.cli(&["user", "roles", "--tenant", "default"], None);
    assert_eq!(listed["roles"][0]["username"], "mallory", "{listed}");
    assert_eq!(listed["roles"][0]["role"], "admin", "{listed}");

    // Revoked through the admin API: refused again.
    let (status, v) = call(
        "DELETE",
        &format!("{base}/roles/admin/users/mallory"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 204, "{v}");
    let (status, _) = call(
        "DELETE",
        &format!("{base}/roles/admin/users/mallory"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 404, "not held any more");
    refused(
        "audit after revoke",
        call("GET", &audit, &mallory, None).await,
    );
    refused(
        "mandate after revoke",
        call(
            "POST",
            &format!("{base}/mandates"),
            &mallory,
            Some(new_mandate.clone()),
        )
        .await,
    );

    // auditor: the log, nothing else.
    let (status, v) = call(
        "PUT",
        &format!("{base}/roles/auditor/users/mallory"),
        &admin,
        None,
    )
    .await;
    assert_eq!((status, v["granted"].as_bool()), (201, Some(true)), "{v}");
    let (status, v) = call(
        "PUT",
        &format!("{base}/roles/auditor/users/mallory"),
        &admin,
        None,
    )
    .await;
    assert_eq!((status, v["granted"].as_bool()), (200, Some(false)), "{v}");
    let (status, v) = call("GET", &audit, &mallory, None).await;
    assert_eq!(status, 200, "{v}");
    refused(
        "auditor creates a mandate",
        call(
            "POST",
            &format!("{base}/mandates"),
            &mallory,
            Some(new_mandate),
        )
        .await,
    );
    let (status, v) = call("GET", &format!("{base}/roles"), &admin, None).await;
    assert_eq!(v["roles"].as_array().map(Vec::len), Some(1), "{status} {v}");

    // Every change is in the trail, with who made it and for whom.
    let (_, events) = call(
        "GET",
        &format!("{base}/audit/events?event=role_granted&event=role_revoked&limit=10"),
        &admin,
        None,
    )
    .await;
    let mut kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{events}"))
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["role_granted", "role_granted", "role_revoked"],
        "{events}"
    );
    let (_, denied) = call(
        "GET",
        &format!("{base}/audit/events?event=admin_access_denied&limit=50"),
        &admin,
        None,
    )
    .await;
    assert!(denied["events"].as_array().unwrap().len() >= 9, "{denied}");
}

#[tokio::test]
async fn admin_rights_come_from_the_persons_role_sqlite() {
    admin_rights_come_from_the_persons_role(Backend::Sqlite).await;
}

#[tokio::test]
async fn admin_rights_come_from_the_persons_role_postgres() {
    admin_rights_come_from_the_persons_role(Backend::Postgres).await;
}

/// A role grant names a known role and a known person: an unknown role is refused by the
/// admin API (400) and the CLI, an unknown person is 404.
async fn role_grants_need_a_known_role_and_person(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_user("default", "mallory");
    let admin = client_token(&s, &service_client(&s, "mandate:admin")).await;
    let base = format!("{}/admin/v1/tenants/default", s.base);

    // Bad role names and unknown people are refused.
    let (status, v) = call(
        "PUT",
        &format!("{base}/roles/root/users/mallory"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (status, _) = call(
        "PUT",
        &format!("{base}/roles/admin/users/nobody"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (ok, _, err) = s.cli_raw(
        &[
            "user",
            "grant-role",
            "--tenant",
            "default",
            "--username",
            "mallory",
            "--role",
            "root",
        ],
        None,
    );
    assert!(!ok && err.contains("unknown role"), "{err}");
}

#[tokio::test]
async fn role_grants_need_a_known_role_and_person_sqlite() {
    role_grants_need_a_known_role_and_person(Backend::Sqlite).await;
}

#[tokio::test]
async fn role_grants_need_a_known_role_and_person_postgres() {
    role_grants_need_a_known_role_and_person(Backend::Postgres).await;
}
