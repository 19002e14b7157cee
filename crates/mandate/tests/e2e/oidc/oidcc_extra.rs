//! OIDCC modules beyond the Basic plan's per-module ports in `oidc/oidcc_basic.rs`: the Dynamic
//! plan's redirect-URI query rules (which need no DCR to apply) and userinfo's refusal of a
//! token in the query string; beyond them, what client libraries check: assertion time claims,
//! `no-store` on every response with a secret, loopback port rules, discovery that matches
//! the endpoints. Every request carries S256 PKCE.

use crate::common::*;
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
            let c = claims(id);
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

/// RFC 7523 §3: a client assertion is not accepted before its `nbf` nor when issued (`iat`) in
/// the future, beyond the clock skew; a malformed `iat` is refused. Within the skew is fine.
async fn assertion_time_claims(backend: Backend) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use serde_json::json;
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pkcs8 = kp.to_pkcs8v1().unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]), "y": b64(&pt[33..65]), "kid": "k1"});
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
    let id = v["client_id"].as_str().unwrap().to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let send = |extra: Value, jti: &str| {
        let mut claims = json!({"iss": id, "sub": id, "aud": issuer, "jti": jti, "exp": now + 120});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some("k1".into());
        let assertion = jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .unwrap();
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
    for (extra, jti) in [
        (json!({"nbf": now + 600}), "nbf-future"),
        (json!({"nbf": now + 100, "iat": now}), "nbf-future-2"),
        (json!({"iat": now + 600}), "iat-future"),
        (json!({"iat": "yesterday"}), "iat-string"),
        (json!({"nbf": "soon"}), "nbf-string"),
    ] {
        let (status, v) = send(extra.clone(), jti).await;
        assert_eq!(
            (status, v["error"].as_str()),
            (401, Some("invalid_client")),
            "{extra}: {v}"
        );
    }
    for (extra, jti) in [
        (json!({"nbf": now - 30, "iat": now - 30}), "past"),
        (json!({"nbf": now + 5, "iat": now + 5}), "within-skew"),
        (json!({"iat": now as f64 + 0.5}), "fractional-iat"),
    ] {
        let (status, v) = send(extra.clone(), jti).await;
        assert_eq!(status, 200, "{extra}: {v}");
    }
}

/// Responses that carry tokens, claims or secrets are never cached: token, introspection,
/// revocation, userinfo (OIDC Core §5.3.2), and the admin API (a new agent's client_secret).
async fn no_store_on_secrets(backend: Backend) {
    use serde_json::json;
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "buffy");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let t = code_flow_tokens(&s, &b, "default", &web, "buffy").await;
    let at = t["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let no_store = |r: &reqwest::Response, what: &str| {
        assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
        assert_eq!(r.headers()["pragma"], "no-cache", "{what}");
    };
    let r = http
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_store(&r, "userinfo GET");
    let r = http
        .post(format!("{issuer}/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    no_store(&r, "userinfo POST");
    for path in ["/introspect", "/revoke"] {
        let r = http
            .post(format!("{issuer}{path}"))
            .basic_auth(&web.0, Some(&web.1))
            .form(&[("token", "nothing")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        no_store(&r, path);
    }
    let r = http
        .post(format!("{issuer}/token"))
        .basic_auth(&web.0, Some(&web.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_store(&r, "token");

    // The admin API: a secret agent's registration answer carries its client_secret.
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
    let (_, t) = token(&issuer, &admin, &[("grant_type", "client_credentials")]).await;
    let admin_at = t["access_token"].as_str().unwrap();
    let r = http
        .post(format!("{}/admin/v1/tenants/default/agents", s.base))
        .bearer_auth(admin_at)
        .json(&json!({"name": "Helper", "tenant_owned": true,
            "scope_ceiling": ["calendar.read"], "generate_secret": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    no_store(&r, "admin agent registration");
    let v: Value = r.json().await.unwrap();
    assert!(v["client_secret"].is_string(), "{v}");
    let r = http
        .get(format!(
            "{}/admin/v1/tenants/default/audit/events?limit=1",
            s.base
        ))
        .bearer_auth(admin_at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    no_store(&r, "admin audit");
}

/// RFC 8252 §7.3: the port of a loopback redirect URI may vary for native (public) clients
/// only; a confidential web client's loopback URI must match exactly.
#[tokio::test]
async fn loopback_port_varies_for_native_clients_only() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    let registered = "http://127.0.0.1/cb";
    let create = |public: bool| {
        let mut args = vec![
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "Loopback",
            "--redirect-uri",
            registered,
        ];
        if public {
            args.push("--public");
        }
        s.cli(&args, None)["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let native = create(true);
    let web = create(false);
    let (_, c) = pkce();
    let enc = |u: &str| url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>();
    let url = |client: &str, redirect: &str| {
        auth_url(&issuer, client, &c, "openid", &[]).replace(&enc(REDIRECT), &enc(redirect))
    };
    let b = Browser::new();
    let other_port = "http://127.0.0.1:53121/cb";
    // The native client: any port; the login page is shown.
    let (status, body, _) = b.get(&url(&native, other_port)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("name=\"password\""));
    // The web client: exactly as registered, else an error page and no redirect.
    let (status, _, loc) = b.get(&url(&web, other_port)).await;
    assert_eq!((status, loc), (400, None));
    let (status, body, _) = b.get(&url(&web, registered)).await;
    assert_eq!(status, 200, "{body}");
}

/// Discovery says what the endpoints do: introspection refuses public clients, so it does not
/// list `none` (revocation does); `authorization_details_types_supported` is omitted while any
/// type is accepted (RFC 9396 §10) and lists the types once a tenant restricts them.
#[tokio::test]
async fn discovery_matches_endpoints() {
    let s = Server::start(Backend::Sqlite).await;
    let meta = |tenant: &str| {
        let url = format!("{}/.well-known/openid-configuration", s.issuer(tenant));
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let m = meta("default").await;
    let list = |k: &str| -> Vec<String> {
        m[k].as_array()
            .unwrap_or_else(|| panic!("{k}: {m}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert!(!list("introspection_endpoint_auth_methods_supported").contains(&"none".into()));
    assert!(
        list("introspection_endpoint_auth_methods_supported").contains(&"private_key_jwt".into())
    );
    assert!(list("revocation_endpoint_auth_methods_supported").contains(&"none".into()));
    assert!(list("token_endpoint_auth_methods_supported").contains(&"none".into()));
    assert!(
        m.get("authorization_details_types_supported").is_none(),
        "{m}"
    );
    // A public client really is refused at introspection.
    let v = s.cli(
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            REDIRECT,
        ],
        None,
    );
    let r = reqwest::Client::new()
        .post(format!("{}/introspect", s.issuer("default")))
        .form(&[
            ("client_id", v["client_id"].as_str().unwrap()),
            ("token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A tenant that accepts listed types publishes them.
    s.create_tenant("acme");
    s.cli(
        &[
            "tenant",
            "set",
            "acme",
            "--authorization-details-type",
            "payment_initiation",
        ],
        None,
    );
    let m = meta("acme").await;
    assert_eq!(
        m["authorization_details_types_supported"],
        serde_json::json!(["payment_initiation"])
    );
}

both_backends!(assertion_time_claims, no_store_on_secrets);
