//! Black-box ports of OIDCC Basic/Config conformance modules (OIDC-CONFORMANCE-CHECKLIST.md §1–2)
//! that the other end-to-end files do not already cover. Every request carries S256 PKCE (the
//! checklist's decision). Each test is named after its suite module.

mod common;

use common::*;
use serde_json::Value;

struct Rp {
    s: Server,
    issuer: String,
    client: (String, String),
    b: Browser,
}

async fn rp() -> Rp {
    let s = Server::start(Backend::Sqlite).await;
    s.create_user("default", "buffy");
    let client = s.create_web_client("default", &[]);
    Rp {
        issuer: s.issuer("default"),
        client,
        s,
        b: Browser::new(),
    }
}

fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

impl Rp {
    /// Authorize (logging in / consenting if shown) with extra parameters, redeem, and run the
    /// checks the suite applies to every flow. Returns the token response.
    async fn flow(&self, scope: &str, extra: &[(&str, &str)]) -> Value {
        let (verifier, challenge) = pkce();
        let loc = self
            .b
            .authorize(
                &self.issuer,
                &auth_url(&self.issuer, &self.client.0, &challenge, scope, extra),
                "buffy",
            )
            .await;
        self.redeem(&loc, &verifier).await
    }

    async fn redeem(&self, loc: &str, verifier: &str) -> Value {
        assert_eq!(query_param(loc, "state").as_deref(), Some("st-123"));
        assert_eq!(
            query_param(loc, "iss").as_deref(),
            Some(self.issuer.as_str())
        );
        let code = query_param(loc, "code").expect("code");
        let (st, t) = token(
            &self.issuer,
            &self.client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
        assert_eq!(st, 200, "{t}");
        assert_eq!(t["token_type"], "Bearer");
        assert!(t["expires_in"].as_i64().unwrap() > 0);
        if let Some(id) = t["id_token"].as_str() {
            let c = jwt_claims(id);
            assert_eq!(c["iss"], self.issuer.as_str());
            assert_eq!(c["aud"], self.client.0.as_str());
            assert_eq!(c["nonce"], "n-456");
            assert!(c["exp"].as_i64() > c["iat"].as_i64());
            assert!(c["sub"].is_string() && c["acr"].is_string());
        }
        let r = reqwest::Client::new()
            .get(format!("{}/userinfo", self.issuer))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        t
    }
}

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    let r = rp().await;
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", r.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], r.issuer.as_str());
    let list = |k: &str| {
        d[k].as_array()
            .unwrap_or_else(|| panic!("{k}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(list("response_types_supported").contains(&"code".into()));
    assert!(list("subject_types_supported").contains(&"public".into()));
    assert!(list("id_token_signing_alg_values_supported").contains(&"RS256".into()));
    assert!(
        !list("id_token_signing_alg_values_supported").contains(&"none".into()),
        "no unsigned ID tokens"
    );
    assert_eq!(
        list("code_challenge_methods_supported"),
        vec!["S256".to_string()]
    );
    assert!(list("scopes_supported").contains(&"openid".into()));
    assert!(!list("grant_types_supported").is_empty());
    assert!(
        !list("grant_types_supported")
            .iter()
            .any(|g| g == "implicit" || g == "password")
    );
    let jwks: Value = reqwest::get(d["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let mut unique = kids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(kids.len(), unique.len(), "every key has its own kid");
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let r = rp().await;
    let (_, c) = pkce();
    let url =
        auth_url(&r.issuer, &r.client.0, &c, "openid", &[]).replace("response_type=code&", "");
    let (status, _, loc) = r.b.get(&url).await;
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    assert!(query_param(&loc, "code").is_none());
}

#[tokio::test]
async fn oidcc_scopes_display_locales_acr_and_unknown_parameters() {
    // oidcc-scope-{profile,email,address,phone,all}, oidcc-display-{page,popup},
    // oidcc-claims-locales, oidcc-ui-locales, oidcc-login-hint,
    // oidcc-ensure-request-with-acr-values-succeeds, -unknown-parameter-succeeds,
    // -without-nonce-succeeds-for-code-flow, oidcc-claims-essential.
    let r = rp().await;
    let t = r
        .flow("openid profile email address phone", &[("display", "page")])
        .await;
    let info: Value = reqwest::Client::new()
        .get(format!("{}/userinfo", r.issuer))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info["sub"],
        jwt_claims(t["id_token"].as_str().unwrap())["sub"]
    );
    assert!(info["updated_at"].is_i64(), "updated_at numeric");
    assert_eq!(info["email"], "buffy@example.com");
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert!(
        id.get("name").is_none() && id.get("email").is_none(),
        "no unrequested claims in the ID token"
    );
    for extra in [
        vec![("display", "popup")],
        vec![("claims_locales", "se")],
        vec![("ui_locales", "se")],
        vec![("login_hint", "buffy@127.0.0.1")],
        vec![("acr_values", "1 2")],
        vec![("extra_param", "foobar")],
        vec![("claims", r#"{"userinfo":{"name":{"essential":true}}}"#)],
    ] {
        r.flow("openid", &extra).await;
    }
    // Without nonce: still a code.
    let (_, c) = pkce();
    let url = auth_url(&r.issuer, &r.client.0, &c, "openid", &[]).replace("&nonce=n-456", "");
    let (status, _, loc) = r.b.get(&url).await;
    assert_eq!(status, 303);
    assert!(query_param(&loc.unwrap(), "code").is_some());
}

#[tokio::test]
async fn oidcc_alternate_happy_flow() {
    let r = rp().await;
    r.flow("openid email", &[]).await;
    let (verifier, c) = pkce();
    // Same request, scopes reversed and parameters in another order.
    let mut u = url::Url::parse(&format!("{}/authorize", r.issuer)).unwrap();
    u.query_pairs_mut()
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "st-123")
        .append_pair("scope", "email openid")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &c)
        .append_pair("client_id", &r.client.0)
        .append_pair("response_type", "code");
    let loc = r.b.authorize(&r.issuer, u.as_str(), "buffy").await;
    r.redeem(&loc, &verifier).await;
}

#[tokio::test]
async fn oidcc_prompt_login_and_max_age() {
    let r = rp().await;
    let first = jwt_claims(r.flow("openid", &[]).await["id_token"].as_str().unwrap());
    // oidcc-prompt-none-logged-in: silent, same sub and auth_time.
    let silent = jwt_claims(
        r.flow("openid", &[("prompt", "none")]).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(
        (&silent["sub"], &silent["auth_time"]),
        (&first["sub"], &first["auth_time"])
    );
    // oidcc-max-age-10000: silent, same auth_time.
    let ma = jwt_claims(
        r.flow("openid", &[("max_age", "10000")]).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(ma["auth_time"], first["auth_time"]);
    // oidcc-id-token-hint: prompt=none with the first ID token as hint.
    let t = r.flow("openid", &[]).await;
    let hinted = jwt_claims(
        r.flow(
            "openid",
            &[
                ("prompt", "none"),
                ("id_token_hint", t["id_token"].as_str().unwrap()),
            ],
        )
        .await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(hinted["sub"], first["sub"]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // oidcc-max-age-1: the login form again, then a later auth_time.
    let (_, c) = pkce();
    let (status, body, _) =
        r.b.get(&auth_url(
            &r.issuer,
            &r.client.0,
            &c,
            "openid",
            &[("max_age", "1")],
        ))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("name=\"password\""),
        "max_age=1 forces a new login"
    );
    let again = jwt_claims(
        r.flow("openid", &[("max_age", "1")]).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert!(again["auth_time"].as_i64() > first["auth_time"].as_i64());
    // oidcc-prompt-login: the form again even with a fresh session.
    let (_, c) = pkce();
    let (status, body, _) =
        r.b.get(&auth_url(
            &r.issuer,
            &r.client.0,
            &c,
            "openid",
            &[("prompt", "login")],
        ))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"password\""));
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let r = rp().await;
    let state = "s".repeat(128);
    let (_, c) = pkce();
    let url = auth_url(&r.issuer, &r.client.0, &c, "openid", &[("prompt", "none")])
        .replace("state=st-123", &format!("state={state}"));
    let (status, _, loc) = r.b.get(&url).await;
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&loc, "state").as_deref(), Some(state.as_str()));
    assert!(query_param(&loc, "code").is_none());
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let r = rp().await;
    let (verifier, c) = pkce();
    let url = auth_url(&r.issuer, &r.client.0, &c, "openid", &[]);
    let query = url.split_once('?').unwrap().1.to_string();
    let resp =
        r.b.http
            .post(format!("{}/authorize", r.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(query)
            .send()
            .await
            .unwrap();
    let html = resp.text().await.unwrap();
    let (_, body, _) = r.b.login(&r.issuer, &html, "buffy", PASSWORD).await;
    let (status, _, loc) = r.b.consent(&r.issuer, &body, "approve").await;
    assert_eq!(status, 303);
    r.redeem(&loc.unwrap(), &verifier).await;
}

#[tokio::test]
async fn oidcc_request_objects_are_refused_after_redirect_validation() {
    // oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported,
    // oidcc-ensure-request-object-with-redirect-uri, oidcc-request-uri-unsigned-….
    let r = rp().await;
    let (_, c) = pkce();
    let req = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.";
    let (status, _, loc) =
        r.b.get(&auth_url(
            &r.issuer,
            &r.client.0,
            &c,
            "openid",
            &[("request", req)],
        ))
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("request_not_supported")
    );
    let (_, _, loc) =
        r.b.get(&auth_url(
            &r.issuer,
            &r.client.0,
            &c,
            "openid",
            &[("request_uri", "https://rp.example/req")],
        ))
        .await;
    assert_eq!(
        query_param(&loc.unwrap(), "error").as_deref(),
        Some("request_uri_not_supported")
    );
    // A bad outer redirect_uri is caught first: error page, no redirect at all.
    let bad = auth_url(&r.issuer, &r.client.0, &c, "openid", &[("request", req)])
        .replace("callback", "callback-evil");
    let (status, _, loc) = r.b.get(&bad).await;
    assert_eq!((status, loc), (400, None));
}

#[tokio::test]
async fn oidcc_redirect_uri_query_rules() {
    // oidcc-redirect-uri-query-OK / -mismatch / -added, oidcc-ensure-redirect-uri-in-authorization-request.
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "buffy");
    let with_query = "https://app.example/cb?foo=bar";
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Q",
            "--redirect-uri",
            with_query,
            "--redirect-uri",
            "https://app.example/other",
        ],
        None,
    );
    let id = v["client_id"].as_str().unwrap();
    let (_, c) = pkce();
    let enc = |u: &str| url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>();
    let base = auth_url(&issuer, id, &c, "openid", &[]);
    let with = |uri: &str| base.replace(&enc(REDIRECT), &enc(uri));
    let b = Browser::new();
    let loc = b.authorize(&issuer, &with(with_query), "buffy").await;
    assert!(
        loc.starts_with("https://app.example/cb?foo=bar&code="),
        "registered query kept: {loc}"
    );
    for bad in [
        with("https://app.example/cb?foo=baz"),
        with("https://app.example/other?x=1"),
    ] {
        let (status, _, loc) = b.get(&bad).await;
        assert_eq!((status, loc), (400, None), "{bad}");
    }
    let missing = base.replace(&format!("&redirect_uri={}", enc(REDIRECT)), "");
    let (status, _, loc) = b.get(&missing).await;
    assert_eq!(
        (status, loc),
        (400, None),
        "two registered URIs and none sent"
    );
}

#[tokio::test]
async fn oidcc_userinfo_get_post_header_post_body() {
    let r = rp().await;
    let t = r.flow("openid email", &[]).await;
    let at = t["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/userinfo", r.issuer);
    let a: Value = http
        .get(&url)
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = http.post(&url).bearer_auth(at).send().await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let b: Value = resp.json().await.unwrap();
    let c: Value = http
        .post(&url)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    // Never from the query string.
    assert_eq!(
        http.get(format!("{url}?access_token={at}"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn oidcc_codereuse() {
    let r = rp().await;
    let (verifier, c) = pkce();
    let loc =
        r.b.authorize(
            &r.issuer,
            &auth_url(&r.issuer, &r.client.0, &c, "openid", &[]),
            "buffy",
        )
        .await;
    let t = r.redeem(&loc, &verifier).await;
    let code = query_param(&loc, "code").unwrap();
    let (st, body) = token(
        &r.issuer,
        &r.client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    // oidcc-codereuse-30seconds: the first access token no longer works at userinfo.
    let resp = reqwest::Client::new()
        .get(format!("{}/userinfo", r.issuer))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let r = rp().await;
    let t = r
        .flow("openid offline_access", &[("prompt", "consent")])
        .await;
    let rt = t["refresh_token"].as_str().unwrap();
    assert!(
        rt.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // Another client presenting it: invalid_grant, and the token is not spent by that.
    let other = r.s.create_web_client("default", &[]);
    let (st, body) = token(
        &r.issuer,
        &other,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    let resp = reqwest::Client::new()
        .post(format!("{}/token", r.issuer))
        .basic_auth(&r.client.0, Some(&r.client.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let n: Value = resp.json().await.unwrap();
    assert_eq!(n["token_type"], "Bearer");
    assert_eq!(n["scope"], "openid");
    let (a, b) = (
        jwt_claims(t["id_token"].as_str().unwrap()),
        jwt_claims(n["id_token"].as_str().unwrap()),
    );
    assert_eq!(
        (&a["iss"], &a["sub"], &a["aud"]),
        (&b["iss"], &b["sub"], &b["aud"])
    );
}
