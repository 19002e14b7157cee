//! Operations: health, readiness, metrics, graceful shutdown, trusted proxies, CORS, CLI errors.

use crate::common::*;
use std::time::Duration;

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
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Scripts and styles only from the server's own files: nothing inline, nothing foreign.
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
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
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline script or style"
    );
    // The stylesheet the page names is served, versioned and cacheable.
    let css = html
        .split("href=\"")
        .filter_map(|p| p.split('"').next())
        .map(unescape)
        .find(|u| u.ends_with("/mandate.css"))
        .expect("a stylesheet link");
    let r = reqwest::get(&css).await.unwrap();
    assert_eq!(r.status(), 200, "{css}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
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

/// Issue 12 item 10: connections that send half a request line are closed after the
/// header-read timeout, a body that does not arrive is cut off, the server keeps serving
/// others meanwhile, and connections beyond the cap are closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_surplus_connections_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::start_with(
        Backend::Sqlite,
        &[
            ("MANDATE_HEADER_READ_TIMEOUT", "2"),
            ("MANDATE_BODY_READ_TIMEOUT", "2"),
            ("MANDATE_MAX_CONNECTIONS", "40"),
        ],
    )
    .await;
    let addr = format!("127.0.0.1:{}", s.port);
    let mut slow = Vec::new();
    for _ in 0..30 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /healthz HT").await.unwrap();
        slow.push(c);
    }
    // Others are still served while they hang.
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Each is closed (EOF or reset) soon after the timeout, without an answer to wait for.
    for mut c in slow {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(6), c.read(&mut buf))
            .await
            .expect("closed by the server within the timeout");
        if let Ok(n) = read {
            assert!(
                n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 4"),
                "{}",
                String::from_utf8_lossy(&buf[..n])
            );
        }
    }

    // A body announced but not sent: answered 4xx (or closed) after the body timeout.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"POST /t/default/token HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(8), c.read(&mut buf))
        .await
        .expect("the server gives up on the body")
        .unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || answer.starts_with("HTTP/1.1 4"), "{answer}");

    // The cap: 40 idle connections fill it; the 41st is closed on arrival.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0, "no answer beyond the cap");
    // Once the idle ones time out, the server serves again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Issue 12 item 25: admin commands do not create a data directory; they say where they
/// looked. `mandate init` creates one.
#[tokio::test]
async fn cli_does_not_create_a_data_directory() {
    let root = std::env::temp_dir().join(format!("mandate_nodata_{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let run = |args: &[&str], data: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mandate"));
        c.env_remove("MANDATE_DATABASE_URL")
            .env_remove("MANDATE_CONFIG")
            .env_remove("MANDATE_DATA_DIR")
            .current_dir(&root)
            .args(args);
        if let Some(d) = data {
            c.env("MANDATE_DATA_DIR", d);
        }
        let out = c.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // From a directory without data: refused, nothing created.
    let (ok, _, err) = run(&["tenant", "show", "default"], None);
    assert!(!ok);
    assert!(
        err.contains("mandate-data") && err.contains("MANDATE_DATA_DIR"),
        "{err}"
    );
    assert!(
        !root.join("mandate-data").exists(),
        "no directory was created"
    );
    let elsewhere = root.join("elsewhere");
    let (ok, _, err) = run(&["tenant", "list"], Some(&elsewhere));
    assert!(!ok);
    assert!(err.contains(elsewhere.to_str().unwrap()), "{err}");
    assert!(!elsewhere.exists());
    // `mandate init` creates it; then commands work.
    let (ok, out, err) = run(&["init"], Some(&elsewhere));
    assert!(ok, "{err}");
    assert!(out.contains("initialized"), "{out}");
    let (ok, out, err) = run(&["--json", "tenant", "list"], Some(&elsewhere));
    assert!(ok, "{err}");
    assert!(out.contains("\"default\""), "{out}");
    let _ = std::fs::remove_dir_all(root);
}

/// Issue 12 item 26: `mandate serve 2>&1 | head -1`, then SIGTERM: the server stops although
/// nothing reads its log any more.
#[tokio::test]
async fn shutdown_does_not_depend_on_logging() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("mandate_pipe_{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mandate"))
        .env_remove("MANDATE_DATABASE_URL")
        .env_remove("MANDATE_CONFIG")
        .env("MANDATE_DATA_DIR", &dir)
        .env("MANDATE_LOG", "debug")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `head -1`: one line, then the pipe is closed.
    {
        let mut first = String::new();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        err.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
    }
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server kept running after SIGTERM with a closed log pipe");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 12 item 29 (code parts): `audit --help` lists every subcommand, a bad listen address
/// is reported as such, and `--json` makes errors JSON.
#[tokio::test]
async fn cli_help_listen_and_json_errors() {
    let s = Server::start(Backend::Sqlite).await;
    let (ok, out, _) = s.cli_raw(&["audit", "--help"], None);
    assert!(ok);
    assert!(
        out.contains("query") && out.contains("export") && out.contains("verify"),
        "{out}"
    );
    let (ok, _, _) = s.cli_raw(&["--help"], None);
    assert!(ok);
    let (_, top, _) = s.cli_raw(&["--help"], None);
    let audit_line = top
        .lines()
        .find(|l| l.trim_start().starts_with("audit"))
        .unwrap();
    assert!(
        audit_line.contains("uery") && audit_line.contains("xport"),
        "{audit_line}"
    );

    let (ok, _, err) = s.cli_raw(&["serve", "--listen", "127.0.0.1:8080x"], None);
    assert!(!ok);
    assert!(err.contains("listen address"), "{err}");
    assert!(!err.contains("public URL"), "{err}");

    for args in [
        vec!["--json", "tenant", "create", "Bad Name"],
        vec![
            "--json", "client", "create", "--tenant", "nope", "--name", "x",
        ],
        vec!["--json", "serve", "--listen", "127.0.0.1:8080x"],
        vec!["--json", "tenant", "frobnicate"],
        vec!["tenant", "show", "default", "--json", "--no-such-flag"],
    ] {
        let (ok, out, err) = s.cli_raw(&args, None);
        assert!(!ok, "{args:?}");
        assert!(out.is_empty(), "{out}");
        let v: serde_json::Value = serde_json::from_str(err.trim())
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {err}"));
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
}
