//! Key rotation: tokens signed before `mandate keys rotate` still verify through JWKS until they
//! expire; new tokens use the new keys.

use crate::common::*;
use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

async fn jwks(issuer: &str) -> JwkSet {
    reqwest::get(format!("{issuer}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn verify_with(set: &JwkSet, token: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published in JWKS");
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .expect("signature verifies")
        .claims
}

async fn rotation(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "erin");
    let web = s.create_web_client("default", &[]);
    let svc = s.create_service_client("default");
    let before = jwks(&issuer).await;
    for k in &before.keys {
        assert!(k.common.key_id.is_some(), "every key has a kid");
    }
    let old_cc = token(&issuer, &svc, &[("grant_type", "client_credentials")])
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let old_oidc = code_flow_tokens(&s, &Browser::new(), "default", &web, "erin").await;
    let old_kid = jsonwebtoken::decode_header(&old_cc).unwrap().kid.unwrap();

    let out = s.cli(&["keys", "rotate", "--tenant", "default"], None);
    assert_eq!(out["new_kids"].as_array().unwrap().len(), 4);

    let after = jwks(&issuer).await;
    assert_eq!(
        after.keys.len(),
        before.keys.len() * 2,
        "old keys stay published"
    );
    verify_with(&after, &old_cc, &issuer);
    verify_with(&after, old_oidc["id_token"].as_str().unwrap(), &issuer);
    assert_eq!(
        introspect(&issuer, &svc, &old_cc).await["active"],
        true,
        "old token still active"
    );

    let new_cc = token(&issuer, &svc, &[("grant_type", "client_credentials")])
        .await
        .1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let new_kid = jsonwebtoken::decode_header(&new_cc).unwrap().kid.unwrap();
    assert_ne!(new_kid, old_kid, "new tokens are signed with the new key");
    verify_with(&after, &new_cc, &issuer);
    let new_oidc = code_flow_tokens(&s, &Browser::new(), "default", &web, "erin").await;
    verify_with(&after, new_oidc["id_token"].as_str().unwrap(), &issuer);
}

#[tokio::test]
async fn rotation_sqlite() {
    rotation(Backend::Sqlite).await;
}

#[tokio::test]
async fn rotation_postgres() {
    rotation(Backend::Postgres).await;
}
