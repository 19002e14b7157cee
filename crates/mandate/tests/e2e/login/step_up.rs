//! Step-up authentication (RFC 9470) end to end: a resource server answers a token whose
//! sign-in is too weak or too old with `insufficient_user_authentication` and the `acr_values`
//! or `max_age` it needs; the client sends the person back to `/authorize` with them; Mandate
//! asks only for what is missing (a passkey; a fresh sign-in) and issues a token whose `acr`,
//! `amr` and `auth_time` say so, and an agent's delegated token carries the same truth.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

use super::passkeys::{
    account_sign_in, add_passkey, finish_flow, origin, passkey_options, post_assertion,
};
use crate::common::webauthn::UV;
use crate::common::*;

/// A resource server: `/balance` needs a phishing-resistant sign-in, `/transfer` one within
/// the last second too. It reads the (already issued, signed) token's claims; a real one
/// verifies them first (`mandate-verify`, or any JWT library with the JWKS).
async fn resource_server() -> String {
    async fn check(headers: HeaderMap, max_age: Option<i64>) -> axum::response::Response {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        let c = claims(&token);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let challenge = if c["acr"] != "phr" {
            Some(r#"Bearer error="insufficient_user_authentication", error_description="A phishing-resistant sign-in is required", acr_values="phr""#.to_string())
        } else if let Some(m) = max_age
            && now - c["auth_time"].as_i64().unwrap_or(0) > m
        {
            Some(format!(
                r#"Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="{m}""#
            ))
        } else {
            None
        };
        match challenge {
            Some(ch) => {
                (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, ch)]).into_response()
            }
            None => (StatusCode::OK, "ok").into_response(),
        }
    }
    let app = axum::Router::new()
        .route(
            "/balance",
            axum::routing::get(|h: HeaderMap| async move { check(h, None).await }),
        )
        .route(
            "/transfer",
            axum::routing::post(|h: HeaderMap| async move { check(h, Some(1)).await }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

/// Call the resource server; the RFC 9470 challenge's parameters when refused.
async fn call(
    rs: &str,
    method: &str,
    path: &str,
    token: &str,
) -> Result<(), Vec<(String, String)>> {
    let http = reqwest::Client::new();
    let r = match method {
        "POST" => http.post(format!("{rs}{path}")),
        _ => http.get(format!("{rs}{path}")),
    }
    .bearer_auth(token)
    .send()
    .await
    .unwrap();
    if r.status() == 200 {
        return Ok(());
    }
    assert_eq!(r.status(), 401);
    let ch = r.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_string();
    // `key="value"` pairs of the Bearer challenge.
    let params = ch
        .trim_start_matches("Bearer ")
        .split("\", ")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim_matches('"').to_string()))
        .collect();
    Err(params)
}

#[tokio::test]
async fn a_resource_servers_step_up_challenge_is_honoured_end_to_end() {
    let s = Server::start_localhost(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "kim");
    let scopes = ["openid", "profile", "email", "calendar.read"];
    let web = s.create_web_client(
        "default",
        &scopes
            .iter()
            .flat_map(|sc| ["--scope", sc])
            .collect::<Vec<_>>(),
    );
    let rs = resource_server().await;

    // Kim has a password and a passkey; she signs in to the app with her password.
    let b = Browser::new();
    account_sign_in(&b, &issuer, "kim").await;
    let (mut key, status, _) = add_passkey(&b, &issuer, &origin(&s), "Phone", UV).await;
    assert_eq!(status, 200);
    let tokens = code_flow_tokens(&s, &b, "default", &web, "kim").await;
    let first = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&first)["acr"], "urn:mandate:acr:pwd");

    // The resource server wants more; the client asks for exactly that.
    let challenge = call(&rs, "GET", "/balance", &first).await.unwrap_err();
    let get = |k: &str| {
        challenge
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("error").as_deref(),
        Some("insufficient_user_authentication")
    );
    let acr = get("acr_values").unwrap();
    let (verifier, pkce_challenge) = pkce();
    let (status, page, _) = b
        .get(&auth_url(
            &issuer,
            &web.0,
            &pkce_challenge,
            "openid profile email",
            &[("acr_values", &acr)],
        ))
        .await;
    assert_eq!(status, 200);
    // Only what is missing: a passkey, not the password again.
    assert!(!page.contains("name=\"password\""), "{page}");
    let (csrf, interaction, options) = passkey_options(&b, &issuer, &page).await;
    let answer = key.sign_in(&options, &origin(&s));
    let res = post_assertion(&b, &issuer, &csrf, &interaction, &options, &answer).await;
    let tokens = finish_flow(&s, &b, &verifier, &web, res).await;
    let stepped = tokens["access_token"].as_str().unwrap().to_string();
    let c = claims(&stepped);
    assert_eq!(c["acr"], "phr");
    assert_eq!(c["amr"], serde_json::json!(["pwd", "hwk", "user"]));
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        (id["acr"].clone(), id["auth_time"].clone()),
        (c["acr"].clone(), c["auth_time"].clone())
    );
    assert_eq!(call(&rs, "GET", "/balance", &stepped).await, Ok(()));

    // A transfer wants a sign-in within the last second: `max_age` makes the person sign in
    // again (with the passkey here) and the new token's auth_time is fresh.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let challenge = call(&rs, "POST", "/transfer", &stepped).await.unwrap_err();
    let max_age = challenge
        .iter()
        .find(|(k, _)| k == "max_age")
        .map(|(_, v)| v.clone())
        .expect("max_age in the challenge");
    let (verifier, pkce_challenge) = pkce();
    let (status, page, _) = b
        .get(&auth_url(
            &issuer,
            &web.0,
            &pkce_challenge,
            "openid profile email calendar.read",
            &[("acr_values", "phr"), ("max_age", &max_age)],
        ))
        .await;
    assert_eq!(
        status, 200,
        "a sign-in page, not a code: the session is too old"
    );
    let (csrf, interaction, options) = passkey_options(&b, &issuer, &page).await;
    let answer = key.sign_in(&options, &origin(&s));
    let res = post_assertion(&b, &issuer, &csrf, &interaction, &options, &answer).await;
    let tokens = finish_flow(&s, &b, &verifier, &web, res).await;
    let fresh = tokens["access_token"].as_str().unwrap().to_string();
    assert!(claims(&fresh)["auth_time"].as_i64() > c["auth_time"].as_i64());
    assert_eq!(call(&rs, "POST", "/transfer", &fresh).await, Ok(()));

    // An agent acting for Kim carries her authentication, not a stronger one of its own.
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Planner",
            "--owner",
            "kim",
            "--scope-ceiling",
            "calendar.read",
            "--generate-secret",
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
            "kim",
            &format!("--agent={}", agent.0),
            "--scope",
            "calendar.read",
            "--expires-in",
            "600",
        ],
        None,
    );
    let (status, delegated) = token(
        &issuer,
        &agent,
        &[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &fresh),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("scope", "calendar.read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{delegated}");
    let d: Value = claims(delegated["access_token"].as_str().unwrap());
    let f = claims(&fresh);
    assert_eq!(d["act"]["sub"], agent.0.as_str());
    assert_eq!(
        (d["acr"].clone(), d["amr"].clone(), d["auth_time"].clone()),
        (f["acr"].clone(), f["amr"].clone(), f["auth_time"].clone())
    );
}
