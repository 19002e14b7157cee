//! RFC 8693 `actor_token` as the agent's own signed JWT assertion
//! (`urn:ietf:params:oauth:token-type:jwt`): accepted once from the agent that signed it, for
//! this issuer; a replay, another agent's assertion, a wrong audience or a forged signature is
//! `invalid_request`, and changes nothing.

mod common;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use common::*;
use serde_json::{Value, json};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const AT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An agent registered with a P-256 public key; returns its id and private key (PKCS#8).
fn key_agent(s: &Server, name: &str) -> (String, Vec<u8>) {
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65]), "kid": "k1", "alg": "ES256"});
    let path = s.data_dir.with_extension(format!("{name}.jwk.json"));
    std::fs::write(&path, jwk.to_string()).unwrap();
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            name,
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--jwk-file",
            path.to_str().unwrap(),
        ],
        None,
    );
    let id = v["id"]
        .as_str()
        .or(v["client_id"].as_str())
        .unwrap()
        .to_string();
    (id, kp.to_pkcs8v1().unwrap().as_ref().to_vec())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn assertion(key: &[u8], iss: &str, aud: &str, jti: &str) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("k1".into());
    let claims =
        json!({"iss": iss, "sub": iss, "aud": aud, "jti": jti, "iat": now(), "exp": now() + 60});
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_ec_der(key)).unwrap()
}

/// The person's access token with calendar.read, through the browser flow.
async fn person_token(s: &Server, web: &(String, String)) -> String {
    let issuer = s.issuer("default");
    let (verifier, challenge) = pkce();
    let loc = Browser::new()
        .authorize(
            &issuer,
            &auth_url(&issuer, &web.0, &challenge, "openid calendar.read", &[]),
            "alice",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    let (status, v) = token(
        &issuer,
        web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().into()
}

async fn actor_token_assertion(backend: Backend) {
    let s = Server::start(backend).await;
    let alice = s.create_user("default", "alice");
    let web = s.create_web_client(
        "default",
        &["--scope", "openid", "--scope", "calendar.read"],
    );
    let (agent, key) = key_agent(&s, "Planner");
    let (other, other_key) = key_agent(&s, "Other");
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
    let person = person_token(&s, &web).await;
    let issuer = s.issuer("default");
    let token_url = format!("{issuer}/token");
    let mut n = 0;
    let mut exchange = |actor_token: Option<String>| {
        n += 1;
        let client_assertion = assertion(&key, &agent, &issuer, &format!("client-{n}"));
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
    let good = assertion(&key, &agent, &token_url, "actor-1");
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
            Some(assertion(&other_key, &other, &issuer, "actor-2")),
        ),
        (
            "forged",
            Some(assertion(&other_key, &agent, &issuer, "actor-3")),
        ),
        (
            "audience",
            Some(assertion(
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
    actor_token_assertion(Backend::Sqlite).await;
}

#[tokio::test]
async fn actor_token_assertion_postgres() {
    actor_token_assertion(Backend::Postgres).await;
}
