//! DPoP (RFC 9449) over real HTTP: proofs at the token endpoint bind access tokens to a key
//! (`cnf.jkt`, token_type DPoP); replayed, mismatched or missing proofs are refused; a bound token
//! is accepted at a resource only with the DPoP scheme and a fresh proof by its key; agents
//! registered with `--require-dpop` get nothing without one; server nonces when required.

use crate::common::*;
use serde_json::{Value, json};

type Key = DpopKey;

/// POST to the token endpoint with Basic auth and optional DPoP proof; status, body, nonce.
async fn token_dpop(
    issuer: &str,
    client: &(String, String),
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(form);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap(), nonce)
}

async fn get(url: &str, auth: &str, proof: Option<&str>) -> (u16, String) {
    let mut r = reqwest::Client::new()
        .get(url)
        .header("Authorization", auth);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge)
}

fn admin_client(s: &Server) -> (String, String) {
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Ops",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mandate:admin",
        ],
        None,
    );
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

/// A server with an admin client (client credentials) and a DPoP key.
struct Bound {
    s: Server,
    issuer: String,
    token_url: String,
    admin: (String, String),
    key: Key,
}

async fn bound(backend: Backend) -> Bound {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let token_url = format!("{issuer}/token");
    let admin = admin_client(&s);
    let key = Key::new();
    Bound {
        s,
        issuer,
        token_url,
        admin,
        key,
    }
}

/// At the token endpoint (advertised in discovery) a proof binds the access token to its key
/// (`cnf.jkt`, token_type DPoP); a replayed, mismatched or garbage proof is refused and
/// audited; without a proof the token is an ordinary bearer token.
async fn proofs_bind_tokens_at_the_token_endpoint(backend: Backend) {
    let Bound {
        s,
        issuer,
        token_url,
        admin,
        key,
    } = bound(backend).await;
    let cc = [("grant_type", "client_credentials")];

    // Discovery advertises DPoP.
    let meta: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        meta["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );

    // A proof binds the token.
    let proof = key.proof("POST", &token_url, None, None);
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some(&proof)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let at = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&at)["cnf"]["jkt"], key.jkt());
    let i = introspect(&issuer, &admin, &at).await;
    assert_eq!(
        (i["active"].clone(), i["token_type"].clone()),
        (json!(true), json!("DPoP"))
    );
    assert_eq!(i["cnf"]["jkt"], key.jkt());

    // Refusals: replay, wrong URI, wrong method, garbage, two proofs.
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some(&proof)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "replay"
    );
    let wrong_htu = key.proof("POST", &format!("{issuer}/introspect"), None, None);
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some(&wrong_htu)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let wrong_htm = key.proof("GET", &token_url, None, None);
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some(&wrong_htm)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some("not.a.proof")).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    // Each refusal is on the audit trail.
    let failed = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "token_request_failed",
            "--json",
        ],
        None,
    );
    let dpop_failures = failed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "invalid_dpop_proof")
        .count();
    assert_eq!(dpop_failures, 4, "{failed}");
    // Without a proof: an ordinary bearer token.
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, None).await;
    assert_eq!((status, v["token_type"].as_str()), (200, Some("Bearer")));
}

/// A bound token is accepted at a resource only with the DPoP scheme and a fresh proof by its
/// key (RFC 9449 §7.1 challenges otherwise); an unbound token is not accepted as DPoP; each
/// misuse is audited.
async fn bound_tokens_at_a_resource(backend: Backend) {
    let Bound {
        s,
        issuer,
        token_url,
        admin,
        key,
    } = bound(backend).await;
    let cc = [("grant_type", "client_credentials")];
    let proof = key.proof("POST", &token_url, None, None);
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, Some(&proof)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let at = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&at)["cnf"]["jkt"], key.jkt());
    // Without a proof: an ordinary bearer token.
    let (status, v, _) = token_dpop(&issuer, &admin, &cc, None).await;
    assert_eq!((status, v["token_type"].as_str()), (200, Some("Bearer")));
    let bearer = v["access_token"].as_str().unwrap().to_string();

    // Using the bound token at a resource (the admin API).
    let url = format!("{}/admin/v1/tenants/default/audit/events?limit=1", s.base);
    let htu = format!("{}/admin/v1/tenants/default/audit/events", s.base);
    let (status, c) = get(&url, &format!("Bearer {at}"), None).await;
    assert_eq!(status, 401, "a bound token presented as Bearer");
    assert_key_binding_challenge(&c);
    let (status, _) = get(&url, &format!("DPoP {at}"), None).await;
    assert_eq!(status, 401, "no proof");
    let good = key.proof("GET", &htu, Some(&at), None);
    let (status, c) = get(&url, &format!("DPoP {at}"), Some(&good)).await;
    assert_eq!(status, 200, "{c}");
    let (status, _) = get(&url, &format!("DPoP {at}"), Some(&good)).await;
    assert_eq!(status, 401, "a resource proof is single-use too");
    let other = Key::new().proof("GET", &htu, Some(&at), None);
    let (status, c) = get(&url, &format!("DPoP {at}"), Some(&other)).await;
    assert_eq!(status, 401, "another key");
    assert_key_binding_challenge(&c);
    let no_ath = key.proof("GET", &htu, None, None);
    let (status, _) = get(&url, &format!("DPoP {at}"), Some(&no_ath)).await;
    assert_eq!(status, 401, "proof without ath");
    let (status, c) = get(
        &url,
        &format!("DPoP {bearer}"),
        Some(&key.proof("GET", &htu, Some(&bearer), None)),
    )
    .await;
    assert_eq!(status, 401, "an unbound token presented as DPoP");
    assert!(
        c.starts_with("DPoP ") && c.contains("error=\"invalid_token\""),
        "{c}"
    );
    let (status, _) = get(&url, &format!("Bearer {bearer}"), None).await;
    assert_eq!(status, 200);
    // Each misuse of a valid token at the resource is on the trail (6 above).
    let refused = s.cli(
        &[
            "audit",
            "query",
            "--tenant",
            "default",
            "--event",
            "authorization_failed",
            "--json",
        ],
        None,
    );
    let at_resource = refused
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["resource"] == htu.as_str())
        .count();
    assert_eq!(at_resource, 6, "{refused}");
}

/// An agent registered with `--require-dpop` gets nothing from a token exchange without a
/// proof, and with one a delegated token bound to its key.
async fn agents_registered_with_require_dpop(backend: Backend) {
    let Bound {
        s,
        issuer,
        token_url,
        ..
    } = bound(backend).await;

    // An agent that must use DPoP.
    let alice = s.create_user("default", "alice");
    let _ = alice;
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Bound",
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--generate-secret",
            "--require-dpop",
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
        ],
        None,
    );
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
    let (_, user) = token(
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
    let user_at = user["access_token"].as_str().unwrap();
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", user_at),
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
    ];
    let (status, v, _) = token_dpop(&issuer, &agent, &form, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );
    let agent_key = Key::new();
    let (status, v, _) = token_dpop(
        &issuer,
        &agent,
        &form,
        Some(&agent_key.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let delegated = claims(v["access_token"].as_str().unwrap());
    assert_eq!(delegated["cnf"]["jkt"], agent_key.jkt());
    assert_eq!(delegated["act"]["sub"], agent.0.as_str());
}

/// RFC 9449 §7.1: a key-binding failure at a resource is a `DPoP` challenge naming the algs.
fn assert_key_binding_challenge(c: &str) {
    assert!(c.starts_with("DPoP "), "{c}");
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    assert!(
        c.contains("error_description=\"Invalid DPoP key binding\""),
        "{c}"
    );
    assert!(c.contains("algs=\"") && c.contains("ES256"), "{c}");
}

/// POST to the token endpoint as a public client (client_id in the form), with an optional
/// proof.
async fn public_token(issuer: &str, form: &[(&str, &str)], proof: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .form(form);
    if let Some(p) = proof {
        r = r.header("DPoP", p);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// RFC 9449 §5: a public client's refresh token is bound to its DPoP key. Without a proof or
/// with another key the refresh is refused and spends nothing; with the key it works and the
/// new tokens stay bound. A confidential client's refresh token is bound by its client
/// authentication instead. The bound access token at userinfo: `DPoP` challenges.
async fn public_refresh_bound(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let token_url = format!("{issuer}/token");
    s.create_user("default", "alice");
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            REDIRECT,
        ],
        None,
    );
    let spa = v["client_id"].as_str().unwrap().to_string();
    let key = Key::new();
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let loc = b
        .authorize(
            &issuer,
            &auth_url(&issuer, &spa, &challenge, "openid profile", &[]),
            "alice",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    let (status, v) = public_token(
        &issuer,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &spa),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        Some(&key.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let at = v["access_token"].as_str().unwrap().to_string();
    let rt = v["refresh_token"].as_str().unwrap().to_string();

    // The bound access token at userinfo: as Bearer, a DPoP challenge; with a proof, fine.
    let userinfo = format!("{issuer}/userinfo");
    let (status, c) = get(&userinfo, &format!("Bearer {at}"), None).await;
    assert_eq!(status, 401);
    assert_key_binding_challenge(&c);
    let (status, c) = get(
        &userinfo,
        &format!("DPoP {at}"),
        Some(&Key::new().proof("GET", &userinfo, Some(&at), None)),
    )
    .await;
    assert_eq!(status, 401);
    assert_key_binding_challenge(&c);
    let (status, c) = get(
        &userinfo,
        &format!("DPoP {at}"),
        Some(&key.proof("GET", &userinfo, Some(&at), None)),
    )
    .await;
    assert_eq!(status, 200, "{c}");

    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", spa.as_str()),
        ("refresh_token", rt.as_str()),
    ];
    // A thief without the key: no proof, then a proof by the thief's own key.
    let (status, v) = public_token(&issuer, &form, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );
    let thief = Key::new();
    let (status, v) = public_token(
        &issuer,
        &form,
        Some(&thief.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
    // Nothing was spent: the holder of the key refreshes, and stays bound.
    let (status, v) = public_token(
        &issuer,
        &form,
        Some(&key.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["cnf"]["jkt"],
        key.jkt()
    );
    let next = v["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", spa.as_str()),
        ("refresh_token", next.as_str()),
    ];
    let (status, v) = public_token(&issuer, &form, None).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let (status, v) = public_token(
        &issuer,
        &form,
        Some(&key.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // A confidential client's refresh token is bound by its authentication: it may refresh
    // with a new key, or without one.
    let web = s.create_web_client("default", &[]);
    let t = code_flow_tokens(&s, &b, "default", &web, "alice").await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (status, v, _) = token_dpop(
        &issuer,
        &web,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        Some(&Key::new().proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(
        (status, v["token_type"].as_str()),
        (200, Some("DPoP")),
        "{v}"
    );
    let (status, v, _) = token_dpop(
        &issuer,
        &web,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", v["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, v["token_type"].as_str()),
        (200, Some("Bearer")),
        "{v}"
    );
}

/// With nonces required, a proof without the server's nonce gets `use_dpop_nonce` and a
/// `DPoP-Nonce` header; the retry with it succeeds.
async fn server_nonce(backend: Backend) {
    let s = Server::start_with(backend, &[("MANDATE_DPOP_REQUIRE_NONCE", "true")]).await;
    let issuer = s.issuer("default");
    let token_url = format!("{issuer}/token");
    let admin = admin_client(&s);
    let key = Key::new();
    let cc = [("grant_type", "client_credentials")];
    let (status, v, nonce) = token_dpop(
        &issuer,
        &admin,
        &cc,
        Some(&key.proof("POST", &token_url, None, None)),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{v}"
    );
    let nonce = nonce.expect("DPoP-Nonce header");
    let (status, _, _) = token_dpop(
        &issuer,
        &admin,
        &cc,
        Some(&key.proof("POST", &token_url, None, Some("made-up"))),
    )
    .await;
    assert_eq!(status, 400);
    let (status, v, next) = token_dpop(
        &issuer,
        &admin,
        &cc,
        Some(&key.proof("POST", &token_url, None, Some(&nonce))),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(next.is_some(), "a fresh nonce comes with every response");
}

both_backends!(
    proofs_bind_tokens_at_the_token_endpoint,
    bound_tokens_at_a_resource,
    agents_registered_with_require_dpop,
    server_nonce,
    public_refresh_bound
);
