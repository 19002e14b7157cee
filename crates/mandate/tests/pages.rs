//! Consent is remembered per user, client and scopes and can be withdrawn; templates can be
//! overridden by the operator.

mod common;

use common::*;

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
