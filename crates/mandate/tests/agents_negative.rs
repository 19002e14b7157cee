//! Delegation refusals over real HTTP on SQLite and PostgreSQL, each changing nothing: an
//! expired mandate, a replayed agent client assertion, tokens and agents of another tenant, and
//! an attempt to launder a delegated token into a plain one through every grant type.

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

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
