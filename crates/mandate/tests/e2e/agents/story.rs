//! The delegation story end to end over real HTTP, on SQLite and PostgreSQL (issue 4's
//! scenario): a person signs in and approves an agent for `calendar.read` on one resource for
//! an hour; the agent (private_key_jwt, DPoP-bound) exchanges the person's token and acts as
//! `act` for `sub` = the person; more scope or another resource is refused; it hands the token
//! to a second agent only under a mandate that allows it; the person revokes the mandate and
//! both agents' tokens die at once while the person's own token stays active, and a resource
//! server subscribed through the Shared Signals Framework receives the revocation event.

use crate::common::*;
use serde_json::{Value, json};

const CALENDAR: &str = "https://calendar.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// A resource server's RFC 8935 push endpoint on a loopback port: every SET it is sent.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

/// A token request authenticated with private_key_jwt, with a DPoP proof.
struct Signer {
    id: String,
    key: Vec<u8>,
    dpop: DpopKey,
    n: std::cell::Cell<u32>,
}

impl Signer {
    async fn token(&self, issuer: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.n.set(self.n.get() + 1);
        let url = format!("{issuer}/token");
        let assertion =
            signed_assertion(&self.key, &self.id, issuer, &format!("a-{}", self.n.get()));
        let mut all: Vec<(&str, &str)> = form.to_vec();
        all.push(("client_assertion_type", JWT_BEARER));
        all.push(("client_assertion", &assertion));
        let r = reqwest::Client::new()
            .post(&url)
            .header("DPoP", self.dpop.proof("POST", &url, None, None))
            .form(&all)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn exchange(&self, issuer: &str, subject: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", AT_TYPE),
        ];
        form.extend_from_slice(extra);
        self.token(issuer, &form).await
    }
}

fn signer(s: &Server, name: &str, extra: &[&str]) -> Signer {
    let (id, key) = key_agent_with(s, name, "alice", "calendar.read calendar.write", extra);
    Signer {
        id,
        key,
        dpop: DpopKey::new(),
        n: std::cell::Cell::new(0),
    }
}

async fn scenario(backend: Backend) {
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    let app = s.create_web_client(
        "default",
        &[
            "--scope",
            "openid",
            "--scope",
            "calendar.read",
            "--scope",
            "calendar.write",
            "--scope",
            "mandate:self",
        ],
    );
    let planner = signer(
        &s,
        "Planner",
        &["--redirect-uri", REDIRECT, "--require-dpop"],
    );
    let booker = signer(&s, "Booker", &["--require-dpop"]);
    let person = person_token(
        &s,
        &app,
        "alice",
        "openid calendar.read calendar.write mandate:self",
    )
    .await;

    // The person signs in at the agent's request and approves it on the consent page:
    // calendar.read on one resource, for an hour.
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &planner.id,
        &challenge,
        "openid calendar.read",
        &[("resource", CALENDAR)],
    );
    let (_, login, _) = b.get(&url).await;
    let (status, consent, _) = b.login(&issuer, &login, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{consent}");
    assert!(unescape(&consent).contains("Planner") && consent.contains("60 minutes"));
    let (status, _, loc) = b.consent(&issuer, &consent, "approve").await;
    assert_eq!(status, 303);
    let code = query_param(&loc.unwrap(), "code").unwrap();
    let (status, v) = planner
        .token(
            &issuer,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let signed_in = v["access_token"].as_str().unwrap().to_string();
    let mandates = s.cli(
        &["mandate", "list", "--tenant", "default", "--user", "alice"],
        None,
    );
    let consent_mandate = mandates[0]["id"].as_str().unwrap().to_string();
    assert_eq!(mandates[0]["origin"], "consent");
    assert_eq!(
        mandates[0]["expires_at"].as_i64().unwrap() - mandates[0]["created_at"].as_i64().unwrap(),
        3600
    );

    // The agent exchanges the person's token: DPoP-bound, sub = the person, act = the agent.
    let (status, v) = planner
        .exchange(&issuer, &signed_in, &[("resource", CALENDAR)])
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let planner_at = v["access_token"].as_str().unwrap().to_string();
    let c = claims(&planner_at);
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["act"], json!({"sub": planner.id}));
    assert_eq!(c["mandate"], consent_mandate.as_str());
    assert_eq!(c["scope"], "calendar.read");
    assert_eq!(c["aud"], CALENDAR);
    assert_eq!(c["cnf"]["jkt"], planner.dpop.jkt());

    // More scope, or another resource: refused.
    let (status, v) = planner
        .exchange(&issuer, &signed_in, &[("scope", "calendar.write")])
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_scope")),
        "{v}"
    );
    let (status, v) = planner
        .exchange(&issuer, &signed_in, &[("resource", "https://mail.example")])
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_target")),
        "{v}"
    );
    // Without its DPoP key the agent gets nothing (--require-dpop).
    let (status, v) = token_no_dpop(&issuer, &planner, &signed_in).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );

    // Handing it on to a second agent: the consent mandate does not allow it.
    let (status, v) = booker.exchange(&issuer, &planner_at, &[]).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );

    // The person grants a mandate that allows one more hop (self-service API), and the
    // planner's new token (calendar.write: only this mandate covers it) can be handed on: act
    // nests, newest actor outermost.
    let r = reqwest::Client::new()
        .post(format!("{issuer}/account/v1/mandates"))
        .bearer_auth(&person)
        .json(&json!({
            "agent_id": planner.id, "scope": ["calendar.read", "calendar.write"], "resources": [CALENDAR],
            "expires_in": 3600, "max_delegation_depth": 1,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let hop_mandate = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = planner
        .exchange(
            &issuer,
            &person,
            &[("resource", CALENDAR), ("scope", "calendar.write")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let planner_at2 = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&planner_at2)["mandate"], hop_mandate.as_str());
    let (status, v) = booker.exchange(&issuer, &planner_at2, &[]).await;
    assert_eq!(status, 200, "{v}");
    let booker_at = v["access_token"].as_str().unwrap().to_string();
    let c = claims(&booker_at);
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(
        c["act"],
        json!({"sub": booker.id, "act": {"sub": planner.id}})
    );
    let i = introspect(&issuer, &app, &booker_at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["act"], c["act"]);
    assert_eq!(i["agent"]["name"], "Booker");

    // A resource server subscribes to the tenant's security events (push delivery).
    let (url, mut sets) = receiver().await;
    let rs = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Calendar API",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mandate:ssf",
        ],
        None,
    );
    let rs = (
        rs["client_id"].as_str().unwrap().to_string(),
        rs["client_secret"].as_str().unwrap().to_string(),
    );
    let (_, v) = token(&issuer, &rs, &[("grant_type", "client_credentials")]).await;
    let rs_token = v["access_token"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .post(format!("{issuer}/ssf/streams"))
        .bearer_auth(&rs_token)
        .json(
            &json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url},
            "events_requested": [SESSION_REVOKED]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());

    // The person revokes the mandate: both agents' tokens are inactive at once, the person's
    // own token is still active.
    let r = reqwest::Client::new()
        .delete(format!("{issuer}/account/v1/mandates/{hop_mandate}"))
        .bearer_auth(&person)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        introspect(&issuer, &app, &planner_at2).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &app, &booker_at).await["active"], false);
    assert_eq!(introspect(&issuer, &app, &person).await["active"], true);
    // The receiver learns of it within a second or two: a signed session-revoked event
    // naming the mandate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let event = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let set = tokio::time::timeout(left, sets.recv())
            .await
            .expect("the revocation event within 5 s")
            .unwrap();
        let c = claims(&set);
        if let Some(ev) = c["events"].get(SESSION_REVOKED)
            && ev["mandate_id"] == hop_mandate.as_str()
        {
            assert_eq!(c["iss"], issuer.as_str());
            break ev.clone();
        }
    };
    assert!(event.to_string().contains(&planner.id), "{event}");
    // The other mandate, and the token under it, are untouched.
    assert_eq!(introspect(&issuer, &app, &planner_at).await["active"], true);
}

/// The planner's exchange with client authentication but no DPoP proof.
async fn token_no_dpop(issuer: &str, a: &Signer, subject: &str) -> (u16, Value) {
    let assertion = signed_assertion(&a.key, &a.id, issuer, "no-dpop");
    let r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", AT_TYPE),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn scenario_sqlite() {
    scenario(Backend::Sqlite).await;
}

#[tokio::test]
async fn scenario_postgres() {
    scenario(Backend::Postgres).await;
}
