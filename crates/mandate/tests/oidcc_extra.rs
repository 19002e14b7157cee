//! OIDCC modules beyond the Basic plan's per-module ports in `oidcc_basic.rs`: the Dynamic
//! plan's redirect-URI query rules (which need no DCR to apply) and userinfo's refusal of a
//! token in the query string. Every request carries S256 PKCE.

mod common;

use common::*;
use serde_json::Value;

struct Rp {
    _server: Server,
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
        _server: s,
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
