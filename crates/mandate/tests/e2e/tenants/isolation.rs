//! Tenants are isolated: nothing of one tenant is accepted or visible in another.

use crate::common::*;

async fn isolation(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_tenant("acme");
    let (a, b) = (s.issuer("default"), s.issuer("acme"));
    s.create_user("default", "frank");
    let web_a = s.create_web_client("default", &[]);
    let svc_a = s.create_service_client("default");
    let svc_b = s.create_service_client("acme");
    let web_b = s.create_web_client("acme", &[]);

    // Each tenant is its own issuer with its own keys.
    let da: serde_json::Value = reqwest::get(format!("{a}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db: serde_json::Value = reqwest::get(format!("{b}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(da["issuer"], a.as_str());
    assert_eq!(db["issuer"], b.as_str());
    let ja: serde_json::Value = reqwest::get(format!("{a}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jb: serde_json::Value = reqwest::get(format!("{b}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids = |j: &serde_json::Value| {
        j["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert!(kids(&ja).iter().all(|k| !kids(&jb).contains(k)));
    // RFC 8414 path-inserted metadata.
    let m: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server/t/acme",
        s.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(m["issuer"], b.as_str());

    // A token of tenant A is inactive at B's introspection and refused by B's userinfo.
    let tokens = code_flow_tokens(&s, &Browser::new(), "default", &web_a, "frank").await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&a, &web_a, at).await["active"], true);
    assert_eq!(introspect(&b, &svc_b, at).await["active"], false);
    let r = reqwest::Client::new()
        .get(format!("{b}/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A's refresh token is unknown at B, even presented by a B client.
    let (st, body) = token(
        &b,
        &web_b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    // A's client does not exist at B.
    let (st, body) = token(&b, &svc_a, &[("grant_type", "client_credentials")]).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
    // A's user cannot log in at B.
    let (_, challenge) = pkce();
    let br = Browser::new();
    let (_, html, _) = br
        .get(&auth_url(&b, &web_b.0, &challenge, "openid", &[]))
        .await;
    let (status, html, loc) = br.login(&b, &html, "frank", PASSWORD).await;
    assert_eq!(status, 401, "{loc:?}");
    assert!(html.contains("Invalid username or password"));
    // A's code is not redeemable at B.
    let (verifier, challenge) = pkce();
    let loc = Browser::new()
        .authorize(
            &a,
            &auth_url(&a, &web_a.0, &challenge, "openid", &[]),
            "frank",
        )
        .await;
    let code = query_param(&loc, "code").unwrap();
    let (st, body) = token(
        &b,
        &web_b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")));
    // …and it still works at A, untouched.
    let (st, _) = token(
        &a,
        &web_a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn isolation_sqlite() {
    isolation(Backend::Sqlite).await;
}

#[tokio::test]
async fn isolation_postgres() {
    isolation(Backend::Postgres).await;
}

/// Issue 12 item 19: every password set meets the minimum policy (tenant minimum length, not
/// the account's name or e-mail, not a common breached password); a refused one creates
/// nothing and says why.
async fn password_policy(backend: Backend) {
    let s = Server::start(backend).await;
    s.create_tenant("strict");
    let create = |tenant: &str, user: &str, pw: &str| {
        s.cli_raw(
            &[
                "user",
                "create",
                "--tenant",
                tenant,
                "--username",
                user,
                "--email",
                &format!("{user}.smith@example.com"),
                "--password-stdin",
            ],
            Some(pw),
        )
    };
    let before = snapshot(&s).await;
    for (pw, why) in [
        ("password", "most commonly used"),
        ("12345678", "most commonly used"),
        ("Password1", "most commonly used"),
        ("iloveyou", "most commonly used"),
        ("carolina", "username"),
        ("my-carolina-2026", "username"),
        ("carolina.smith@example.com", "e-mail"),
        ("Carolina.Smith!", "e-mail"),
        ("short7!", "at least 8"),
    ] {
        let (ok, _, err) = create("default", "carolina", pw);
        assert!(!ok, "{pw:?} must be refused");
        assert!(err.contains(why), "{pw:?}: {err}");
    }
    assert_eq!(
        snapshot(&s).await,
        before,
        "a refused password creates nothing"
    );

    // A tenant may ask for longer passwords, never for fewer than 8 characters.
    let (ok, _, err) = s.cli_raw(
        &["tenant", "set", "strict", "--min-password-length", "6"],
        None,
    );
    assert!(!ok && err.contains("8-256"), "{err}");
    let t = s.cli(
        &["tenant", "set", "strict", "--min-password-length", "16"],
        None,
    );
    assert_eq!(t["settings"]["min_password_length"], 16);
    let (ok, _, err) = create("strict", "dora", "fifteen chars!!");
    assert!(!ok && err.contains("at least 16"), "{err}");
    // The default tenant keeps its own minimum.
    let (ok, _, err) = create("default", "dora", "fifteen chars!!");
    assert!(ok, "{err}");
    // A good one works, and its owner can sign in with it.
    let (ok, _, err) = create("strict", "dora", PASSWORD);
    assert!(ok, "{err}");
    let web = s.create_web_client("strict", &[]);
    let tokens = code_flow_tokens(&s, &Browser::new(), "strict", &web, "dora").await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn password_policy_sqlite() {
    password_policy(Backend::Sqlite).await;
}

#[tokio::test]
async fn password_policy_postgres() {
    password_policy(Backend::Postgres).await;
}
