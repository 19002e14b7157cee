//! Delegation refusals over real HTTP on SQLite and PostgreSQL, each changing nothing: an
//! expired mandate, a replayed agent client assertion, tokens and agents of another tenant, and
//! an attempt to launder a delegated token into a plain one through every grant type, and an
//! agent's own authorization-code flow, which yields only tokens inside the approved mandate.

use crate::common::*;
use serde_json::Value;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn mandate(s: &Server, tenant: &str, user: &str, agent: &str, expires_in: &str) {
    s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            tenant,
            "--user",
            user,
            &format!("--agent={agent}"),
            "--scope",
            "calendar.read",
            "--expires-in",
            expires_in,
        ],
        None,
    );
}

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Assert the refusal's status and error code, and that it changed nothing but the replay log.
macro_rules! refused {
    ($s:expr, $call:expr, $status:expr, $error:expr) => {{
        let before = snapshot(&$s).await;
        let (status, v) = $call;
        assert_eq!(
            (status, v["error"].as_str()),
            ($status, Some($error)),
            "{v}"
        );
        assert!(v.get("access_token").is_none(), "{v}");
        let after = snapshot(&$s).await;
        let changed: Vec<_> = after
            .iter()
            .filter(|row| !before.contains(row))
            .filter(|(q, _)| !q.contains("replay_entries"))
            .collect();
        assert!(changed.is_empty(), "a refusal changed {changed:?}");
    }};
}

async fn refusals(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_tenant("other");
    s.create_user("default", "alice");
    s.create_user("other", "olga");
    let issuer = s.issuer("default");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let person = person_token(&s, &web, "alice", "openid calendar.read").await;

    // An expired mandate.
    let late = secret_agent(&s, "default", "Planner", "alice", "calendar.read");
    mandate(&s, "default", "alice", &late.0, "1");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    refused!(
        s,
        token(
            &issuer,
            &late,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &person),
                ("subject_token_type", AT_TYPE),
            ],
        )
        .await,
        400,
        "invalid_request"
    );

    // A replayed client assertion of an agent (private_key_jwt).
    let (agent, key) = key_agent(&s, "Signer", "alice", "calendar.read");
    mandate(&s, "default", "alice", &agent, "3600");
    let assertion = signed_assertion(&key, &agent, &issuer, "once");
    let form = |a: &str| {
        vec![
            ("grant_type", EXCHANGE.to_string()),
            ("client_assertion_type", JWT_BEARER.to_string()),
            ("client_assertion", a.to_string()),
            ("subject_token", person.clone()),
            ("subject_token_type", AT_TYPE.to_string()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let url = format!("{issuer}/token");
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&url, &f).await
        }
    };
    let (status, v) = send(form(&assertion)).await;
    assert_eq!(status, 200, "{v}");
    let delegated = v["access_token"].as_str().unwrap().to_string();
    refused!(s, send(form(&assertion)).await, 401, "invalid_client");

    // Another tenant: its person's token is not a subject here, its agent is unknown here, and
    // this tenant's delegated token is nothing there.
    let other_web =
        s.create_web_client("other", &["--scope", "openid", "--scope", "calendar.read"]);
    let olga = person_token_at(&s, "other", &other_web, "olga", "openid calendar.read").await;
    let default_agent = secret_agent(&s, "default", "Planner", "alice", "calendar.read");
    mandate(&s, "default", "alice", &default_agent.0, "3600");
    refused!(
        s,
        token(
            &issuer,
            &default_agent,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &olga),
                ("subject_token_type", AT_TYPE),
            ],
        )
        .await,
        400,
        "invalid_request"
    );
    refused!(
        s,
        token(
            &s.issuer("other"),
            &default_agent,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &person),
                ("subject_token_type", AT_TYPE),
            ],
        )
        .await,
        401,
        "invalid_client"
    );
    assert_eq!(
        introspect(&s.issuer("other"), &other_web, &delegated).await["active"],
        false
    );

    // Laundering: no grant turns the delegated token into a token without its actor.
    let client = &default_agent;
    let attempts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "token exchange for another token type",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &delegated),
                ("subject_token_type", AT_TYPE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:id_token",
                ),
            ],
        ),
        (
            "token exchange by an agent outside the chain without a mandate hop",
            vec![
                ("grant_type", EXCHANGE),
                ("subject_token", &delegated),
                ("subject_token_type", AT_TYPE),
            ],
        ),
        (
            "refresh_token grant with the access token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &delegated),
            ],
        ),
        (
            "authorization_code grant with the access token",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &delegated),
                ("redirect_uri", REDIRECT),
                ("code_verifier", "x".repeat(43).leak()),
            ],
        ),
        (
            "client_credentials",
            vec![("grant_type", "client_credentials")],
        ),
        (
            "password",
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        ),
    ];
    for (what, form) in attempts {
        let before = snapshot(&s).await;
        let (status, v) = token(&issuer, client, &form).await;
        if status == 200 {
            // Only ever another delegated token, never a plain one.
            let c = claims(v["access_token"].as_str().unwrap());
            assert!(c.get("act").is_some(), "{what}: laundered into {c}");
        } else {
            assert!(
                (400..500).contains(&status) && v["error"].is_string(),
                "{what}: {status} {v}"
            );
            let after = snapshot(&s).await;
            let changed: Vec<_> = after
                .iter()
                .filter(|row| !before.contains(row))
                .filter(|(q, _)| !q.contains("replay_entries"))
                .collect();
            assert!(changed.is_empty(), "{what} changed {changed:?}");
        }
    }
    // The web client (the person's app) cannot turn it into a plain token either.
    let (status, v) = token(
        &issuer,
        &web,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &delegated),
            ("subject_token_type", AT_TYPE),
        ],
    )
    .await;
    assert!((400..500).contains(&status), "{v}");
}

#[tokio::test]
async fn refusals_sqlite() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn refusals_postgres() {
    refusals(Backend::Postgres).await;
}

const CALENDAR: &str = "https://calendar.example";
const BANK: &str = "https://bank.example";

/// An agent registered as a client runs the code flow for a person: the code redeems to a
/// token with `act` and `mandate`, inside the mandate the person approved (scope, resource,
/// lifetime), never to a plain token for the person or another audience; introspection shows
/// the delegation and revoking the mandate kills it (issue 12, item 2).
async fn agent_code_flow(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let issuer = s.issuer("default");
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
            "--scope-ceiling",
            "calendar.write",
            "--redirect-uri",
            REDIRECT,
            "--generate-secret",
        ],
        None,
    );
    let agent = (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
    let b = Browser::new();
    let (verifier, challenge) = pkce();
    let url = auth_url(
        &issuer,
        &agent.0,
        &challenge,
        "openid calendar.read",
        &[("resource", CALENDAR)],
    );
    let loc = b.authorize(&issuer, &url, "alice").await;
    let code = query_param(&loc, "code").expect("code");
    let mandates = s.cli(
        &["mandate", "list", "--tenant", "default", "--user", "alice"],
        None,
    );
    let mandate_id = mandates[0]["id"].as_str().unwrap().to_string();
    let redeem = |extra: Vec<(&'static str, String)>| {
        let (issuer, agent, code, verifier) = (
            issuer.clone(),
            agent.clone(),
            code.clone(),
            verifier.clone(),
        );
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_string()),
                ("code_verifier", verifier),
            ];
            form.extend(extra);
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token(&issuer, &agent, &form).await
        }
    };
    // Another audience than the mandate's: invalid_target, and the code is not spent.
    refused!(
        s,
        redeem(vec![("resource", BANK.into())]).await,
        400,
        "invalid_target"
    );
    let (status, v) = redeem(vec![]).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert!(
        v.get("id_token").is_some(),
        "the agent still learns who signed in: {v}"
    );
    assert_eq!(v["scope"], "calendar.read");
    let at = v["access_token"].as_str().unwrap().to_string();
    let c = claims(&at);
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["act"], serde_json::json!({"sub": agent.0}));
    assert_eq!(c["mandate"], mandate_id.as_str());
    assert_eq!(c["scope"], "calendar.read");
    assert_eq!(c["aud"], CALENDAR);
    assert!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap() <= 300,
        "no longer than the consent mandate's token lifetime: {c}"
    );
    let intro = introspect(&issuer, &agent, &at).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["act"]["sub"], agent.0.as_str());
    assert_eq!(intro["mandate"], mandate_id.as_str());
    // The agent cannot refresh its way out of the mandate either (no refresh token was issued;
    // a made-up one is unknown).
    let (status, v) = token(
        &issuer,
        &agent,
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    s.revoke_mandate("default", &mandate_id);
    assert_eq!(introspect(&issuer, &agent, &at).await["active"], false);

    // An agent that only asks who the person is gets no mandate, and its access token still
    // names it (`act`), carries only OpenID Connect scopes and is for the issuer alone.
    let (verifier, challenge) = pkce();
    let url = auth_url(&issuer, &agent.0, &challenge, "openid", &[]);
    let loc = b.authorize(&issuer, &url, "alice").await;
    let code = query_param(&loc, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    let mut with_bank = form.to_vec();
    with_bank.push(("resource", BANK));
    refused!(
        s,
        token(&issuer, &agent, &with_bank).await,
        400,
        "invalid_target"
    );
    let (status, v) = token(&issuer, &agent, &form).await;
    assert_eq!(status, 200, "{v}");
    let c = claims(v["access_token"].as_str().unwrap());
    assert_eq!(c["act"], serde_json::json!({"sub": agent.0}));
    assert_eq!(c["aud"], issuer.as_str());
    assert_eq!(c["scope"], "openid");
    assert!(v.get("refresh_token").is_none(), "{v}");
}

#[tokio::test]
async fn agent_code_flow_sqlite() {
    agent_code_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn agent_code_flow_postgres() {
    agent_code_flow(Backend::Postgres).await;
}
