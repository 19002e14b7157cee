//! Bad requests get the right error and change nothing in the store.

use crate::common::*;
use serde_json::{Value, json};

fn assert_err(r: &(u16, Value), status: u16, error: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["error"], error, "{}", r.1);
}

/// Run `f` and assert the store fingerprint is the same afterwards.
macro_rules! unchanged {
    ($s:expr, $body:expr) => {{
        let before = snapshot(&$s).await;
        let out = $body;
        assert_eq!(
            before,
            snapshot(&$s).await,
            "store changed by a rejected request"
        );
        out
    }};
}

/// A server with bob, a web client, and a browser signed in as bob holding a code issued
/// with a PKCE challenge, ready to redeem.
struct CodeIssued {
    s: Server,
    issuer: String,
    web: (String, String),
    b: Browser,
    code: String,
    verifier: String,
    challenge: String,
}

impl CodeIssued {
    async fn start(backend: Backend) -> CodeIssued {
        let s = Server::start(backend).await;
        let issuer = s.issuer("default");
        s.create_user("default", "bob");
        let web = s.create_web_client("default", &[]);
        let b = Browser::new();

        // A code issued with a challenge, ready to redeem.
        let (verifier, challenge) = pkce();
        let loc = b
            .authorize(
                &issuer,
                &auth_url(&issuer, &web.0, &challenge, "openid", &[]),
                "bob",
            )
            .await;
        let code = query_param(&loc, "code").unwrap();
        CodeIssued {
            s,
            issuer,
            web,
            b,
            code,
            verifier,
            challenge,
        }
    }

    /// Redeem `code` at the token endpoint as the web client.
    async fn redeem(&self, code: String, verifier: String, redirect: &str) -> (u16, Value) {
        token(
            &self.issuer,
            &self.web,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
        )
        .await
    }
}

/// A code redeemed with the wrong verifier, none, the wrong redirect URI or by another client
/// is invalid_grant and spends nothing; it then works once, and its reuse revokes what it
/// issued. One story: the same code throughout.
async fn code_redemption_refusals(backend: Backend) {
    let f = CodeIssued::start(backend).await;
    let CodeIssued {
        s,
        issuer,
        web,
        code,
        verifier,
        ..
    } = &f;
    // Wrong verifier, missing verifier, wrong redirect URI, wrong client: invalid_grant, nothing spent.
    let (wrong, _) = pkce();
    unchanged!(
        s,
        assert_err(
            &f.redeem(code.clone(), wrong, REDIRECT).await,
            400,
            "invalid_grant"
        )
    );
    let r = unchanged!(
        s,
        token(
            issuer,
            web,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT)
            ]
        )
        .await
    );
    assert_err(&r, 400, "invalid_grant");
    unchanged!(
        s,
        assert_err(
            &f.redeem(code.clone(), verifier.clone(), "https://app.example/other")
                .await,
            400,
            "invalid_grant"
        )
    );
    let other = s.create_web_client("default", &[]);
    let r = unchanged!(
        s,
        token(
            issuer,
            &other,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier)
            ]
        )
        .await
    );
    assert_err(&r, 400, "invalid_grant");

    // The code still works once, then reuse fails and revokes what it issued.
    let first = f.redeem(code.clone(), verifier.clone(), REDIRECT).await;
    assert_eq!(first.0, 200, "{}", first.1);
    let at = first.1["access_token"].as_str().unwrap().to_string();
    let rt = first.1["refresh_token"].as_str().unwrap().to_string();
    assert_err(
        &f.redeem(code.clone(), verifier.clone(), REDIRECT).await,
        400,
        "invalid_grant",
    );
    assert_eq!(
        introspect(issuer, web, &at).await["active"],
        false,
        "reused code must revoke its access token"
    );
    assert_err(
        &token(
            issuer,
            web,
            &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        )
        .await,
        400,
        "invalid_grant",
    );
}

/// Bad authorization requests: missing or plain PKCE and other response types are error
/// redirects without a code; an unregistered redirect URI, an unknown client or a repeated
/// parameter is an error page, never a redirect. Nothing changes.
async fn authorize_refusals(backend: Backend) {
    let f = CodeIssued::start(backend).await;
    let CodeIssued {
        s,
        issuer,
        web,
        b,
        challenge,
        ..
    } = &f;
    // Missing PKCE or plain PKCE at authorize: error redirect, no code.
    let mut no_pkce = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    no_pkce.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", &web.0),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
    ]);
    let (status, _, loc) = unchanged!(s, b.get(no_pkce.as_str()).await);
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));
    assert!(query_param(&loc, "code").is_none());
    let plain = auth_url(issuer, &web.0, challenge, "openid", &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let (_, _, loc) = b.get(&plain).await;
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    // Response types other than code.
    let implicit = auth_url(issuer, &web.0, challenge, "openid", &[])
        .replace("response_type=code", "response_type=token");
    let (_, _, loc) = b.get(&implicit).await;
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("unsupported_response_type")
    );

    // Redirect URI not registered, unknown client, repeated parameter: error page, never a redirect.
    for bad in [
        auth_url(issuer, &web.0, challenge, "openid", &[]).replace("callback", "callback%2Fevil"),
        auth_url(issuer, "no-such-client", challenge, "openid", &[]),
        format!(
            "{}&client_id={}",
            auth_url(issuer, &web.0, challenge, "openid", &[]),
            web.0
        ),
        format!(
            "{issuer}/authorize?client_id={}&scope=openid&response_type=code",
            web.0
        ),
    ] {
        let (status, body, loc) = unchanged!(s, b.get(&bad).await);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(loc.is_none(), "must not redirect: {bad}");
        assert!(body.contains("invalid_"), "{body}");
    }
}

/// Bad token requests: unknown clients and wrong secrets (401 with a challenge), malformed
/// and oversized input, unsupported grant types, a bad bearer, an unknown tenant, and a
/// service client's invalid scope, grant and resource.
async fn token_endpoint_refusals(backend: Backend) {
    let f = CodeIssued::start(backend).await;
    let CodeIssued {
        s,
        issuer,
        web,
        verifier,
        ..
    } = &f;
    // Unknown client and wrong secret at the token endpoint: 401 invalid_client + challenge.
    let ghost = ("ghost".to_string(), "secret".to_string());
    let r = unchanged!(
        s,
        token(issuer, &ghost, &[("grant_type", "client_credentials")]).await
    );
    assert_err(&r, 401, "invalid_client");
    let wrong_secret = (web.0.clone(), "not-the-secret".to_string());
    let resp = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(&wrong_secret.0, Some(&wrong_secret.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );

    // Malformed and oversized input.
    let http = reqwest::Client::new();
    let url = format!("{issuer}/token");
    let r = unchanged!(
        s,
        http.post(&url)
            .basic_auth(&web.0, Some(&web.1))
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap()
    );
    assert_eq!(
        r.status(),
        400,
        "form content type required (RFC 6749 §5.2)"
    );
    let r = token(
        issuer,
        web,
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_err(&r, 400, "invalid_request");
    assert_err(
        &token(
            issuer,
            web,
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", PASSWORD),
            ],
        )
        .await,
        400,
        "unsupported_grant_type",
    );
    assert_err(
        &token(issuer, web, &[("grant_type", "implicit")]).await,
        400,
        "unsupported_grant_type",
    );
    assert_err(&token(issuer, web, &[]).await, 400, "invalid_request");
    let huge = "a".repeat(100_000);
    let r = unchanged!(
        s,
        http.post(&url)
            .basic_auth(&web.0, Some(&web.1))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", huge.as_str())
            ])
            .send()
            .await
            .unwrap()
    );
    assert_eq!(r.status(), 413);
    let long_code = "a".repeat(5000);
    assert_err(
        &f.redeem(long_code, verifier.clone(), REDIRECT).await,
        400,
        "invalid_grant",
    );
    let r = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .basic_auth(&web.0, Some(&web.1))
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&url)
        .header("authorization", "Basic !!!notbase64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{issuer}/userinfo"))
        .bearer_auth("garbage.token.here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    let r = http
        .get(format!(
            "{}/t/no-such-tenant/.well-known/openid-configuration",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let svc = s.create_service_client("default");
    assert_err(
        &token(
            issuer,
            &svc,
            &[("grant_type", "client_credentials"), ("scope", "api.admin")],
        )
        .await,
        400,
        "invalid_scope",
    );
    assert_err(
        &token(
            issuer,
            &svc,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await,
        400,
        "unauthorized_client",
    );
    assert_err(
        &token(
            issuer,
            &svc,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "not a uri"),
            ],
        )
        .await,
        400,
        "invalid_target",
    );
}

/// RFC 6749 §5.2 at every client-authenticated endpoint: an `Authorization` header in any
/// malformed form is a 401 `invalid_client` with a `WWW-Authenticate` challenge (never ignored);
/// two of them, or a JSON body, are 400 `invalid_request`. Nothing changes.
async fn client_auth_header_forms(backend: Backend) {
    use reqwest::header::{AUTHORIZATION, HeaderValue};
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let web = s.create_web_client("default", &[]);
    let service = s.create_service_client("default");
    let basic = |c: &(String, String)| {
        use base64::Engine;
        let raw = format!("{}:{}", c.0, c.1);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    let http = reqwest::Client::new();
    let malformed: Vec<HeaderValue> = vec![
        HeaderValue::from_static("Basic "),
        HeaderValue::from_static("Basic"),
        HeaderValue::from_static("Basic Og=="),
        HeaderValue::from_str(&basic(&service).replace("Basic ", "")).unwrap(),
        HeaderValue::from_static("Digest username=\"x\""),
        HeaderValue::from_str(&basic(&service).replace("Basic", "Bearer")).unwrap(),
        HeaderValue::from_bytes(b"Basic \xc3\xa4\xc3\xb6").unwrap(),
    ];
    for path in ["/token", "/introspect", "/revoke", "/bc-authorize"] {
        let url = format!("{issuer}{path}");
        for value in &malformed {
            let r = unchanged!(
                s,
                http.post(&url)
                    .header(AUTHORIZATION, value.clone())
                    .form(&[("grant_type", "client_credentials"), ("token", "x")])
                    .send()
                    .await
                    .unwrap()
            );
            assert_eq!(r.status(), 401, "{path} {value:?}");
            let challenge = r
                .headers()
                .get("www-authenticate")
                .unwrap_or_else(|| panic!("no challenge: {path} {value:?}"))
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.starts_with("Basic"), "{challenge}");
            assert_eq!(r.headers()["cache-control"], "no-store");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "invalid_client", "{path} {value:?}: {v}");
        }
        // Two Authorization headers: which would count? Neither.
        let r = unchanged!(
            s,
            http.post(&url)
                .header(AUTHORIZATION, basic(&service))
                .header(AUTHORIZATION, basic(&web))
                .form(&[("grant_type", "client_credentials"), ("token", "x")])
                .send()
                .await
                .unwrap()
        );
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{path}: {v}");
        // A JSON body is a malformed request, not an unsupported media type.
        let r = unchanged!(
            s,
            http.post(&url)
                .header(AUTHORIZATION, basic(&service))
                .json(&json!({"grant_type": "client_credentials", "token": "x"}))
                .send()
                .await
                .unwrap()
        );
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{path}: {v}");
    }
    // A well-formed Basic header still works, and a wrong secret is challenged.
    let r = token(&issuer, &service, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = http
        .post(format!("{issuer}/introspect"))
        .header(AUTHORIZATION, basic(&(service.0.clone(), "wrong".into())))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

/// A redirect URI that could not be redirected to as registered (control characters,
/// whitespace, non-ASCII), a relative one or one with a fragment is refused at registration,
/// by the CLI and by the admin API, with a clear error; nothing is stored.
async fn redirect_uri_registration(backend: Backend) {
    let s = Server::start(backend).await;
    let bad = [
        "https://app.example/cb\n",
        "https://app.example/c\rb",
        "https://app.example/c\tb",
        "https://app.example/c b",
        "https://app.example/cb\u{7}",
        " https://app.example/cb",
        "https://äpp.example/cb",
        "/callback",
        "app.example/callback",
        "https://app.example/cb#frag",
        "javascript:alert(1)",
    ];
    for uri in bad {
        let before = snapshot(&s).await;
        let (ok, _, err) = s.cli_raw(
            &[
                "client",
                "create",
                "--tenant",
                "default",
                "--name",
                "Bad",
                "--redirect-uri",
                uri,
            ],
            None,
        );
        assert!(!ok, "{uri:?} was registered");
        assert!(err.contains("redirect URI"), "{uri:?}: {err}");
        assert_eq!(before, snapshot(&s).await, "{uri:?}");
    }
    // The admin API's agent registration goes through the same rule.
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
    let admin = (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
    let (_, t) = token(
        &s.issuer("default"),
        &admin,
        &[("grant_type", "client_credentials")],
    )
    .await;
    let at = t["access_token"].as_str().unwrap();
    let url = format!("{}/admin/v1/tenants/default/agents", s.base);
    for uri in [
        "https://app.example/cb\u{1b}[31m",
        "https://app.example/cb#x",
    ] {
        let r = unchanged!(
            s,
            reqwest::Client::new()
                .post(&url)
                .bearer_auth(at)
                .json(&json!({"name": "Agent", "tenant_owned": true,
                    "scope_ceiling": ["calendar.read"], "generate_secret": true,
                    "redirect_uris": [uri]}))
                .send()
                .await
                .unwrap()
        );
        assert_eq!(r.status(), 400, "{uri:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("redirect URI"),
            "{v}"
        );
    }
    // A good one is fine.
    s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Good",
            "--redirect-uri",
            "https://app.example/cb?x=1",
        ],
        None,
    );
}

#[tokio::test]
async fn client_auth_header_forms_sqlite() {
    client_auth_header_forms(Backend::Sqlite).await;
}

#[tokio::test]
async fn client_auth_header_forms_postgres() {
    client_auth_header_forms(Backend::Postgres).await;
}

#[tokio::test]
async fn redirect_uri_registration_sqlite() {
    redirect_uri_registration(Backend::Sqlite).await;
}

#[tokio::test]
async fn redirect_uri_registration_postgres() {
    redirect_uri_registration(Backend::Postgres).await;
}

#[tokio::test]
async fn code_redemption_refusals_sqlite() {
    code_redemption_refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn code_redemption_refusals_postgres() {
    code_redemption_refusals(Backend::Postgres).await;
}

#[tokio::test]
async fn authorize_refusals_sqlite() {
    authorize_refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn authorize_refusals_postgres() {
    authorize_refusals(Backend::Postgres).await;
}

#[tokio::test]
async fn token_endpoint_refusals_sqlite() {
    token_endpoint_refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn token_endpoint_refusals_postgres() {
    token_endpoint_refusals(Backend::Postgres).await;
}

/// An expired code is refused, and nothing changes.
#[tokio::test]
async fn expired_code() {
    let s = Server::start_with(Backend::Sqlite, &[("MANDATE_CODE_TTL", "1")]).await;
    let issuer = s.issuer("default");
    s.create_user("default", "carol");
    let web = s.create_web_client("default", &[]);
    let (verifier, challenge) = pkce();
    let loc = Browser::new()
        .authorize(
            &issuer,
            &auth_url(&issuer, &web.0, &challenge, "openid", &[]),
            "carol",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = unchanged!(
        s,
        token(
            &issuer,
            &web,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier)
            ]
        )
        .await
    );
    assert_err(&r, 400, "invalid_grant");
}

/// private_key_jwt (RFC 7523): a good assertion works once; its replay is refused.
#[tokio::test]
async fn private_key_jwt_replay() {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = kp.to_pkcs8v1().unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65]), "kid": "k1", "alg": "ES256"});
    let path = s.data_dir.with_extension("jwks.json");
    std::fs::write(&path, json!({"keys": [jwk]}).to_string()).unwrap();
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Signer",
            "--grant-type",
            "client_credentials",
            "--scope",
            "api.read",
            "--jwks-file",
            path.to_str().unwrap(),
        ],
        None,
    );
    let client_id = v["client_id"].as_str().unwrap().to_string();
    assert!(v["client_secret"].is_null());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |aud: &str, jti: &str| {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("k1".into());
        let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": jti, "iat": now, "exp": now + 60});
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .unwrap()
    };
    let send = |assertion: String| {
        let url = format!("{issuer}/token");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let a = sign(&issuer, "jti-1");
    let ok = send(a.clone()).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let replay = unchanged!(s, send(a).await);
    assert_err(&replay, 401, "invalid_client");
    // The token endpoint URL is also an accepted audience; another URL is not.
    assert_eq!(send(sign(&format!("{issuer}/token"), "jti-2")).await.0, 200);
    assert_err(
        &send(sign(&format!("{issuer}/userinfo"), "jti-3")).await,
        401,
        "invalid_client",
    );
    // A forged signature (other key) is refused.
    let other = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .unwrap()
        .to_pkcs8v1()
        .unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("k1".into());
    let forged = jsonwebtoken::encode(&h, &json!({"iss": client_id, "sub": client_id, "aud": issuer, "jti": "jti-4", "exp": now + 60}), &jsonwebtoken::EncodingKey::from_ec_der(other.as_ref())).unwrap();
    assert_err(&send(forged).await, 401, "invalid_client");
}
