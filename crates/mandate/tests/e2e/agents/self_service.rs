//! A person managing the agents that act for them, end to end over HTTP on SQLite and
//! PostgreSQL: the "agents acting for you" page (list with "last acted", revoke one, revoke all),
//! the self-service JSON API (list, create, revoke; delegated and agent tokens refused; other
//! people's mandates out of reach; DPoP-bound tokens), and mandates given on the consent page
//! when an agent runs the authorization code flow itself.

use crate::common::*;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

const CALENDAR: &str = "https://calendar.example";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Register an agent owned by `owner` with a secret; returns (id, secret).
fn agent(s: &Server, name: &str, model: &str, owner: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
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
        model,
        "--version",
        "2.1",
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

fn cli_mandate(s: &Server, user: &str, agent: &str) -> String {
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
        ],
        None,
    );
    v["id"].as_str().unwrap().into()
}

fn web_client(s: &Server) -> (String, String) {
    s.create_web_client(
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
    )
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

/// Run the code flow for `client` in browser `b` (signing in as `username` if asked) and
/// redeem the code; returns the access token.
async fn code_token(
    s: &Server,
    b: &Browser,
    client: &(String, String),
    username: &str,
    scope: &str,
) -> String {
    let issuer = s.issuer("default");
    let (verifier, challenge) = pkce();
    let loc = b
        .authorize(
            &issuer,
            &auth_url(&issuer, &client.0, &challenge, scope, &[]),
            username,
        )
        .await;
    redeem(s, client, &loc, &verifier).await
}

async fn redeem(s: &Server, client: &(String, String), loc: &str, verifier: &str) -> String {
    let code = query_param(loc, "code").unwrap_or_else(|| panic!("no code in {loc}"));
    let (status, v) = token(
        &s.issuer("default"),
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().into()
}

/// A call to the self-service API: status, JSON body (or Null), WWW-Authenticate.
async fn api(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value, String) {
    let mut r = reqwest::Client::new().request(method, url);
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        challenge,
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn active_mandates(s: &Server, user: &str) -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    s.cli(
        &["mandate", "list", "--tenant", "default", "--user", user],
        None,
    )
    .as_array()
    .unwrap()
    .iter()
    .filter(|m| m["revoked_at"].is_null() && m["expires_at"].as_i64().unwrap() > now)
    .cloned()
    .collect()
}

/// A server with alice and bob, a web client, alice's planner and bob's booker, each with a
/// mandate from alice; alice signed in (browser and token) and the planner's delegated token.
struct AgentsPage {
    s: Server,
    issuer: String,
    alice: String,
    web: (String, String),
    planner: (String, String),
    booker: (String, String),
    b: Browser,
    user_at: String,
    m_planner: String,
    m_booker: String,
    planner_token: String,
}

async fn agents_page(backend: Backend) -> AgentsPage {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = web_client(&s);
    let planner = agent(&s, "Planner", "planner-2", "alice", &[]);
    let booker = agent(&s, "Booker", "booker-1", "bob", &[]);

    // Alice signs in to the web app: her browser session and her own token.
    let b = Browser::new();
    let user_at = code_token(&s, &b, &web, "alice", "openid calendar.read").await;
    let m_planner = cli_mandate(&s, "alice", &planner.0);
    let m_booker = cli_mandate(&s, "alice", &booker.0);
    let (status, v) = exchange(&s, &planner, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let planner_token = v["access_token"].as_str().unwrap().to_string();
    AgentsPage {
        s,
        issuer,
        alice,
        web,
        planner,
        booker,
        b,
        user_at,
        m_planner,
        m_booker,
        planner_token,
    }
}

/// The "agents acting for you" page lists both agents, who owns them, what they may do and
/// when they last acted, in English and German, linked from the consents page; without a
/// session it is the sign-in page instead.
async fn page_lists_the_agents_acting_for_you(backend: Backend) {
    let AgentsPage {
        s: _s,
        issuer,
        b,
        m_planner,
        m_booker,
        ..
    } = agents_page(backend).await;

    // The page lists both agents, who owns them, what they may do, and when they last acted.
    let (status, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert_eq!(status, 200, "{page}");
    for want in [
        "Agents acting for you",
        "Planner",
        "planner-2",
        "Booker",
        "booker-1",
        "Acme AI",
        "bob",
        CALENDAR,
        "Last acted for you:",
        "It has not acted for you yet.",
    ] {
        assert!(
            unescape(&page).contains(want),
            "{want:?} missing from {page}"
        );
    }
    assert!(page.contains(&m_planner) && page.contains(&m_booker));
    assert!(unescape(&page).contains("/account/agents/revoke-all"));
    // German, from the catalogue.
    let r = b
        .http
        .get(format!("{issuer}/account/agents"))
        .header("Accept-Language", "de")
        .send()
        .await
        .unwrap();
    let de = r.text().await.unwrap();
    assert!(de.contains("Agenten, die für Sie handeln"), "{de}");
    assert!(de.contains("Zuletzt für Sie gehandelt"), "{de}");
    // The consents page links here.
    let (_, consents, _) = b.get(&format!("{issuer}/account/consents")).await;
    assert!(
        unescape(&consents).contains("/account/agents"),
        "{consents}"
    );

    // Without a session: no list, the sign-in page instead (issue 12 item 27).
    let (status, anon, loc) = Browser::new()
        .get(&format!("{issuer}/account/agents"))
        .await;
    assert_eq!(status, 303);
    assert!(!anon.contains("Planner"));
    assert!(
        loc.unwrap()
            .starts_with(&format!("{issuer}/account/login?"))
    );
}

/// A forged revocation form (no CSRF) and another person's revocation through their own page
/// change nothing.
async fn forged_or_foreign_revocations_change_nothing(backend: Backend) {
    let AgentsPage {
        s,
        issuer,
        web,
        b,
        m_planner,
        planner_token,
        ..
    } = agents_page(backend).await;

    // A forged form (no CSRF) changes nothing.
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/agents/revoke"),
            &[("mandate_id", &m_planner)],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        introspect(&issuer, &web, &planner_token).await["active"],
        true
    );

    // Bob cannot revoke Alice's mandate through his own page.
    let bob_browser = Browser::new();
    code_token(&s, &bob_browser, &web, "bob", "openid").await;
    let (_, bob_page, _) = bob_browser.get(&format!("{issuer}/account/agents")).await;
    assert!(bob_page.contains("No agent may act for you."), "{bob_page}");
    // (His page has no form; the CSRF token of his consents page is the same cookie's.)
    let (_, bob_consents, _) = bob_browser.get(&format!("{issuer}/account/consents")).await;
    let bob_csrf = hidden(&bob_consents, "csrf").unwrap();
    let (status, _, _) = bob_browser
        .post_form(
            &format!("{issuer}/account/agents/revoke"),
            &[("csrf", &bob_csrf), ("mandate_id", &m_planner)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        introspect(&issuer, &web, &planner_token).await["active"],
        true
    );
    assert_eq!(active_mandates(&s, "alice").len(), 2);
}

/// The person revokes one agent on the page (its delegated token dies, their own token and
/// session live, the trail names them), then all of them. One story: the second revocation
/// follows the first on the same page.
async fn person_revokes_one_agent_then_all(backend: Backend) {
    let AgentsPage {
        s,
        issuer,
        alice,
        web,
        planner,
        booker,
        b,
        user_at,
        m_planner,
        planner_token,
        ..
    } = agents_page(backend).await;
    let (_, page, _) = b.get(&format!("{issuer}/account/agents")).await;

    // Alice revokes the planner: its delegated token dies, her own token and session live.
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, loc) = b
        .post_form(
            &format!("{issuer}/account/agents/revoke"),
            &[("csrf", &csrf), ("mandate_id", &m_planner)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        loc.as_deref(),
        Some(format!("{issuer}/account/agents").as_str())
    );
    assert_eq!(
        introspect(&issuer, &web, &planner_token).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &web, &user_at).await["active"], true);
    let r = reqwest::Client::new()
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(&user_at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the person's own token still works");
    let (_, challenge) = pkce();
    let (status, _, loc) = b
        .get(&auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid calendar.read",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(status, 303);
    assert!(
        query_param(&loc.unwrap(), "code").is_some(),
        "the session still signs in silently"
    );
    let (status, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("planner-2") && page.contains("booker-1"),
        "{page}"
    );
    let (status, v) = exchange(&s, &planner, &user_at, &[]).await;
    assert_eq!(status, 400, "{v}");

    // The revocation is on the trail as the person's own act.
    let trail = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            &format!("--mandate={m_planner}"),
            "--event",
            "mandate_revoked",
        ],
        None,
    );
    let rec = &trail.as_array().unwrap()[0];
    assert_eq!(rec["actor"], json!({"type": "user", "id": alice}), "{rec}");
    assert_eq!(rec["reason"], "revoked by the user");

    // Revoke all: the booker's token dies too; the person's own token lives.
    let (status, v) = exchange(&s, &booker, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let booker_token = v["access_token"].as_str().unwrap().to_string();
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/agents/revoke-all"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        introspect(&issuer, &web, &booker_token).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &web, &user_at).await["active"], true);
    assert!(active_mandates(&s, "alice").is_empty());
    let (_, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert!(page.contains("No agent may act for you."), "{page}");
}

/// A client's DPoP key (RFC 9449).
struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Value,
}

impl DpopKey {
    fn new() -> DpopKey {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
        DpopKey { pair, jwk }
    }

    fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        let mut jti = [0u8; 12];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let mut c = json!({
            "jti": B64.encode(jti),
            "htm": htm,
            "htu": htu,
            "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        });
        if let Some(t) = token {
            c["ath"] = B64
                .encode(digest::digest(&digest::SHA256, t.as_bytes()).as_ref())
                .into();
        }
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(c.to_string())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

/// A server with alice (planner and booker agents) and bob, a web client, both people's tokens
/// with mandate:self, and the self-service mandates URL.
struct SelfService {
    s: Server,
    issuer: String,
    url: String,
    alice: String,
    web: (String, String),
    planner: (String, String),
    booker: (String, String),
    user_at: String,
    bob_at: String,
    alice_auth: String,
}

async fn self_service(backend: Backend) -> SelfService {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let url = format!("{issuer}/account/v1/mandates");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = web_client(&s);
    let planner = agent(&s, "Planner", "planner-2", "alice", &[]);
    let booker = agent(&s, "Booker", "booker-1", "alice", &[]);
    let user_at = code_token(
        &s,
        &Browser::new(),
        &web,
        "alice",
        "openid calendar.read mandate:self",
    )
    .await;
    let bob_at = code_token(
        &s,
        &Browser::new(),
        &web,
        "bob",
        "openid calendar.read mandate:self",
    )
    .await;
    let alice_auth = bearer(&user_at);
    SelfService {
        s,
        issuer,
        url,
        alice,
        web,
        planner,
        booker,
        user_at,
        bob_at,
        alice_auth,
    }
}

/// Alice creates a mandate for the planner through the self-service API; returns it.
async fn create_planner_mandate(url: &str, alice_auth: &str, planner: &(String, String)) -> Value {
    let body = json!({
        "agent_id": planner.0,
        "scope": ["calendar.read"],
        "resources": [CALENDAR],
        "authorization_details": [{"type": "calendar", "actions": ["read"]}],
        "expires_in": 600,
        "max_token_lifetime": 120,
    });
    let (status, created, _) = api(reqwest::Method::POST, url, Some(alice_auth), Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// The self-service API needs a token with mandate:self: without the scope 403, without a
/// token 401 with a bare challenge, with a bad one invalid_token.
async fn refused_without_mandate_self_or_a_valid_token(backend: Backend) {
    let SelfService { s, url, web, .. } = self_service(backend).await;
    // Without mandate:self, an app the person uses cannot manage their mandates.
    let plain = code_token(&s, &Browser::new(), &web, "alice", "openid calendar.read").await;
    let (status, _) = reqwest::Client::new()
        .get(format!("{}/account/v1/mandates", s.issuer("default")))
        .bearer_auth(&plain)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 403, "mandate:self is required");

    // No token: 401 with a bare challenge; a bad one: invalid_token.
    let (status, v, challenge) = api(reqwest::Method::GET, &url, None, None).await;
    assert_eq!((status, challenge.as_str()), (401, "Bearer"), "{v}");
    let (status, v, challenge) = api(reqwest::Method::GET, &url, Some("Bearer nope"), None).await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_token")));
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

/// A mandate created through the self-service API (audited as the person's act) lets the
/// agent act, is listed with the agent and when it last acted; bad input creates nothing.
async fn person_creates_and_lists_mandates(backend: Backend) {
    let SelfService {
        s,
        url,
        alice,
        planner,
        user_at,
        alice_auth,
        ..
    } = self_service(backend).await;

    // Empty at first.
    let (status, v, _) = api(reqwest::Method::GET, &url, Some(&alice_auth), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["mandates"], json!([]));

    // Create a mandate for the planner.
    let created = create_planner_mandate(&url, &alice_auth, &planner).await;
    let m = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["origin"], "api");
    assert_eq!(created["agent"]["name"], "Planner");
    assert_eq!(created["scope"], json!(["calendar.read"]));
    assert_eq!(created["max_delegation_depth"], 0);
    let trail = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            &format!("--mandate={m}"),
            "--event",
            "mandate_created",
        ],
        None,
    );
    assert_eq!(
        trail[0]["actor"],
        json!({"type": "user", "id": alice}),
        "{trail}"
    );

    // The agent can now act for Alice under it.
    let (status, v) = exchange(&s, &planner, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let planner_token = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&planner_token)["mandate"], m.as_str());
    assert!(
        claims(&planner_token)["exp"].as_i64().unwrap()
            - claims(&planner_token)["iat"].as_i64().unwrap()
            <= 120
    );
    let (status, v, _) = api(reqwest::Method::GET, &url, Some(&alice_auth), None).await;
    assert_eq!(status, 200);
    let listed = &v["mandates"][0];
    assert_eq!(listed["id"], m.as_str());
    assert_eq!(listed["agent"]["model"], "planner-2");
    assert_eq!(listed["agent"]["owner_username"], "alice");
    assert!(listed["last_acted_at"].is_i64(), "{listed}");
    assert_eq!(listed["resources"], json!([CALENDAR]));

    // Bad input: 400 invalid_request (or 415), nothing created.
    for bad in [
        json!({"agent_id": planner.0, "scope": ["calendar.delete"]}),
        json!({"agent_id": "no-such-agent", "scope": ["calendar.read"]}),
        json!({"agent_id": planner.0}),
        json!({"agent_id": planner.0, "scope": ["calendar.read"], "expires_in": 0}),
        json!({"agent_id": planner.0, "scope": ["calendar.read"], "resources": ["not a uri"]}),
        json!({"agent_id": planner.0, "scope": ["calendar.read"], "authorization_details": [{"actions": []}]}),
        json!({"agent_id": planner.0, "scope": ["calendar.read"], "surprise": true}),
        json!({"agent_id": planner.0, "scope": "calendar.read"}),
        json!({"agent_id": planner.0, "scope": ["calendar.read"], "max_delegation_depth": -1}),
        json!([]),
    ] {
        let (status, v, _) = api(reqwest::Method::POST, &url, Some(&alice_auth), Some(&bad)).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{bad} → {v}"
        );
    }
    let r = reqwest::Client::new()
        .post(&url)
        .header("Authorization", &alice_auth)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = reqwest::Client::new()
        .post(&url)
        .header("Authorization", &alice_auth)
        .form(&[("agent_id", planner.0.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(active_mandates(&s, "alice").len(), 1);
}

/// Delegated tokens never manage mandates (403, or 401 for one meant elsewhere); another
/// person's mandate is out of reach (404); the person revokes their own (204, its delegated
/// token dies, the rest lives; again 404). One story: the same two mandates throughout.
async fn only_the_person_manages_their_mandates(backend: Backend) {
    let SelfService {
        s,
        issuer,
        url,
        web,
        booker,
        planner,
        user_at,
        bob_at,
        alice_auth,
        ..
    } = self_service(backend).await;
    let created = create_planner_mandate(&url, &alice_auth, &planner).await;
    let m = created["id"].as_str().unwrap().to_string();
    let (status, v) = exchange(&s, &planner, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let planner_token = v["access_token"].as_str().unwrap().to_string();

    // A delegated token never manages mandates: a mandate without resources gives the booker a
    // token meant for the issuer itself, which is still refused (403 insufficient_scope).
    let (status, v, _) = api(
        reqwest::Method::POST,
        &url,
        Some(&alice_auth),
        Some(&json!({"agent_id": booker.0, "scope": ["calendar.read"]})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let m_booker = v["id"].as_str().unwrap().to_string();
    let (status, v) = exchange(&s, &booker, &user_at, &[]).await;
    assert_eq!(status, 200, "{v}");
    let booker_token = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&booker_token)["aud"], issuer.as_str());
    let booker_auth = bearer(&booker_token);
    for (method, u, body) in [
        (reqwest::Method::GET, url.clone(), None),
        (
            reqwest::Method::POST,
            url.clone(),
            Some(json!({"agent_id": booker.0, "scope": ["calendar.write"]})),
        ),
        (reqwest::Method::DELETE, format!("{url}/{m}"), None),
    ] {
        let (status, v, challenge) = api(method, &u, Some(&booker_auth), body.as_ref()).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (403, Some("insufficient_scope")),
            "{v}"
        );
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
    }
    // The planner's token (meant for the calendar) is no key here either.
    let (status, _, _) = api(
        reqwest::Method::GET,
        &url,
        Some(&bearer(&planner_token)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(active_mandates(&s, "alice").len(), 2);

    // Someone else's mandate: 404, untouched.
    let (status, v, _) = api(
        reqwest::Method::DELETE,
        &format!("{url}/{m}"),
        Some(&bearer(&bob_at)),
        None,
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (404, Some("not_found")));
    assert_eq!(
        introspect(&issuer, &web, &planner_token).await["active"],
        true
    );
    let (_, v, _) = api(reqwest::Method::GET, &url, Some(&bearer(&bob_at)), None).await;
    assert_eq!(v["mandates"], json!([]), "Bob sees none of Alice's");

    // Alice revokes hers: 204, the delegated token dies, her own lives; again → 404.
    let (status, _, _) = api(
        reqwest::Method::DELETE,
        &format!("{url}/{m}"),
        Some(&alice_auth),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        introspect(&issuer, &web, &planner_token).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &web, &user_at).await["active"], true);
    assert_eq!(
        introspect(&issuer, &web, &booker_token).await["active"],
        true
    );
    let (status, _, _) = api(
        reqwest::Method::DELETE,
        &format!("{url}/{m}"),
        Some(&alice_auth),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, v, _) = api(reqwest::Method::GET, &url, Some(&alice_auth), None).await;
    assert_eq!(v["mandates"].as_array().unwrap().len(), 1);
    assert_eq!(v["mandates"][0]["id"], m_booker.as_str());
}

/// A DPoP-bound token of the person works at the self-service API with the DPoP scheme and a
/// proof, not as a Bearer token.
async fn dpop_bound_tokens_need_their_proof(backend: Backend) {
    let SelfService {
        s: _s,
        issuer,
        url,
        web,
        booker,
        alice_auth,
        ..
    } = self_service(backend).await;
    let (status, v, _) = api(
        reqwest::Method::POST,
        &url,
        Some(&alice_auth),
        Some(&json!({"agent_id": booker.0, "scope": ["calendar.read"]})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let m_booker = v["id"].as_str().unwrap().to_string();

    // A DPoP-bound token of the person works with the DPoP scheme and a proof, not as Bearer.
    let key = DpopKey::new();
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let loc = b
        .authorize(
            &issuer,
            &auth_url(&issuer, &web.0, &challenge, "openid mandate:self", &[]),
            "alice",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&web.0, Some(&web.1))
        .header("DPoP", key.proof("POST", &format!("{issuer}/token"), None))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "DPoP", "{v}");
    let bound = v["access_token"].as_str().unwrap().to_string();
    let r = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("DPoP {bound}"))
        .header("DPoP", key.proof("GET", &url, Some(&bound)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["mandates"][0]["id"], m_booker.as_str());
    let (status, _, _) = api(reqwest::Method::GET, &url, Some(&bearer(&bound)), None).await;
    assert_eq!(status, 401, "a bound token is not a bearer token");
}

/// A server with alice and bob, a web client, bob's "Trip planner" agent with a redirect URI,
/// and alice's browser having signed in at the agent's code flow and approved its consent
/// page; the consent page, the flow's URL and challenge, and the agent's token.
struct Consented {
    s: Server,
    issuer: String,
    alice: String,
    web: (String, String),
    trip: (String, String),
    b: Browser,
    url: String,
    challenge: String,
    consent: String,
    agent_user_token: String,
}

async fn consented(backend: Backend) -> Consented {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = web_client(&s);
    let trip = agent(
        &s,
        "Trip planner",
        "planner-2",
        "bob",
        &["--redirect-uri", REDIRECT],
    );
    let b = Browser::new();

    // The agent runs the code flow as a client: after sign-in the consent page names it.
    let (verifier, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &trip.0,
        &challenge,
        "openid calendar.read",
        &[("resource", CALENDAR)],
    );
    let (status, login, _) = b.get(&url).await;
    assert_eq!(status, 200);
    let (status, consent, _) = b.login(&issuer, &login, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{consent}");
    let (status, _, loc) = b.consent(&issuer, &consent, "approve").await;
    assert_eq!(status, 303);
    let agent_user_token = redeem(&s, &trip, &loc.unwrap(), &verifier).await;
    Consented {
        s,
        issuer,
        alice,
        web,
        trip,
        b,
        url,
        challenge,
        consent,
        agent_user_token,
    }
}

/// An agent running the code flow itself gets a consent page naming it; approval records a
/// mandate (audited as the person's act) under which the agent exchanges its token; the
/// agent's own token cannot manage mandates; the page lists the mandate.
async fn consent_page_gives_a_mandate(backend: Backend) {
    let Consented {
        s,
        issuer,
        alice,
        trip,
        b,
        consent,
        agent_user_token,
        ..
    } = consented(backend).await;
    for want in [
        "Let an AI agent act for you",
        "Trip planner",
        "planner-2",
        "Acme AI",
        "bob",
        "calendar.read",
        CALENDAR,
        "60 minutes",
        "name=\"decision\"",
    ] {
        assert!(
            unescape(&consent).contains(want),
            "{want:?} missing from {consent}"
        );
    }
    let c = claims(&agent_user_token);
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["client_id"], trip.0.as_str());
    // The agent's own code-flow token is a delegated one (issue 12): `act` and `mandate`.
    assert_eq!(c["act"], json!({"sub": trip.0}), "{c}");
    assert!(c["mandate"].is_string(), "{c}");

    // Approval recorded a mandate: the scopes minus OIDC ones, the resource, 1 hour, 300 s
    // tokens, no sub-delegation, by the person's own act.
    let ms = active_mandates(&s, "alice");
    assert_eq!(ms.len(), 1, "{ms:?}");
    let m = &ms[0];
    assert_eq!(m["origin"], "consent");
    assert_eq!(m["agent_id"], trip.0.as_str());
    assert_eq!(m["scope"], "calendar.read");
    assert_eq!(m["resources"], json!([CALENDAR]));
    assert_eq!(m["max_token_lifetime"], 300);
    assert_eq!(m["max_delegation_depth"], 0);
    assert_eq!(
        m["expires_at"].as_i64().unwrap() - m["created_at"].as_i64().unwrap(),
        3600
    );
    let mid = m["id"].as_str().unwrap().to_string();
    assert_eq!(c["mandate"], mid.as_str());
    let trail = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            &format!("--mandate={mid}"),
            "--event",
            "mandate_created",
        ],
        None,
    );
    assert_eq!(trail[0]["actor"], json!({"type": "user", "id": alice}));

    // The agent exchanges its token for a delegated one under the mandate.
    let (status, v) = exchange(&s, &trip, &agent_user_token, &[]).await;
    assert_eq!(status, 200, "{v}");
    let delegated = claims(v["access_token"].as_str().unwrap());
    assert_eq!(delegated["mandate"], mid.as_str());
    assert_eq!(delegated["act"], json!({"sub": trip.0}));
    assert_eq!(delegated["aud"], CALENDAR);
    assert_eq!(delegated["scope"], "calendar.read");

    // The agent's own sign-in token cannot manage mandates: it is a delegated token for the
    // calendar, not one meant for the issuer.
    let (status, v, _) = api(
        reqwest::Method::GET,
        &format!("{issuer}/account/v1/mandates"),
        Some(&bearer(&agent_user_token)),
        None,
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (401, Some("invalid_token")));

    // The page lists it.
    let (_, page, _) = b.get(&format!("{issuer}/account/agents")).await;
    assert!(
        page.contains("Trip planner") && page.contains(&mid),
        "{page}"
    );
}

/// An agent's consent is never remembered (asked again, prompt=none refused), denying records
/// nothing, a bad resource is invalid_target, scopes beyond the ceiling are dropped; ordinary
/// clients keep remembered consent.
async fn agent_consent_is_asked_every_time(backend: Backend) {
    let Consented {
        s,
        issuer,
        web,
        trip,
        b,
        url,
        challenge,
        ..
    } = consented(backend).await;

    // Never remembered: the next request asks again, prompt=none cannot pass silently.
    let (status, again, _) = b.get(&url).await;
    assert_eq!(status, 200);
    assert!(again.contains("name=\"decision\"") && again.contains("Trip planner"));
    let (status, _, loc) = b.get(&format!("{url}&prompt=none")).await;
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("consent_required"),
        "{loc}"
    );
    // Denying records nothing.
    let (status, _, loc) = b.consent(&issuer, &again, "deny").await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(active_mandates(&s, "alice").len(), 1);
    // A bad resource indicator is invalid_target at the client.
    let (status, _, loc) = b
        .get(&auth_url(
            &issuer,
            &trip.0,
            &challenge,
            "openid calendar.read",
            &[("resource", "calendar")],
        ))
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("invalid_target")
    );
    // Asking beyond the agent's ceiling does not widen anything: the scope is dropped.
    let (status, page, _) = b
        .get(&auth_url(
            &issuer,
            &trip.0,
            &challenge,
            "openid calendar.read calendar.delete",
            &[],
        ))
        .await;
    assert_eq!(status, 200);
    assert!(!page.contains("calendar.delete"));

    // Ordinary clients keep remembered consent.
    let web_browser = Browser::new();
    code_token(&s, &web_browser, &web, "alice", "openid").await;
    let (_, c2) = pkce();
    let (status, _, _) = web_browser
        .get(&auth_url(
            &issuer,
            &web.0,
            &c2,
            "openid",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(status, 303);
}

/// Revoking the consent mandate ends the agent's own sign-in grant, and suspending the agent
/// ends what it holds as a client and its asking; the person's own tokens at other clients
/// stay active. One story: the same agent and person throughout.
async fn revoking_or_suspending_ends_the_agents_grants(backend: Backend) {
    let Consented {
        s,
        issuer,
        web,
        trip,
        b,
        url,
        agent_user_token,
        ..
    } = consented(backend).await;
    let mid = active_mandates(&s, "alice")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let web_browser = Browser::new();

    // Revoking the consent mandate also ends the agent's own sign-in (code-flow) grant; the
    // person's own tokens at other clients stay active.
    let own = code_token(&s, &web_browser, &web, "alice", "openid").await;
    assert_eq!(
        introspect(&issuer, &web, &agent_user_token).await["active"],
        true
    );
    s.revoke_mandate("default", &mid);
    assert_eq!(
        introspect(&issuer, &web, &agent_user_token).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &web, &own).await["active"], true);
    // Suspending the agent ends what it holds as a client, too.
    let (verifier2, challenge2) = pkce();
    let url2 = auth_url(
        &issuer,
        &trip.0,
        &challenge2,
        "openid calendar.read",
        &[("resource", CALENDAR)],
    );
    let (status, consent2, _) = b.get(&url2).await;
    assert_eq!(status, 200);
    let (_, _, loc) = b.consent(&issuer, &consent2, "approve").await;
    let second = redeem(&s, &trip, &loc.unwrap(), &verifier2).await;
    assert_eq!(introspect(&issuer, &web, &second).await["active"], true);

    // A suspended agent cannot ask.
    s.cli(
        &["agent", "suspend", "--tenant", "default", "--", &trip.0],
        None,
    );
    assert_eq!(introspect(&issuer, &web, &second).await["active"], false);
    assert_eq!(introspect(&issuer, &web, &own).await["active"], true);
    let (status, _, loc) = b.get(&url).await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("unauthorized_client")
    );
}

/// Issue 12 item 8: withdrawing consent on the account page withdraws access. The app's
/// refresh token stops working and its access tokens introspect inactive; another app's tokens
/// are untouched. For an agent, the mandate given on its consent page is revoked and its
/// delegated tokens die. Every revocation is in the trail (and so reaches SSF receivers).
async fn withdrawing_consent_revokes_access(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let alice = s.create_user("default", "alice");
    s.create_user("default", "bob");
    let web = web_client(&s);
    let other = s.create_web_client("default", &[]);
    let b = Browser::new();

    let (verifier, challenge) = pkce();
    let loc = b
        .authorize(
            &issuer,
            &auth_url(&issuer, &web.0, &challenge, "openid calendar.read", &[]),
            "alice",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    let (status, first) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let kept = code_flow_tokens(&s, &b, "default", &other, "alice").await;
    let kept_at = kept["access_token"].as_str().unwrap();
    for at in [&first["access_token"], &second["access_token"]] {
        assert_eq!(
            introspect(&issuer, &web, at.as_str().unwrap()).await["active"],
            true
        );
    }

    // An agent signs alice in and gets a mandate on its consent page; it acts under it.
    let trip = agent(
        &s,
        "Trip planner",
        "planner-2",
        "bob",
        &["--redirect-uri", REDIRECT],
    );
    let (verifier, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &trip.0,
        &challenge,
        "openid calendar.read",
        &[("resource", CALENDAR)],
    );
    let (status, consent, _) = b.get(&url).await;
    assert_eq!(status, 200, "{consent}");
    let (status, _, loc) = b.consent(&issuer, &consent, "approve").await;
    assert_eq!(status, 303);
    let agent_token = redeem(&s, &trip, &loc.unwrap(), &verifier).await;
    let (status, v) = exchange(&s, &trip, &agent_token, &[]).await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&issuer, &trip, &delegated).await["active"], true);
    assert_eq!(active_mandates(&s, "alice").len(), 1);

    // Withdraw the web app's consent on the account page.
    let (status, page, _) = b.get(&format!("{issuer}/account/consents")).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let withdraw = |client: String| {
        let (b, issuer, csrf) = (&b, issuer.clone(), csrf.clone());
        async move {
            b.post_form(
                &format!("{issuer}/account/consents/withdraw"),
                &[("csrf", csrf.as_str()), ("client_id", client.as_str())],
            )
            .await
        }
    };
    assert_eq!(withdraw(web.0.clone()).await.0, 303);
    for at in [&first["access_token"], &second["access_token"]] {
        let v = introspect(&issuer, &web, at.as_str().unwrap()).await;
        assert_eq!(v["active"], false, "{v}");
    }
    let (status, v) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    assert_eq!(introspect(&issuer, &other, kept_at).await["active"], true);
    assert_eq!(
        introspect(&issuer, &trip, &delegated).await["active"],
        true,
        "other clients' access is untouched"
    );

    // Withdrawing the agent's consent ends its consent mandate and its tokens.
    assert_eq!(withdraw(trip.0.clone()).await.0, 303);
    assert!(active_mandates(&s, "alice").is_empty());
    assert_eq!(
        introspect(&issuer, &trip, &delegated).await["active"],
        false
    );
    assert_eq!(
        introspect(&issuer, &trip, &agent_token).await["active"],
        false
    );
    assert_eq!(introspect(&issuer, &other, kept_at).await["active"], true);

    // The trail: two withdrawals, the grants revoked with the reason, the mandate revoked.
    let trail = |event: &str| {
        s.cli(
            &[
                "audit",
                "query",
                "--tenant",
                "default",
                &format!("--subject={alice}"),
                "--event",
                event,
            ],
            None,
        )
        .as_array()
        .unwrap()
        .clone()
    };
    assert_eq!(trail("consent_withdrawn").len(), 2);
    let revoked = trail("token_revoked");
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert!(
        revoked.iter().all(|e| e["reason"] == "consent withdrawn"),
        "{revoked:?}"
    );
    let m = trail("mandate_revoked");
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0]["reason"], "consent withdrawn");
}

both_backends!(
    page_lists_the_agents_acting_for_you,
    forged_or_foreign_revocations_change_nothing,
    person_revokes_one_agent_then_all,
    refused_without_mandate_self_or_a_valid_token,
    person_creates_and_lists_mandates,
    only_the_person_manages_their_mandates,
    dpop_bound_tokens_need_their_proof,
    consent_page_gives_a_mandate,
    agent_consent_is_asked_every_time,
    revoking_or_suspending_ends_the_agents_grants,
    withdrawing_consent_revokes_access
);
