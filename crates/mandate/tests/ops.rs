//! Operations: health, readiness, metrics, graceful shutdown, trusted proxies, CORS, CLI errors.

mod common;
mod docs_commands;

use common::*;

#[tokio::test]
async fn health_metrics_and_graceful_shutdown() {
    let mut s = Server::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/healthz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/readyz", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let svc = s.create_service_client("default");
    let (st, _) = token(
        &s.issuer("default"),
        &svc,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(st, 200);
    let m = http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("mandate_tokens_issued_total{grant_type=\"client_credentials\"} 1"),
        "{m}"
    );
    assert!(m.contains("mandate_http_requests_total{endpoint=\"/t/{tenant}/token\",method=\"POST\",status=\"200\"}"), "{m}");
    assert!(
        m.contains("mandate_http_request_duration_seconds_bucket"),
        "{m}"
    );
    assert!(!m.contains(&svc.1), "no secrets in metrics");
    let status = s.terminate();
    assert!(
        status.success(),
        "SIGTERM ends the server cleanly: {status}"
    );
}

#[tokio::test]
async fn forwarded_for_only_from_trusted_proxies() {
    let s = Server::start_with(Backend::Sqlite, &[("MANDATE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let svc = s.create_service_client("default");
    let r = reqwest::Client::new()
        .post(format!("{}/token", s.issuer("default")))
        .basic_auth(&svc.0, Some(&svc.1))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pool = s.db().await;
    let ip: String = sqlx::query_scalar(
        "SELECT ip FROM audit_events WHERE kind = 'token_issued' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(ip, "198.51.100.7");

    // Without trust, the header is ignored.
    let s2 = Server::start(Backend::Sqlite).await;
    let svc2 = s2.create_service_client("default");
    reqwest::Client::new()
        .post(format!("{}/token", s2.issuer("default")))
        .basic_auth(&svc2.0, Some(&svc2.1))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let pool2 = s2.db().await;
    let ip2: String = sqlx::query_scalar(
        "SELECT ip FROM audit_events WHERE kind = 'token_issued' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool2)
    .await
    .unwrap();
    assert_eq!(ip2, "127.0.0.1");
}

#[tokio::test]
async fn cors_for_registered_web_origins() {
    let s = Server::start(Backend::Sqlite).await;
    s.cli(
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
            "--web-origin",
            "https://spa.example",
        ],
        None,
    );
    let http = reqwest::Client::new();
    let url = format!("{}/token", s.issuer("default"));
    let pre = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://spa.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
    let evil = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    // Not on the authorization endpoint.
    let r = http
        .get(format!("{}/jwks.json", s.issuer("default")))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn login_pages_are_hardened() {
    let s = Server::start(Backend::Sqlite).await;
    let web = s.create_web_client("default", &[]);
    let issuer = s.issuer("default");
    let (_, challenge) = pkce();
    let r = reqwest::Client::new()
        .get(auth_url(
            &issuer,
            &web.0,
            &challenge,
            "openid",
            &[("login_hint", "zoe"), ("ui_locales", "de")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("value=\"zoe\""),
        "login_hint pre-fills the username"
    );
    assert!(html.contains("Anmelden"), "ui_locales=de picks German");
    // A login POST without the CSRF cookie is refused.
    let interaction = hidden(&html, "interaction").unwrap();
    let r = reqwest::Client::new()
        .post(format!("{issuer}/login"))
        .form(&[
            ("csrf", "forged-forged-forged-forged"),
            ("interaction", &interaction),
            ("username", "zoe"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn cli_errors_are_one_line_and_nonzero() {
    let s = Server::start(Backend::Sqlite).await;
    for args in [
        vec!["tenant", "create", "Bad Name"],
        vec!["tenant", "create", "default"],
        vec!["client", "create", "--tenant", "nope", "--name", "x"],
        vec![
            "user",
            "create",
            "--tenant",
            "default",
            "--username",
            "u",
            "--password-stdin",
        ],
        vec![
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "x",
            "--redirect-uri",
            "not a uri",
        ],
    ] {
        let (ok, out, err) = s.cli_raw(&args, Some(""));
        assert!(!ok, "{args:?} should fail");
        assert!(out.is_empty(), "{out}");
        assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
    let list = s.cli(&["tenant", "list"], None);
    assert_eq!(list[0]["name"], "default");
    let (ok, out, _) = s.cli_raw(
        &["client", "create", "--tenant", "default", "--name", "Human"],
        None,
    );
    assert!(ok);
    assert!(out.contains("client_secret: "), "{out}");
}

#[tokio::test]
async fn settings_from_file_env_and_flags() {
    let dir = std::env::temp_dir().join(format!("mandate_cfg_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mandate.toml");
    std::fs::write(&file, "access_token_ttl = 120\nlog_format = \"json\"\n").unwrap();
    let f = file.to_str().unwrap();
    // The file applies…
    let s = Server::start_with(Backend::Sqlite, &[("MANDATE_CONFIG", f)]).await;
    let svc = s.create_service_client("default");
    let (_, t) = token(
        &s.issuer("default"),
        &svc,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert!(
        (118..=120).contains(&t["expires_in"].as_i64().unwrap()),
        "{t}"
    );
    // …and the environment wins over it.
    let s2 = Server::start_with(
        Backend::Sqlite,
        &[("MANDATE_CONFIG", f), ("MANDATE_ACCESS_TOKEN_TTL", "90")],
    )
    .await;
    let svc2 = s2.create_service_client("default");
    let (_, t2) = token(
        &s2.issuer("default"),
        &svc2,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert!(
        (88..=90).contains(&t2["expires_in"].as_i64().unwrap()),
        "{t2}"
    );
    // An unknown key in the file is a clear start-up error.
    std::fs::write(&file, "acces_token_ttl = 5\n").unwrap();
    let (ok, _, err) = s2.cli_raw(&["--config", f, "tenant", "list"], None);
    assert!(!ok);
    assert!(
        err.contains("invalid config file") && err.contains("acces_token_ttl"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
