//! The Shared Signals Framework transmitter over real HTTP on SQLite and PostgreSQL: a receiver
//! started by the test subscribes, revocations (mandate, agent, token) arrive as signed SETs by
//! push (RFC 8935) and by poll (RFC 8936), and streams are private to their receiver.
//!
//! `ssf_bench` (ignored; `scripts/bench-ssf.sh`) measures revocation-to-event latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use axum::http::{HeaderMap, StatusCode};
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
const PUSH: &str = "urn:ietf:rfc:8935";
const POLL: &str = "urn:ietf:rfc:8936";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CALENDAR: &str = "https://calendar.example";

/// One POST the test receiver got.
struct Received {
    body: String,
    authorization: Option<String>,
    content_type: Option<String>,
    at: Instant,
}

/// An RFC 8935 push receiver on a loopback port. `fail_next` makes it answer 503 that many
/// times first.
struct PushReceiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
    fail_next: Arc<AtomicU32>,
}

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<Received>,
    fail_next: Arc<AtomicU32>,
}

async fn receive(
    axum::extract::State(st): axum::extract::State<ReceiverState>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if st
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let _ = st.tx.send(Received {
        body,
        authorization: h("authorization"),
        content_type: h("content-type"),
        at: Instant::now(),
    });
    StatusCode::ACCEPTED
}

impl PushReceiver {
    async fn start() -> PushReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let fail_next = Arc::new(AtomicU32::new(0));
        let state = ReceiverState {
            tx,
            fail_next: fail_next.clone(),
        };
        let app = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        PushReceiver { url, rx, fail_next }
    }

    /// The next SET received, within `secs` seconds.
    async fn next(&mut self, secs: u64) -> Received {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .expect("a SET within the deadline")
            .expect("receiver running")
    }

    /// Nothing more arrives within `ms` milliseconds.
    async fn quiet(&mut self, ms: u64) {
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(ms), self.rx.recv()).await {
            panic!("unexpected SET: {}", claims_of(&r.body));
        }
    }
}

/// The claims of a JWT, unverified (for messages).
fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Verify a SET against the issuer's published JWKS with `jsonwebtoken`; returns its claims.
async fn verify_set(issuer: &str, set: &str, aud: &str) -> Value {
    verify_set_from(issuer, issuer, set, aud).await
}

/// [`verify_set`] with the JWKS fetched under `jwks_issuer` (the server's URL after a restart
/// on another port) and `issuer` expected in `iss`.
async fn verify_set_from(jwks_issuer: &str, issuer: &str, set: &str, aud: &str) -> Value {
    let jwks: JwkSet = reqwest::get(format!("{jwks_issuer}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(set).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("kid published in JWKS");
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[aud]);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(set, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("SET signature and claims verify")
        .claims;
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims["iat"].as_i64().is_some());
    assert!(claims.get("exp").is_none(), "SETs carry no exp (RFC 8417)");
    claims
}

/// A client_credentials client with `scope` in `tenant`; returns (id, secret).
fn client(s: &Server, tenant: &str, scope: &str) -> (String, String) {
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Receiver",
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

async fn bearer(s: &Server, tenant: &str, c: &(String, String)) -> String {
    let (status, v) = token(
        &s.issuer(tenant),
        c,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().into()
}

/// Send a request with an optional bearer token and JSON body; returns status and JSON.
async fn call(method: &str, url: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut r = http.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

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
            "--scope-ceiling",
            "calendar.read",
            "--generate-secret",
        ],
        None,
    );
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

fn mandate(s: &Server, user: &str, agent: &str) -> String {
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
        ],
        None,
    );
    v["id"].as_str().unwrap().into()
}

/// The one event of a SET: (type, members).
fn event(claims: &Value) -> (String, Value) {
    let events = claims["events"].as_object().expect("events");
    assert_eq!(events.len(), 1, "{claims}");
    let (k, v) = events.iter().next().unwrap();
    (k.clone(), v.clone())
}

/// A push stream's configuration for the receiver at `url`.
fn push_config(url: &str) -> Value {
    json!({"delivery": {"method": PUSH, "endpoint_url": url,
        "authorization_header": "Bearer receiver-secret"},
        "events_requested": [SESSION_REVOKED, CLAIMS_CHANGE, "urn:example:unknown"],
        "description": "calendar API"})
}

/// A server, a push receiver, a receiver client with mandate:ssf and its token, and a push
/// stream created for it.
struct PushStream {
    s: Server,
    issuer: String,
    streams: String,
    rx: PushReceiver,
    receiver: (String, String),
    at: String,
    stream_id: String,
    cfg: Value,
}

async fn push_stream(backend: Backend) -> PushStream {
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let streams = format!("{issuer}/ssf/streams");
    let rx = PushReceiver::start().await;
    let push = push_config(&rx.url);
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    let (status, cfg) = call("POST", &streams, Some(&at), Some(push)).await;
    assert_eq!(status, 201, "{cfg}");
    let stream_id = cfg["stream_id"].as_str().unwrap().to_string();
    PushStream {
        s,
        issuer,
        streams,
        rx,
        receiver,
        at,
        stream_id,
        cfg,
    }
}

/// Transmitter metadata, and the management errors: no token or the wrong scope, bad
/// configurations, bad bodies; nothing is created.
async fn metadata_and_bad_stream_requests(backend: Backend) {
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let streams = format!("{issuer}/ssf/streams");

    // Metadata (SSF §7.1), path-inserted like RFC 8414.
    let (status, meta) = call(
        "GET",
        &format!("{}/.well-known/ssf-configuration/t/default", s.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(meta["issuer"], issuer.as_str());
    assert_eq!(meta["spec_version"], "1_0");
    assert_eq!(meta["jwks_uri"], format!("{issuer}/jwks.json"));
    assert_eq!(meta["delivery_methods_supported"], json!([PUSH, POLL]));
    assert_eq!(meta["configuration_endpoint"], streams.as_str());
    assert_eq!(meta["status_endpoint"], format!("{issuer}/ssf/status"));
    assert_eq!(
        meta["verification_endpoint"],
        format!("{issuer}/ssf/verify")
    );
    assert_eq!(
        meta["authorization_schemes"],
        json!([{"spec_urn": "urn:ietf:rfc:6749"}])
    );
    let (status, _) = call(
        "GET",
        &format!("{}/.well-known/ssf-configuration/t/nope", s.base),
        None,
        None,
    )
    .await;
    assert_eq!(status, 404);

    let rx = PushReceiver::start().await;
    let push = push_config(&rx.url);

    // No token: 401 with a Bearer challenge; a token without mandate:ssf: 403.
    let r = reqwest::Client::new()
        .post(&streams)
        .json(&push)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let (status, v) = call("POST", &streams, Some("not-a-token"), Some(push.clone())).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_token")));
    let other = client(&s, "default", "api.read");
    let other_at = bearer(&s, "default", &other).await;
    let (status, v) = call("POST", &streams, Some(&other_at), Some(push.clone())).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;

    // Bad configurations: 400 with error JSON, nothing created.
    for bad in [
        json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
        json!({"delivery": {"method": PUSH}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "http://rs.example/events"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "not a url"}}),
        json!({"delivery": {"method": PUSH, "endpoint_url": "https://10.0.0.7/events"}}),
        json!({"delivery": {"method": PUSH,
            "endpoint_url": "https://169.254.169.254/latest/meta-data"}}),
        json!({"delivery": "push"}),
        json!({"events_requested": SESSION_REVOKED}),
        json!({"aud": []}),
    ] {
        let (status, v) = call("POST", &streams, Some(&at), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert_eq!(v["error"], "invalid_request", "{bad}");
        assert!(v["error_description"].is_string());
    }
    let r = reqwest::Client::new()
        .post(&streams)
        .bearer_auth(&at)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .post(&streams)
        .bearer_auth(&at)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (status, list) = call("GET", &streams, Some(&at), None).await;
    assert_eq!((status, list), (200, json!([])), "nothing was created");
}

/// Push delivery (RFC 8935) of a verification event and of mandate, agent and token
/// revocations, as SETs whose signatures verify; a SET the receiver refused is retried.
/// One story: the revocations follow each other on one stream and receiver.
async fn revocations_are_pushed(backend: Backend) {
    let PushStream {
        s,
        issuer,
        streams,
        mut rx,
        receiver,
        at,
        stream_id,
        cfg,
    } = push_stream(backend).await;

    // The push stream created.
    assert_eq!(cfg["iss"], issuer.as_str());
    assert_eq!(cfg["aud"], receiver.0.as_str());
    assert_eq!(cfg["delivery"]["method"], PUSH);
    assert_eq!(cfg["delivery"]["endpoint_url"], rx.url.as_str());
    assert!(
        cfg["delivery"].get("authorization_header").is_none(),
        "the receiver's credential is not echoed"
    );
    assert_eq!(
        cfg["events_delivered"],
        json!([SESSION_REVOKED, CLAIMS_CHANGE])
    );
    assert_eq!(cfg["description"], "calendar API");
    let (status, got) = call(
        "GET",
        &format!("{streams}?stream_id={stream_id}"),
        Some(&at),
        None,
    )
    .await;
    assert_eq!((status, &got), (200, &cfg));
    let (status, st) = call(
        "GET",
        &format!("{issuer}/ssf/status?stream_id={stream_id}"),
        Some(&at),
        None,
    )
    .await;
    assert_eq!(
        (status, st),
        (200, json!({"stream_id": stream_id, "status": "enabled"}))
    );

    // Verification event (SSF §8.1.4) echoes the state.
    let (status, _) = call(
        "POST",
        &format!("{issuer}/ssf/verify"),
        Some(&at),
        Some(json!({"stream_id": stream_id, "state": "st-42"})),
    )
    .await;
    assert_eq!(status, 204);
    let got = rx.next(5).await;
    assert_eq!(got.authorization.as_deref(), Some("Bearer receiver-secret"));
    assert_eq!(
        got.content_type.as_deref(),
        Some("application/secevent+jwt")
    );
    let c = verify_set(&issuer, &got.body, &receiver.0).await;
    assert_eq!(
        event(&c),
        (VERIFICATION.to_string(), json!({"state": "st-42"}))
    );
    assert_eq!(c["sub_id"], json!({"format": "opaque", "id": stream_id}));

    // A person revokes nothing yet; an administrator revokes a mandate through the CLI.
    let alice = s.create_user("default", "alice");
    let planner = agent(&s, "Planner", "alice");
    let m = mandate(&s, "alice", &planner.0);
    let revoked_at = Instant::now();
    s.revoke_mandate("default", &m);
    let got = rx.next(3).await;
    let latency = got.at.duration_since(revoked_at);
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let c = verify_set(&issuer, &got.body, &receiver.0).await;
    assert_eq!(c["iss"], issuer.as_str());
    assert_eq!(c["aud"], receiver.0.as_str());
    assert_eq!(c["sub_id"]["format"], "complex");
    assert_eq!(
        c["sub_id"]["user"],
        json!({"format": "iss_sub", "iss": issuer, "sub": alice})
    );
    assert_eq!(
        c["sub_id"]["application"],
        json!({"format": "opaque", "id": planner.0})
    );
    assert_eq!(c["sub_id"]["session"], json!({"format": "opaque", "id": m}));
    let (kind, ev) = event(&c);
    assert_eq!(kind, SESSION_REVOKED);
    assert_eq!(ev["mandate_id"], m.as_str());
    assert_eq!(ev["agent_id"], planner.0.as_str());
    assert_eq!(ev["initiating_entity"], "admin");
    assert!(ev["event_timestamp"].as_i64().is_some());
    let first_jti = c["jti"].clone();

    // Suspending an agent, then resuming it.
    s.cli(
        &["agent", "suspend", "--tenant", "default", "--", &planner.0],
        None,
    );
    let c = verify_set(&issuer, &rx.next(3).await.body, &receiver.0).await;
    assert_ne!(c["jti"], first_jti);
    let (kind, ev) = event(&c);
    assert_eq!(kind, SESSION_REVOKED);
    assert_eq!(ev["agent_id"], planner.0.as_str());
    assert_eq!(ev["agent_status"], "suspended");
    assert_eq!(c["sub_id"]["user"]["sub"], alice.as_str(), "the owner");
    s.cli(
        &["agent", "resume", "--tenant", "default", "--", &planner.0],
        None,
    );
    let c = verify_set(&issuer, &rx.next(3).await.body, &receiver.0).await;
    let (kind, ev) = event(&c);
    assert_eq!(kind, CLAIMS_CHANGE);
    assert_eq!(ev["claims"], json!({"agent_status": "active"}));

    // A delegated token revoked by its agent (RFC 7009) names its jti and mandate.
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
    let user_at = person_token(&s, &web, "alice", "openid calendar.read mandate:self").await;
    let m2 = mandate(&s, "alice", &planner.0);
    let (status, v) = token(
        &issuer,
        &planner,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &user_at),
            ("subject_token_type", AT_TYPE),
            ("resource", CALENDAR),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();
    let jti = claims_of(&delegated)["jti"].as_str().unwrap().to_string();
    let (status, _) = post_auth(
        &format!("{issuer}/revoke"),
        &planner,
        &[("token", &delegated)],
    )
    .await;
    assert_eq!(status, 200);
    let c = verify_set(&issuer, &rx.next(3).await.body, &receiver.0).await;
    let (kind, ev) = event(&c);
    assert_eq!(kind, SESSION_REVOKED);
    assert_eq!(ev["jti"], jti.as_str());
    assert_eq!(ev["mandate_id"], m2.as_str());
    assert_eq!(c["sub_id"]["user"]["sub"], alice.as_str());

    // The person revokes a mandate themselves (self-service API).
    let own = mandate(&s, "alice", &planner.0);
    let r = reqwest::Client::new()
        .delete(format!("{issuer}/account/v1/mandates/{own}"))
        .bearer_auth(&user_at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let c = verify_set(&issuer, &rx.next(3).await.body, &receiver.0).await;
    let (kind, ev) = event(&c);
    assert_eq!(kind, SESSION_REVOKED);
    assert_eq!(ev["mandate_id"], own.as_str());
    assert_eq!(ev["initiating_entity"], "user");
    assert_eq!(ev["reason_admin"]["en"], "revoked by the user");
    assert_eq!(c["sub_id"]["user"]["sub"], alice.as_str());

    // The receiver is down for a moment: the SET is retried and arrives.
    rx.fail_next.store(2, Ordering::SeqCst);
    s.revoke_mandate("default", &m2);
    let c = verify_set(&issuer, &rx.next(10).await.body, &receiver.0).await;
    assert_eq!(event(&c).1["mandate_id"], m2.as_str());
    assert_eq!(
        rx.fail_next.load(Ordering::SeqCst),
        0,
        "two attempts failed"
    );
}

/// A paused push stream holds SETs and delivers them when enabled again; an unknown status
/// is refused; a deleted stream drops them; stream changes and deletion are audited.
async fn paused_streams_hold_and_deleted_streams_drop(backend: Backend) {
    let PushStream {
        s,
        issuer,
        streams,
        mut rx,
        receiver,
        at,
        stream_id,
        ..
    } = push_stream(backend).await;
    s.create_user("default", "alice");
    let planner = agent(&s, "Planner", "alice");

    // Paused: held, then delivered when enabled again. Disabled: dropped.
    let (status, st) = call(
        "POST",
        &format!("{issuer}/ssf/status"),
        Some(&at),
        Some(json!({"stream_id": stream_id, "status": "paused", "reason": "maintenance"})),
    )
    .await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["status"], "paused");
    assert_eq!(st["reason"], "maintenance");
    let m3 = mandate(&s, "alice", &planner.0);
    s.revoke_mandate("default", &m3);
    rx.quiet(700).await;
    let (status, _) = call(
        "POST",
        &format!("{issuer}/ssf/status"),
        Some(&at),
        Some(json!({"stream_id": stream_id, "status": "enabled"})),
    )
    .await;
    assert_eq!(status, 200);
    let c = verify_set(&issuer, &rx.next(3).await.body, &receiver.0).await;
    assert_eq!(event(&c).1["mandate_id"], m3.as_str());
    let (status, v) = call(
        "POST",
        &format!("{issuer}/ssf/status"),
        Some(&at),
        Some(json!({"stream_id": stream_id, "status": "asleep"})),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Stream changes and deletion are audited.
    let (status, _) = call(
        "DELETE",
        &format!("{streams}?stream_id={stream_id}"),
        Some(&at),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        "GET",
        &format!("{streams}?stream_id={stream_id}"),
        Some(&at),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let m4 = mandate(&s, "alice", &planner.0);
    s.revoke_mandate("default", &m4);
    rx.quiet(500).await;
    for kind in [
        "ssf_stream_created",
        "ssf_stream_updated",
        "ssf_stream_deleted",
    ] {
        let records = s.cli(
            &["audit", "query", "--tenant", "default", "--event", kind],
            None,
        );
        let r = &records.as_array().unwrap()[0];
        assert_eq!(r["client_id"], receiver.0.as_str(), "{kind}");
        assert_eq!(r["detail"]["stream_id"], stream_id.as_str(), "{kind}");
    }
}

/// A server with a receiver client (mandate:ssf) and its token, no stream yet.
struct PollReceiver {
    s: Server,
    issuer: String,
    streams: String,
    receiver: (String, String),
    at: String,
}

async fn poll_receiver(backend: Backend) -> PollReceiver {
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let streams = format!("{issuer}/ssf/streams");
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    PollReceiver {
        s,
        issuer,
        streams,
        receiver,
        at,
    }
}

/// The receiver's poll stream, created with no delivery given; returns its id and poll URL.
async fn create_poll_stream(r: &PollReceiver) -> (String, String) {
    let PollReceiver {
        issuer,
        streams,
        receiver,
        at,
        ..
    } = r;
    // No delivery given: poll, at an endpoint of ours. Repeating the transmitter's `aud` is
    // fine.
    let (status, cfg) = call("POST", streams, Some(at), Some(json!({"aud": receiver.0}))).await;
    assert_eq!(status, 201, "{cfg}");
    let id = cfg["stream_id"].as_str().unwrap().to_string();
    let poll_url = format!("{issuer}/ssf/poll/{id}");
    assert_eq!(
        cfg["delivery"],
        json!({"method": POLL, "endpoint_url": poll_url})
    );
    assert_eq!(cfg["aud"], receiver.0.as_str());
    assert_eq!(
        cfg["events_delivered"],
        json!([SESSION_REVOKED, CLAIMS_CHANGE])
    );
    (id, poll_url)
}

/// SSF 1.0 §8.1.1: the transmitter sets each SET's `aud`, the receiver's client id; a stream
/// asking for another is refused and nothing is created; repeating the transmitter's is fine.
async fn receivers_cannot_choose_aud(backend: Backend) {
    let r = poll_receiver(backend).await;
    let PollReceiver {
        issuer,
        streams,
        receiver,
        at,
        ..
    } = &r;
    // SSF 1.0 §8.1.1: the transmitter sets `aud` (the receiver's client_id); a receiver
    // cannot address SETs to other resource servers or to the issuer itself.
    for aud in [
        json!(["https://rs.example", "rs-2"]),
        json!(issuer),
        json!("https://calendar.example"),
        json!([receiver.0, "rs-2"]),
    ] {
        let (status, v) = call("POST", streams, Some(at), Some(json!({"aud": aud}))).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{aud}: {v}"
        );
    }
    let (status, list) = call("GET", streams, Some(at), None).await;
    assert_eq!((status, list), (200, json!([])), "nothing was created");

    create_poll_stream(&r).await;
}

/// Poll delivery (RFC 8936): a long poll returns when a SET is queued, unacknowledged SETs
/// come again, `maxEvents` pages, acknowledgements and `setErrs` remove them; bad poll
/// requests are refused. One story: each poll continues from the queue the last one left.
async fn polled_sets_are_acknowledged_and_paged(backend: Backend) {
    let r = poll_receiver(backend).await;
    let (_, poll_url) = create_poll_stream(&r).await;
    let PollReceiver {
        s,
        issuer,
        receiver,
        at,
        ..
    } = &r;
    let (status, v) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"returnImmediately": true})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"sets": {}, "moreAvailable": false}));

    let bob = s.create_user("default", "bob");
    let helper = agent(s, "Helper", "bob");
    let m = mandate(s, "bob", &helper.0);
    // A long poll (returnImmediately false) returns as soon as the SET is queued.
    let waiting = {
        let (url, at) = (poll_url.clone(), at.clone());
        tokio::spawn(async move { call("POST", &url, Some(&at), Some(json!({}))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    s.revoke_mandate("default", &m);
    let (status, v) = waiting.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let sets = v["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{v}");
    let (jti, set) = sets.iter().next().unwrap();
    let c = verify_set(issuer, set.as_str().unwrap(), &receiver.0).await;
    assert_eq!(&c["jti"], jti);
    assert_eq!(c["aud"], receiver.0.as_str());
    assert_eq!(event(&c).1["mandate_id"], m.as_str());
    assert_eq!(c["sub_id"]["user"]["sub"], bob.as_str());

    // Not acknowledged: delivered again (at least once); acknowledged: gone.
    let (_, again) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"returnImmediately": true})),
    )
    .await;
    assert_eq!(again["sets"][jti], *set);
    let (_, after) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"ack": [jti], "returnImmediately": true})),
    )
    .await;
    assert_eq!(after, json!({"sets": {}, "moreAvailable": false}));

    // Three mandates of bob revoked at once; maxEvents pages them.
    let ms: Vec<String> = (0..3).map(|_| mandate(s, "bob", &helper.0)).collect();
    s.cli(
        &["mandate", "revoke", "--tenant", "default", "--user", "bob"],
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let (_, v) = call(
            "POST",
            &poll_url,
            Some(at),
            Some(json!({"maxEvents": 2, "returnImmediately": true})),
        )
        .await;
        if v["moreAvailable"] == true || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page["sets"].as_object().unwrap().len(), 2, "{page}");
    assert_eq!(page["moreAvailable"], true);
    let mut seen: Vec<String> = Vec::new();
    let first: Vec<String> = page["sets"].as_object().unwrap().keys().cloned().collect();
    for set in page["sets"].as_object().unwrap().values() {
        seen.push(
            event(&claims_of(set.as_str().unwrap())).1["mandate_id"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    // Acknowledge one, report an error for the other, take the rest.
    let (_, rest) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"ack": [first[0]], "returnImmediately": true,
            "setErrs": {first[1].clone(): {"err": "invalid_audience", "description": "test"}}})),
    )
    .await;
    let rest = rest["sets"].as_object().unwrap().clone();
    assert_eq!(rest.len(), 1, "{rest:?}");
    for set in rest.values() {
        seen.push(
            event(&claims_of(set.as_str().unwrap())).1["mandate_id"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    seen.sort();
    let mut want = ms.clone();
    want.sort();
    assert_eq!(seen, want);
    let (_, empty) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"ack": rest.keys().collect::<Vec<_>>(), "maxEvents": 0})),
    )
    .await;
    assert_eq!(empty, json!({"sets": {}, "moreAvailable": false}));

    // Bad poll requests.
    for bad in [
        json!({"maxEvents": -1}),
        json!({"ack": "x"}),
        json!({"returnImmediately": "yes"}),
    ] {
        let (status, v) = call("POST", &poll_url, Some(at), Some(bad.clone())).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    let (status, _) = call("POST", &poll_url, None, Some(json!({}))).await;
    assert_eq!(status, 401);
}

/// A stream is private to its receiver: another receiver of the tenant gets 404 for each
/// operation on it, another tenant's receiver 401 here and 404 at its own issuer.
async fn streams_are_private_to_their_receiver(backend: Backend) {
    let r = poll_receiver(backend).await;
    let (id, poll_url) = create_poll_stream(&r).await;
    let PollReceiver {
        s, issuer, streams, ..
    } = &r;
    // Another receiver of the same tenant sees none of it.
    let intruder = client(s, "default", "mandate:ssf");
    let intruder_at = bearer(s, "default", &intruder).await;
    let (status, list) = call("GET", streams, Some(&intruder_at), None).await;
    assert_eq!((status, list), (200, json!([])));
    for (method, url, body) in [
        ("GET", format!("{streams}?stream_id={id}"), None),
        (
            "POST",
            poll_url.clone(),
            Some(json!({"returnImmediately": true})),
        ),
        ("DELETE", format!("{streams}?stream_id={id}"), None),
        (
            "PATCH",
            streams.clone(),
            Some(json!({"stream_id": id, "description": "mine"})),
        ),
        ("GET", format!("{issuer}/ssf/status?stream_id={id}"), None),
        (
            "POST",
            format!("{issuer}/ssf/verify"),
            Some(json!({"stream_id": id})),
        ),
    ] {
        let (status, v) = call(method, &url, Some(&intruder_at), body).await;
        assert_eq!(status, 404, "{method} {url}: {v}");
    }

    // Another tenant's receiver: its token is not valid here, and its own issuer has no such
    // stream.
    s.create_tenant("other");
    let foreign = client(s, "other", "mandate:ssf");
    let foreign_at = bearer(s, "other", &foreign).await;
    let (status, v) = call(
        "POST",
        &poll_url,
        Some(&foreign_at),
        Some(json!({"returnImmediately": true})),
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_token")));
    let (status, _) = call(
        "POST",
        &format!("{}/ssf/poll/{id}", s.issuer("other")),
        Some(&foreign_at),
        Some(json!({"returnImmediately": true})),
    )
    .await;
    assert_eq!(status, 404);
}

/// A stream is updated (PATCH keeps what is not given), replaced (PUT resets it) and
/// deleted; `aud` cannot be set and `stream_id` is required.
async fn streams_are_updated_replaced_and_deleted(backend: Backend) {
    let r = poll_receiver(backend).await;
    let (id, poll_url) = create_poll_stream(&r).await;
    let PollReceiver {
        issuer,
        streams,
        receiver,
        at,
        ..
    } = &r;
    // Update (PATCH keeps what is not given), replace (PUT resets it), delete.
    let (status, v) = call(
        "PATCH",
        streams,
        Some(at),
        Some(json!({"stream_id": id, "description": "poller",
            "events_requested": [SESSION_REVOKED]})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["description"], "poller");
    assert_eq!(v["aud"], receiver.0.as_str());
    assert_eq!(v["events_delivered"], json!([SESSION_REVOKED]));
    let (status, v) = call(
        "PATCH",
        streams,
        Some(at),
        Some(json!({"stream_id": id, "aud": issuer})),
    )
    .await;
    assert_eq!(status, 400, "PATCH cannot set aud either: {v}");
    let (status, v) = call(
        "PUT",
        streams,
        Some(at),
        Some(json!({"stream_id": id, "delivery": {"method": POLL}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("description").is_none());
    assert_eq!(v["aud"], receiver.0.as_str());
    let (status, v) = call(
        "PATCH",
        streams,
        Some(at),
        Some(json!({"description": "no id"})),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = call("DELETE", streams, Some(at), None).await;
    assert_eq!(status, 400, "stream_id is required");
    let (status, _) = call(
        "DELETE",
        &format!("{streams}?stream_id={id}"),
        Some(at),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        "POST",
        &poll_url,
        Some(at),
        Some(json!({"returnImmediately": true})),
    )
    .await;
    assert_eq!(status, 404);
}

/// Two nodes on one database queue and send each SET once; a SET that could not be delivered
/// survives a crash (SIGKILL) of every node and is sent after the restart.
async fn two_nodes_and_restart(backend: Backend) {
    let mut s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    let mut rx = PushReceiver::start().await;
    let (status, v) = call(
        "POST",
        &format!("{issuer}/ssf/streams"),
        Some(&at),
        // By name: the delivery resolves it (and keeps only allowed addresses).
        Some(json!({"delivery": {"method": PUSH,
            "endpoint_url": rx.url.replace("127.0.0.1", "localhost")}})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    // Both nodes serve the same public URL, as behind a load balancer.
    let mut node2 = s
        .second_node(&[("MANDATE_PUBLIC_URL", &s.base), DEV_LOOPBACK])
        .await;
    s.create_user("default", "carol");
    let helper = agent(&s, "Helper", "carol");
    let mut want: Vec<String> = (0..10).map(|_| mandate(&s, "carol", &helper.0)).collect();
    s.cli(
        &[
            "mandate", "revoke", "--tenant", "default", "--user", "carol",
        ],
        None,
    );
    let mut got: Vec<String> = Vec::new();
    let mut jtis = std::collections::HashSet::new();
    while got.len() < want.len() {
        let c = verify_set(&issuer, &rx.next(5).await.body, &receiver.0).await;
        assert!(jtis.insert(c["jti"].to_string()), "jti seen twice");
        got.push(event(&c).1["mandate_id"].as_str().unwrap().into());
    }
    rx.quiet(1000).await;
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "each revocation once, though two nodes tail the log"
    );

    // The receiver is down; both nodes crash with the SET queued; it is sent after a restart.
    rx.fail_next.store(u32::MAX, Ordering::SeqCst);
    let m = mandate(&s, "carol", &helper.0);
    s.revoke_mandate("default", &m);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        rx.fail_next.load(Ordering::SeqCst) < u32::MAX,
        "delivery was attempted"
    );
    s.kill();
    node2.kill();
    rx.fail_next.store(0, Ordering::SeqCst);
    s.spawn().await;
    // Queued before the restart: signed under the issuer URL of the time (the port changed).
    let c = verify_set_from(
        &s.issuer("default"),
        &issuer,
        &rx.next(15).await.body,
        &receiver.0,
    )
    .await;
    assert_eq!(event(&c).1["mandate_id"], m.as_str());
    // The running node goes first: dropping a server also drops the shared storage.
    drop(s);
    drop(node2);
}

/// Revocation-to-event latency at a push receiver over `SSF_BENCH_N` (default 1,000)
/// mandate revocations, one at a time, through the self-service API (in the server process)
/// or with `SSF_BENCH_VIA=cli` through `mandate mandate revoke` (another process). Prints
/// median and p99. Backend from `SSF_BENCH_BACKEND` (`sqlite`, default, or `postgres`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-ssf.sh"]
async fn ssf_bench() {
    let n: usize = std::env::var("SSF_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let backend = match std::env::var("SSF_BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let via_cli = std::env::var("SSF_BENCH_VIA").as_deref() == Ok("cli");
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    let mut rx = PushReceiver::start().await;
    let (status, v) = call(
        "POST",
        &format!("{issuer}/ssf/streams"),
        Some(&at),
        Some(json!({"delivery": {"method": PUSH, "endpoint_url": rx.url}})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    s.create_user("default", "alice");
    let planner = agent(&s, "Planner", "alice");
    let web = s.create_web_client("default", &["--scope", "openid", "--scope", "mandate:self"]);
    let user_at = person_token(&s, &web, "alice", "openid mandate:self").await;
    let api = format!("{issuer}/account/v1/mandates");
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let r = http
            .post(&api)
            .bearer_auth(&user_at)
            .json(&json!({"agent_id": planner.0, "scope": ["calendar.read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let started = if via_cli {
            // Another process: found by the transmitter's tick. Timed from the CLI's exit,
            // after a random pause so that revocations do not fall into step with the tick.
            let mut b = [0u8; 1];
            aws_lc_rs::rand::fill(&mut b).unwrap();
            tokio::time::sleep(Duration::from_millis(u64::from(b[0]) * 100 / 256)).await;
            s.revoke_mandate("default", &id);
            Instant::now()
        } else {
            let started = Instant::now();
            let r = http
                .delete(format!("{api}/{id}"))
                .bearer_auth(&user_at)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            started
        };
        let got = rx.next(10).await;
        let c = claims_of(&got.body);
        assert_eq!(event(&c).1["mandate_id"], id.as_str());
        latencies.push(got.at.duration_since(started));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "ssf_bench backend={backend:?} via={} n={n} median_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        if via_cli { "cli" } else { "api" },
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(*latencies.last().unwrap())
    );
}

macro_rules! both_backends {
    ($($case:ident),*) => {
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

/// Poll until a SET arrives (acknowledging it) and return its claims; None after `secs`.
async fn next_polled(issuer: &str, poll_url: &str, at: &str, secs: u64) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let (status, v) = call(
            "POST",
            poll_url,
            Some(at),
            Some(json!({"returnImmediately": true, "maxEvents": 1})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if let Some((jti, set)) = v["sets"].as_object().unwrap().iter().next() {
            let c = verify_set(issuer, set.as_str().unwrap(), &set_aud(set)).await;
            let ack = json!({"ack": [jti], "returnImmediately": true, "maxEvents": 0});
            call("POST", poll_url, Some(at), Some(ack)).await;
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The first `aud` of a SET (the stream's), to verify it with.
fn set_aud(set: &Value) -> String {
    let c = claims_of(set.as_str().unwrap());
    match &c["aud"] {
        Value::Array(a) => a[0].as_str().unwrap().to_string(),
        other => other.as_str().unwrap().to_string(),
    }
}

/// SSF §8.1.3: a receiver removes a subject from its stream (no more SETs about it) and adds
/// it back.
async fn subjects(backend: Backend) {
    let s = Server::start_with(backend, &[DEV_LOOPBACK]).await;
    let issuer = s.issuer("default");
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    let (_, meta) = call(
        "GET",
        &format!("{}/.well-known/ssf-configuration/t/default", s.base),
        None,
        None,
    )
    .await;
    let add = format!("{issuer}/ssf/subjects:add");
    let remove = format!("{issuer}/ssf/subjects:remove");
    assert_eq!(meta["add_subject_endpoint"], add.as_str());
    assert_eq!(meta["remove_subject_endpoint"], remove.as_str());
    let (status, cfg) = call(
        "POST",
        &format!("{issuer}/ssf/streams"),
        Some(&at),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{cfg}");
    let id = cfg["stream_id"].as_str().unwrap().to_string();
    let poll_url = format!("{issuer}/ssf/poll/{id}");

    let bob = s.create_user("default", "bob");
    let carol = s.create_user("default", "carol");
    let bobs = agent(&s, "Bob's helper", "bob");
    let carols = agent(&s, "Carol's helper", "carol");
    let bob_user = json!({"format": "iss_sub", "iss": issuer, "sub": bob});
    let (status, v) = call(
        "POST",
        &remove,
        Some(&at),
        Some(json!({"stream_id": id, "subject": bob_user, "verified": true})),
    )
    .await;
    assert_eq!(status, 204, "{v}");

    // Bob's revocation comes first, carol's after it: once carol's SET is there, bob's would
    // have been too.
    let mb = mandate(&s, "bob", &bobs.0);
    let mc = mandate(&s, "carol", &carols.0);
    for m in [&mb, &mc] {
        s.revoke_mandate("default", m);
    }
    let c = next_polled(&issuer, &poll_url, &at, 10)
        .await
        .expect("carol's SET");
    assert_eq!(c["sub_id"]["user"]["sub"], carol.as_str(), "{c}");
    assert!(next_polled(&issuer, &poll_url, &at, 1).await.is_none());

    // Back in the stream.
    let (status, v) = call(
        "POST",
        &add,
        Some(&at),
        Some(json!({"stream_id": id, "subject": bob_user})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let mb2 = mandate(&s, "bob", &bobs.0);
    s.revoke_mandate("default", &mb2);
    let c = next_polled(&issuer, &poll_url, &at, 10)
        .await
        .expect("bob's SET");
    assert_eq!(c["sub_id"]["user"]["sub"], bob.as_str(), "{c}");
    assert_eq!(event(&c).1["mandate_id"], mb2.as_str());

    // A complex subject filters on what it names: only this mandate's SETs about carol.
    let mc2 = mandate(&s, "carol", &carols.0);
    let mc3 = mandate(&s, "carol", &carols.0);
    let only_mc2 = json!({"format": "complex", "session": {"format": "opaque", "id": mc2},
        "user": {"format": "opaque", "id": carol}});
    let (status, _) = call(
        "POST",
        &remove,
        Some(&at),
        Some(json!({"stream_id": id, "subject": only_mc2})),
    )
    .await;
    assert_eq!(status, 204);
    for m in [&mc2, &mc3] {
        s.revoke_mandate("default", m);
    }
    let c = next_polled(&issuer, &poll_url, &at, 10)
        .await
        .expect("mc3's SET");
    assert_eq!(event(&c).1["mandate_id"], mc3.as_str(), "{c}");
    assert!(next_polled(&issuer, &poll_url, &at, 1).await.is_none());

    // Bad requests change nothing.
    let other_issuer = json!({"format": "iss_sub", "iss": "https://elsewhere", "sub": bob});
    for (body, want) in [
        (json!({"stream_id": id}), 400),
        (json!({"stream_id": id, "subject": other_issuer}), 400),
        (
            json!({"stream_id": id, "subject": {"format": "email", "email": "b@x"}}),
            400,
        ),
        (
            json!({"stream_id": id, "subject": {"format": "complex"}}),
            400,
        ),
        (
            json!({"stream_id": id, "subject": bob_user, "verified": "yes"}),
            400,
        ),
        (json!({"stream_id": "nope", "subject": bob_user}), 404),
        (json!({"subject": bob_user}), 400),
    ] {
        let (status, v) = call("POST", &remove, Some(&at), Some(body.clone())).await;
        assert_eq!(status, want, "{body} → {v}");
    }
    // Another receiver cannot touch this stream; no token, no entry.
    let other = client(&s, "default", "mandate:ssf");
    let other_at = bearer(&s, "default", &other).await;
    let body = json!({"stream_id": id, "subject": bob_user});
    let (status, _) = call("POST", &remove, Some(&other_at), Some(body.clone())).await;
    assert_eq!(status, 404);
    let (status, _) = call("POST", &remove, None, Some(body)).await;
    assert_eq!(status, 401);

    // Both changes are in the audit trail, attributed to the receiver.
    let records = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "ssf_stream_updated",
        ],
        None,
    );
    let text = records.to_string();
    assert!(
        text.contains("subject_removed") && text.contains("subject_added"),
        "{text}"
    );
}

/// A receiver that refuses every SET (RFC 8935 §2.3) with a body made to forge log lines and
/// drive a terminal; returns its URL and a counter of POSTs.
async fn hostile_receiver() -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::BAD_REQUEST,
                    "{\"err\":\"invalid_request\"}\n2026-01-01T00:00:00Z  INFO FORGED-BODY admin logged in\r\n\x1b[2J\x1b[31mred",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

/// Issue 12 items 11 and 16: outbound requests never reach loopback or private addresses
/// (IPv6 forms embedding IPv4 included) unless the development switch is on, checked when a
/// URL is registered and again when connecting; and what receivers send (push answers,
/// `setErrs`) reaches the log escaped.
async fn outbound_rules_and_log_injection(backend: Backend) {
    let log = std::env::temp_dir().join(format!(
        "mandate_ssf_log_{}_{backend:?}.log",
        std::process::id()
    ));
    let log_s = log.to_str().unwrap().to_string();
    let mut s = Server::start_with(backend, &[("MANDATE_TEST_LOG_FILE", &log_s)]).await;
    let issuer = s.issuer("default");
    let streams = format!("{issuer}/ssf/streams");
    let receiver = client(&s, "default", "mandate:ssf");
    let at = bearer(&s, "default", &receiver).await;
    let (hostile, hits) = hostile_receiver().await;
    let port = hostile
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for url in [
        hostile.clone(),
        format!("https://127.0.0.1:{port}/any/path"),
        format!("https://localhost:{port}/events"),
        "https://[::1]/events".to_string(),
        "https://[::ffff:127.0.0.1]/events".to_string(),
        "https://[::ffff:0:127.0.0.1]/events".to_string(),
        "https://[::127.0.0.1]/events".to_string(),
        "https://[64:ff9b::7f00:1]/events".to_string(),
        "https://[64:ff9b::a00:1]/events".to_string(),
        "https://[64:ff9b:1::a00:1]/events".to_string(),
        "https://[2002:7f00:1::1]/events".to_string(),
        "https://[2002:a9fe:a9fe::1]/events".to_string(),
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/events".to_string(),
        "https://[fd00::1]/events".to_string(),
        "https://192.0.0.1/events".to_string(),
    ] {
        let body = json!({"delivery": {"method": PUSH, "endpoint_url": url,
            "authorization_header": "Bearer chosen-by-the-receiver"}});
        let (status, v) = call("POST", &streams, Some(&at), Some(body)).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{url}: {v}"
        );
    }
    let (_, list) = call("GET", &streams, Some(&at), None).await;
    assert_eq!(list, json!([]), "nothing was created");

    // A poll receiver reports SET errors in text of its own choosing.
    let (status, cfg) = call("POST", &streams, Some(&at), Some(json!({}))).await;
    assert_eq!(status, 201, "{cfg}");
    let poll_url = format!("{issuer}/ssf/poll/{}", cfg["stream_id"].as_str().unwrap());
    let (status, v) = call(
        "POST",
        &poll_url,
        Some(&at),
        Some(json!({"returnImmediately": true,
            "setErrs": {"jti\nFORGED-JTI line": {"err": "invalid_request\u{1b}[31m",
                "description": "bad\r\nFORGED-DESC admin logged in\u{1b}[2J\u{2028}x"}}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // With the development switch, a loopback receiver can be registered; its refusal is
    // logged escaped.
    s.kill();
    let log2 = format!("{log_s}.2");
    s.extra_env = vec![
        ("MANDATE_TEST_LOG_FILE".into(), log2.clone()),
        (DEV_LOOPBACK.0.into(), DEV_LOOPBACK.1.into()),
    ];
    s.spawn().await;
    let issuer = s.issuer("default");
    let at = bearer(&s, "default", &receiver).await;
    let streams = format!("{issuer}/ssf/streams");
    let body = json!({"delivery": {"method": PUSH, "endpoint_url": hostile}});
    let (status, cfg) = call("POST", &streams, Some(&at), Some(body)).await;
    assert_eq!(status, 201, "{cfg}");
    let id = cfg["stream_id"].as_str().unwrap().to_string();
    let verify = json!({"stream_id": id});
    let (status, _) = call(
        "POST",
        &format!("{issuer}/ssf/verify"),
        Some(&at),
        Some(verify.clone()),
    )
    .await;
    assert_eq!(status, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the SET reached the receiver");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Without the switch, the stored loopback URL is refused when connecting.
    s.kill();
    let log3 = format!("{log_s}.3");
    s.extra_env = vec![("MANDATE_TEST_LOG_FILE".into(), log3.clone())];
    s.spawn().await;
    let issuer = s.issuer("default");
    let at = bearer(&s, "default", &receiver).await;
    let before = hits.load(Ordering::SeqCst);
    let (status, _) = call(
        "POST",
        &format!("{issuer}/ssf/verify"),
        Some(&at),
        Some(verify),
    )
    .await;
    assert_eq!(status, 204);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        before,
        "no request to loopback"
    );
    s.kill();

    let text = [&log_s, &log2, &log3]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    assert!(
        text.contains("FORGED-BODY"),
        "the refusal is logged: {text}"
    );
    assert!(
        text.contains("FORGED-DESC") && text.contains("FORGED-JTI"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "no raw escape sequence: {text:?}");
    assert!(!text.contains('\u{2028}'), "{text:?}");
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("2026-01-01") && !line.contains("\r"),
            "a forged line: {line:?}"
        );
        assert!(!line.starts_with("FORGED"), "a forged line: {line:?}");
    }
    let _ = std::fs::remove_file(log);
    let _ = std::fs::remove_file(log2);
    let _ = std::fs::remove_file(log3);
}

both_backends!(
    outbound_rules_and_log_injection,
    metadata_and_bad_stream_requests,
    revocations_are_pushed,
    paused_streams_hold_and_deleted_streams_drop,
    receivers_cannot_choose_aud,
    polled_sets_are_acknowledged_and_paged,
    streams_are_private_to_their_receiver,
    streams_are_updated_replaced_and_deleted,
    two_nodes_and_restart,
    subjects
);
