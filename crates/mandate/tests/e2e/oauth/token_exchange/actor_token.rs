//! RFC 8693 `actor_token` as the agent's own signed JWT assertion
//! (`urn:ietf:params:oauth:token-type:jwt`): accepted once from the agent that signed it, for
//! this issuer; a replay, another agent's assertion, a wrong audience or a forged signature is
//! `invalid_request`, and changes nothing.

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn actor_token_signed_assertion(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let (agent, key) = key_agent(&s, "Planner", "alice", "calendar.read");
    let (other, other_key) = key_agent(&s, "Other", "alice", "calendar.read");
    s.cli(
        &[
            "mandate",
            "create",
            "--tenant",
            "default",
            "--user",
            "alice",
            &format!("--agent={agent}"),
            "--scope",
            "calendar.read",
        ],
        None,
    );
    let person = person_token(&s, &web, "alice", "openid calendar.read").await;
    let issuer = s.issuer("default");
    let token_url = format!("{issuer}/token");
    let mut n = 0;
    let mut exchange = |actor_token: Option<String>| {
        n += 1;
        let client_assertion = signed_assertion(&key, &agent, &issuer, &format!("client-{n}"));
        let (person, token_url) = (person.clone(), token_url.clone());
        async move {
            let mut form = vec![
                ("grant_type", EXCHANGE.to_string()),
                ("client_assertion_type", JWT_BEARER.to_string()),
                ("client_assertion", client_assertion),
                ("subject_token", person),
                ("subject_token_type", AT_TYPE.to_string()),
            ];
            if let Some(a) = actor_token {
                form.push(("actor_token", a));
                form.push(("actor_token_type", JWT_TYPE.to_string()));
            }
            let r = reqwest::Client::new()
                .post(token_url)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    // The agent's own assertion as actor_token: a delegated token for alice, acted by the agent.
    let good = signed_assertion(&key, &agent, &token_url, "actor-1");
    let (status, v) = exchange(Some(good.clone())).await;
    assert_eq!(status, 200, "{v}");
    let at = v["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(at.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["act"], json!({"sub": agent}));

    // Refused, each as invalid_request, changing nothing: a replay; another agent's assertion;
    // a forged one (other key, this agent's name); a foreign audience; a missing token.
    let before = snapshot(&s).await;
    for (why, bad) in [
        ("replay", Some(good)),
        (
            "another agent",
            Some(signed_assertion(&other_key, &other, &issuer, "actor-2")),
        ),
        (
            "forged",
            Some(signed_assertion(&other_key, &agent, &issuer, "actor-3")),
        ),
        (
            "audience",
            Some(signed_assertion(
                &key,
                &agent,
                "https://elsewhere.example",
                "actor-4",
            )),
        ),
        ("not a JWT", Some("garbage".to_string())),
    ] {
        let (status, v) = exchange(bad).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{why}: {v}"
        );
    }
    // Each refused request spent only its client assertion's jti.
    let after = snapshot(&s).await;
    let changed: Vec<_> = after
        .iter()
        .filter(|row| !before.contains(row))
        .filter(|(query, _)| !query.contains("replay_entries"))
        .collect();
    assert!(changed.is_empty(), "refusals changed {changed:?}");
    // Without an actor_token the authenticated agent is the actor, as before.
    let (status, v) = exchange(None).await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn actor_token_assertion_sqlite() {
    actor_token_signed_assertion(Backend::Sqlite).await;
}

#[tokio::test]
async fn actor_token_assertion_postgres() {
    actor_token_signed_assertion(Backend::Postgres).await;
}
