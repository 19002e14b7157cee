//! End to end with the `openidconnect` crate as relying party over real HTTP, on SQLite and on
//! PostgreSQL: discovery, code + PKCE with a browser-submitted login form, ID token validation
//! through JWKS, userinfo, refresh rotation, spent-refresh reuse, client credentials,
//! introspection, revocation, logout, and SSO for a second client.

use crate::common::*;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};

/// A server with alice and a web client, and the `openidconnect` relying party for it after
/// discovery.
struct Rp {
    s: Server,
    issuer: String,
    web: (String, String),
    http: reqwest::Client,
    meta: CoreProviderMetadata,
    client: RpClient,
}

type RpClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

async fn rp(backend: Backend) -> Rp {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    let web = s.create_web_client("default", &[]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Discovery.
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    assert_eq!(meta.issuer().as_str(), issuer);
    let client = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(web.0.clone()),
        Some(ClientSecret::new(web.1.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    Rp {
        s,
        issuer,
        web,
        http,
        meta,
        client,
    }
}

/// Code + PKCE with a browser-submitted login form, the ID token validated through JWKS,
/// userinfo, the access token introspected, refresh rotation, and a spent refresh token's
/// reuse revoking its family. One story: each step uses the tokens of the one before.
async fn code_flow_refresh_and_reuse(backend: Backend) {
    // `_s` keeps the server running.
    let Rp {
        s: _s,
        issuer,
        web,
        http,
        client,
        ..
    } = rp(backend).await;

    // Authorization code with PKCE; the browser submits the login and consent forms.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new();
    let loc = browser.authorize(&issuer, url.as_str(), "alice").await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(
        query_param(&loc, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&loc, "code").unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");

    // ID token verified through JWKS (RS256 default), with nonce and at_hash.
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("valid ID token");
    assert_eq!(
        *id_token.signing_alg().unwrap(),
        openidconnect::core::CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256
    );
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert!(claims.auth_time().is_some());
    let sub = claims.subject().to_string();

    // Userinfo.
    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    // The access token is an RFC 9068 JWT.
    let at = tokens.access_token().secret().clone();
    let header = jsonwebtoken::decode_header(&at).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let intro = introspect(&issuer, &web, &at).await;
    assert_eq!(intro["active"], true);
    for claim in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "jti",
        "iat",
        "exp",
        "auth_time",
        "acr",
        "amr",
    ] {
        assert!(
            intro.get(claim).is_some(),
            "introspection lacks {claim}: {intro}"
        );
    }
    assert_eq!(intro["sub"], sub.as_str());

    // Refresh with rotation: the new refresh token works, the old one is spent.
    let rt1 = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let rt2 = refreshed
        .refresh_token()
        .expect("rotated refresh token")
        .clone();
    assert_ne!(rt1.secret(), rt2.secret());
    let refreshed2 = client
        .exchange_refresh_token(&rt2)
        .unwrap()
        .request_async(&http)
        .await
        .expect("second refresh");
    let rt3 = refreshed2.refresh_token().unwrap().clone();
    let latest_at = refreshed2.access_token().secret().clone();
    assert_eq!(introspect(&issuer, &web, &latest_at).await["active"], true);

    // Presenting the spent rt1 again revokes the whole family: rt3 and the tokens from it die.
    let reuse = client
        .exchange_refresh_token(&rt1)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(reuse.is_err(), "spent refresh token accepted");
    let (status, body) = token(
        &issuer,
        &web,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt3.secret()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(
        introspect(&issuer, &web, &latest_at).await["active"],
        false,
        "access token of a revoked family"
    );
    let _ = RefreshToken::new(String::new());
}

/// Client credentials through the relying party library; revocation (RFC 7009) of an access
/// token, and of a refresh token, which revokes its grant.
async fn client_credentials_and_revocation(backend: Backend) {
    let Rp {
        s,
        issuer,
        web,
        http,
        meta,
        ..
    } = rp(backend).await;
    let browser = Browser::new();

    // Client credentials.
    let svc = s.create_service_client("default");
    let svc_client = CoreClient::from_provider_metadata(
        meta.clone(),
        ClientId::new(svc.0.clone()),
        Some(ClientSecret::new(svc.1.clone())),
    );
    let cc = svc_client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("api.read".into()))
        .request_async(&http)
        .await
        .expect("client credentials");
    assert!(cc.refresh_token().is_none());
    let cc_intro = introspect(&issuer, &svc, cc.access_token().secret()).await;
    assert_eq!(cc_intro["active"], true);
    assert_eq!(cc_intro["sub"], svc.0.as_str());
    assert_eq!(cc_intro["scope"], "api.read");

    // Revocation (RFC 7009) of an access token and of a refresh token.
    let (st, _) = post_auth(
        &format!("{issuer}/revoke"),
        &svc,
        &[("token", cc.access_token().secret())],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        introspect(&issuer, &svc, cc.access_token().secret()).await["active"],
        false
    );

    let fresh = code_flow_tokens(&s, &browser, "default", &web, "alice").await;
    let fresh_rt = fresh["refresh_token"].as_str().unwrap();
    let fresh_at = fresh["access_token"].as_str().unwrap();
    let (st, _) = post_auth(
        &format!("{issuer}/revoke"),
        &web,
        &[("token", fresh_rt), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(introspect(&issuer, &web, fresh_rt).await["active"], false);
    assert_eq!(
        introspect(&issuer, &web, fresh_at).await["active"],
        false,
        "revoking a refresh token revokes its grant"
    );
}

/// A second client gets SSO from alice's session (no password, `prompt=none` works); an
/// RP-initiated logout ends the session and revokes the grants made in it. One story: one
/// browser session throughout.
async fn sso_for_a_second_client_and_logout(backend: Backend) {
    let Rp { s, issuer, web, .. } = rp(backend).await;
    let browser = Browser::new();
    code_flow_tokens(&s, &browser, "default", &web, "alice").await;

    // A second client gets SSO: no password asked, and `prompt=none` works.
    let other = s.create_web_client("default", &[]);
    let (v2, c2) = pkce();
    let (status, body, loc) = browser
        .get(&auth_url(&issuer, &other.0, &c2, "openid", &[]))
        .await;
    assert_eq!(status, 200);
    assert!(
        !body.contains("name=\"password\""),
        "SSO should not ask for the password again"
    );
    assert!(
        body.contains("name=\"decision\""),
        "consent for the new client"
    );
    let (status, _, loc2) = browser.consent(&issuer, &body, "approve").await;
    assert_eq!(status, 303, "{loc:?}");
    let code2 = query_param(loc2.as_deref().unwrap(), "code").unwrap();
    let (st, t2) = token(
        &issuer,
        &other,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &v2),
        ],
    )
    .await;
    assert_eq!(st, 200, "{t2}");
    let (_, c3) = pkce();
    let (status, _, loc3) = browser
        .get(&auth_url(
            &issuer,
            &other.0,
            &c3,
            "openid",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(status, 303);
    assert!(
        query_param(loc3.as_deref().unwrap(), "code").is_some(),
        "prompt=none with a session and consent: {loc3:?}"
    );

    // RP-initiated logout with id_token_hint and a registered post_logout_redirect_uri.
    let id_token_str = t2["id_token"].as_str().unwrap();
    let logout = format!(
        "{issuer}/logout?id_token_hint={id_token_str}&post_logout_redirect_uri={}&state=bye-state",
        url::form_urlencoded::byte_serialize(b"https://app.example/bye").collect::<String>()
    );
    let (status, _, loc) = browser.get(&logout).await;
    assert_eq!(status, 303);
    assert_eq!(
        loc.as_deref(),
        Some("https://app.example/bye?state=bye-state")
    );
    // The session is gone: prompt=none now says login_required.
    let (_, c4) = pkce();
    let (_, _, loc4) = browser
        .get(&auth_url(
            &issuer,
            &other.0,
            &c4,
            "openid",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(
        query_param(loc4.as_deref().unwrap(), "error").as_deref(),
        Some("login_required")
    );
    // And the grants made in that session are revoked.
    assert_eq!(
        introspect(&issuer, &other, t2["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

#[tokio::test]
async fn code_flow_refresh_and_reuse_sqlite() {
    code_flow_refresh_and_reuse(Backend::Sqlite).await;
}

#[tokio::test]
async fn code_flow_refresh_and_reuse_postgres() {
    code_flow_refresh_and_reuse(Backend::Postgres).await;
}

#[tokio::test]
async fn client_credentials_and_revocation_sqlite() {
    client_credentials_and_revocation(Backend::Sqlite).await;
}

#[tokio::test]
async fn client_credentials_and_revocation_postgres() {
    client_credentials_and_revocation(Backend::Postgres).await;
}

#[tokio::test]
async fn sso_for_a_second_client_and_logout_sqlite() {
    sso_for_a_second_client_and_logout(Backend::Sqlite).await;
}

#[tokio::test]
async fn sso_for_a_second_client_and_logout_postgres() {
    sso_for_a_second_client_and_logout(Backend::Postgres).await;
}
