//! Consent is remembered per user, client and scopes and can be withdrawn; templates can be
//! overridden by the operator.

use crate::common::*;

#[tokio::test]
async fn consent_is_remembered_narrowly_and_can_be_withdrawn() {
    let s = Server::start(Backend::Sqlite).await;
    let issuer = s.issuer("default");
    s.create_user("default", "kim");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let (_, c) = pkce();
    b.authorize(
        &issuer,
        &auth_url(&issuer, &web.0, &c, "openid email", &[]),
        "kim",
    )
    .await;
    // Same scopes: no consent page.
    let (status, _, loc) = b
        .get(&auth_url(&issuer, &web.0, &c, "email openid", &[]))
        .await;
    assert_eq!(status, 303);
    assert!(query_param(&loc.unwrap(), "code").is_some());
    // More scopes: asked again.
    let (status, body, _) = b
        .get(&auth_url(&issuer, &web.0, &c, "openid email profile", &[]))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"decision\""));
    // Denying sends access_denied to the client.
    let (status, _, loc) = b.consent(&issuer, &body, "deny").await;
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    // prompt=consent asks even when consent is stored.
    let (status, body, _) = b
        .get(&auth_url(
            &issuer,
            &web.0,
            &c,
            "openid",
            &[("prompt", "consent")],
        ))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"decision\""));
    // The account page lists the consent; withdrawing it brings the consent page back.
    let (status, page, _) = b.get(&format!("{issuer}/account/consents")).await;
    assert_eq!(status, 200);
    assert!(page.contains("Web App"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let (status, _, _) = b
        .post_form(
            &format!("{issuer}/account/consents/withdraw"),
            &[("csrf", &csrf), ("client_id", &web.0)],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = b.get(&format!("{issuer}/account/consents")).await;
    assert!(!page.contains("Web App"));
    let (status, body, _) = b
        .get(&auth_url(&issuer, &web.0, &c, "openid email", &[]))
        .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("name=\"decision\""),
        "consent withdrawn: asked again"
    );
    let pool = s.db().await;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'consent_withdrawn'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn operator_templates_override_the_built_in_ones() {
    let dir = std::env::temp_dir().join(format!("mandate_tpl_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("login.html"),
        "{% extends \"base.html\" %}{% block content %}<h1>ACME SSO</h1><form method=post action=\"{{ action }}\"><input type=\"hidden\" name=\"csrf\" value=\"{{ csrf }}\"><input type=\"hidden\" name=\"interaction\" value=\"{{ interaction }}\"><input name=username><input type=password name=\"password\"></form>{% endblock %}",
    )
    .unwrap();
    let s = Server::start_with(
        Backend::Sqlite,
        &[("MANDATE_TEMPLATES_DIR", dir.to_str().unwrap())],
    )
    .await;
    let issuer = s.issuer("default");
    s.create_user("default", "lee");
    let web = s.create_web_client("default", &[]);
    let b = Browser::new();
    let (_, c) = pkce();
    let (status, html, _) = b.get(&auth_url(&issuer, &web.0, &c, "openid", &[])).await;
    assert_eq!(status, 200);
    assert!(html.contains("ACME SSO"), "{html}");
    // The overridden form still drives the flow.
    let (status, body, _) = b.login(&issuer, &html, "lee", PASSWORD).await;
    assert_eq!(status, 200);
    assert!(body.contains("name=\"decision\""));
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 12 item 27: signed-out people who open an account page or the CIBA approval link go to
/// a sign-in page (no OAuth client needed) and come back to what they opened; the return
/// address only ever leads to this tenant's pages. `GET {issuer}/` and `GET /` lead to the
/// account page.
async fn signed_out_people_sign_in_and_come_back(backend: Backend) {
    let s = Server::start(backend).await;
    let issuer = s.issuer("default");
    s.create_user("default", "alice");
    s.create_tenant("other");
    let v = s.cli(
        &[
            "agent",
            "create",
            "--tenant",
            "default",
            "--name",
            "Planner",
            "--owner",
            "alice",
            "--scope-ceiling",
            "calendar.read",
            "--generate-secret",
            "--ciba-mode",
            "poll",
        ],
        None,
    );
    let agent = (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    );
    let (status, v) = post_auth(
        &format!("{issuer}/bc-authorize"),
        &agent,
        &[
            ("scope", "openid calendar.read"),
            ("login_hint", "alice"),
            ("binding_message", "Book lunch, code 4711"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let pool = s.db().await;
    let id: String = sqlx::query_scalar("SELECT id FROM ciba_requests")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let link = format!("{issuer}/account/ciba/{id}");

    // The link, signed out: the sign-in page, then straight back to the request.
    let b = Browser::new();
    let (status, _, loc) = b.get(&link).await;
    assert_eq!(status, 303);
    let loc = loc.unwrap();
    assert!(
        loc.starts_with(&format!("{issuer}/account/login?")),
        "{loc}"
    );
    assert_eq!(
        query_param(&loc, "return_to").as_deref(),
        Some(format!("/account/ciba/{id}").as_str())
    );
    let (status, form, _) = b.get(&loc).await;
    assert_eq!(status, 200, "{form}");
    assert!(form.contains("name=\"password\""), "{form}");
    let csrf = hidden(&form, "csrf").unwrap();
    let return_to = hidden(&form, "return_to").unwrap();
    let sign_in = |user: &'static str, pw: &'static str, back: String| {
        let (b, url, csrf) = (&b, format!("{issuer}/account/login"), csrf.clone());
        async move {
            b.post_form(
                &url,
                &[
                    ("csrf", csrf.as_str()),
                    ("return_to", back.as_str()),
                    ("username", user),
                    ("password", pw),
                ],
            )
            .await
        }
    };
    // A wrong password: the form again, the same answer as for an unknown account.
    let (status, again, _) = sign_in("alice", "wrong password", return_to.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(
        hidden(&again, "return_to").as_deref(),
        Some(return_to.as_str())
    );
    let (status, unknown, _) = sign_in("nobody", "wrong password", return_to.clone()).await;
    assert_eq!(status, 401);
    assert!(unknown.contains("name=\"password\""));
    let (status, _, loc) = sign_in("alice", PASSWORD, return_to).await;
    assert_eq!(status, 303);
    assert_eq!(loc.as_deref(), Some(link.as_str()));
    let (status, page, _) = b.get(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Book lunch, code 4711"), "{page}");
    assert!(page.contains("name=\"decision\""), "{page}");
    // Signed in, the sign-in page sends straight on.
    let (status, _, loc) = b
        .get(&format!(
            "{issuer}/account/login?return_to=%2Faccount%2Fagents"
        ))
        .await;
    assert_eq!(
        (status, loc.as_deref()),
        (303, Some(format!("{issuer}/account/agents").as_str()))
    );

    // Other account pages, signed out, do the same.
    let fresh = Browser::new();
    for (page, back) in [
        ("/account/consents", "/account/consents"),
        ("/account/agents", "/account/agents"),
    ] {
        let (status, _, loc) = fresh.get(&format!("{issuer}{page}")).await;
        assert_eq!(status, 303, "{page}");
        assert_eq!(
            query_param(&loc.unwrap(), "return_to").as_deref(),
            Some(back)
        );
    }
    // The issuer's root, `/account` and the server's root lead to the account page.
    for url in [format!("{issuer}/"), issuer.clone(), format!("{}/", s.base)] {
        let (status, _, loc) = fresh.get(&url).await;
        assert_eq!(
            (status, loc.as_deref()),
            (303, Some(format!("{issuer}/account").as_str())),
            "{url}"
        );
    }
    // The account page itself asks a signed-out person to sign in, and comes back.
    let (status, _, loc) = fresh.get(&format!("{issuer}/account")).await;
    assert_eq!(status, 303);
    assert_eq!(
        query_param(&loc.unwrap(), "return_to").as_deref(),
        Some("/account")
    );
    let (status, _, loc) = fresh.get(&format!("{}/t/other/", s.base)).await;
    assert_eq!(
        (status, loc.as_deref()),
        (303, Some(format!("{}/t/other/account", s.base).as_str()))
    );

    // No open redirect: anything but a plain path under this issuer comes back home.
    let (status, form, _) = fresh.get(&format!("{issuer}/account/login")).await;
    assert_eq!(status, 200);
    let csrf = hidden(&form, "csrf").unwrap();
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/../other/account/consents",
        "/%2e%2e/other/account/consents",
        "/account\r\nSet-Cookie: x=1",
    ] {
        let (status, _, loc) = b
            .get(&format!(
                "{issuer}/account/login?return_to={}",
                url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            ))
            .await;
        assert_eq!(
            (status, loc.as_deref()),
            (303, Some(format!("{issuer}/account").as_str())),
            "{evil:?}"
        );
        let signer = Browser::new();
        let (_, f, _) = signer.get(&format!("{issuer}/account/login")).await;
        let c = hidden(&f, "csrf").unwrap();
        let (status, _, loc) = signer
            .post_form(
                &format!("{issuer}/account/login"),
                &[
                    ("csrf", c.as_str()),
                    ("return_to", evil),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(
            (status, loc.as_deref()),
            (303, Some(format!("{issuer}/account").as_str())),
            "{evil:?}"
        );
    }
    // Without the CSRF cookie's token the form is refused.
    let (status, _, _) = Browser::new()
        .post_form(
            &format!("{issuer}/account/login"),
            &[
                ("csrf", csrf.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 400);
    // Sign-ins through the account page are audited like any other.
    let pool = s.db().await;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'login_failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 2);
    pool.close().await;
}

#[tokio::test]
async fn signed_out_people_sign_in_and_come_back_sqlite() {
    signed_out_people_sign_in_and_come_back(Backend::Sqlite).await;
}

#[tokio::test]
async fn signed_out_people_sign_in_and_come_back_postgres() {
    signed_out_people_sign_in_and_come_back(Backend::Postgres).await;
}
