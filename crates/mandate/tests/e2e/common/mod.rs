//! Test harness: starts the real `mandate` binary on a free port against a fresh SQLite data
//! directory or a fresh PostgreSQL schema, drives the CLI, and plays a browser.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod chromium;
pub mod dpop;
pub mod mail;
pub mod webauthn;
#[allow(unused_imports)]
pub use chromium::Chromium;
#[allow(unused_imports)]
pub use dpop::DpopKey;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const PASSWORD: &str = "correct horse battery staple";
pub const REDIRECT: &str = "https://app.example/callback";
/// The development switch that lets outbound requests (SSF push, CIBA pings and webhooks)
/// reach the tests' receivers on loopback. Off unless a test sets it.
pub const DEV_LOOPBACK: (&str, &str) = ("MANDATE_DEV_ALLOW_LOOPBACK_OUTBOUND", "true");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// The origin a server names in its issuers (`MANDATE_PUBLIC_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicUrl {
    /// None set: the server's own address, `http://127.0.0.1:<port>` ([`Server::base`]).
    Listen,
    /// `http://localhost:<port>`, the port chosen at each start: WebAuthn refuses IP-address
    /// origins, so the Chromium tests reach the server by name.
    Localhost,
    /// A fixed URL, such as another node's: two nodes behind one public URL.
    Fixed(String),
}

/// A running server process and the storage it uses.
pub struct Server {
    pub backend: Backend,
    /// Where the tests' HTTP requests go: `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
    pub public_url: PublicUrl,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub schema: Option<String>,
    pub extra_env: Vec<(String, String)>,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Start a server with default settings.
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, &[]).await
    }

    /// Start a server with extra `MANDATE_*` environment.
    pub async fn start_with(backend: Backend, env: &[(&str, &str)]) -> Server {
        Self::start_at(backend, PublicUrl::Listen, env).await
    }

    /// Start a server whose issuers are on `http://localhost:<port>`, as the Chromium tests
    /// need (WebAuthn refuses IP-address origins).
    pub async fn start_localhost(backend: Backend) -> Server {
        Self::start_at(backend, PublicUrl::Localhost, &[]).await
    }

    /// Start a server with a public URL and extra `MANDATE_*` environment.
    pub async fn start_at(backend: Backend, public_url: PublicUrl, env: &[(&str, &str)]) -> Server {
        let data_dir = std::env::temp_dir().join(unique("mandate_it"));
        let (database_url, schema) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let schema = unique("mandate_it").to_lowercase();
                (Some(format!("{PG_BASE}?schema={schema}")), Some(schema))
            }
        };
        let mut s = Server {
            backend,
            base: String::new(),
            port: 0,
            public_url,
            data_dir,
            database_url,
            schema,
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        s.spawn().await;
        s
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mandate"));
        c.env_remove("MANDATE_DATABASE_URL")
            .env_remove("MANDATE_CONFIG");
        c.env("MANDATE_DATA_DIR", &self.data_dir);
        c.env_remove(DEV_LOOPBACK.0);
        // The CLI applies the outbound rules when registering endpoints: same switch.
        if let Some((k, v)) = self.extra_env.iter().find(|(k, _)| k == DEV_LOOPBACK.0) {
            c.env(k, v);
        }
        if let Some(u) = &self.database_url {
            c.env("MANDATE_DATABASE_URL", u);
        }
        c.current_dir(std::env::temp_dir());
        c
    }

    /// (Re)start the process on a new port. A port taken between choosing and binding it
    /// (other test binaries run at the same time) is retried on another.
    pub async fn spawn(&mut self) {
        for _ in 0..5 {
            if self.try_spawn().await {
                return;
            }
        }
        panic!("mandate serve could not start on a free port");
    }

    /// One attempt of [`Server::spawn`]: false when the process exited before it was ready.
    async fn try_spawn(&mut self) -> bool {
        self.port = free_port();
        self.base = format!("http://127.0.0.1:{}", self.port);
        let mut c = self.command();
        c.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port));
        c.env("MANDATE_CACHE_TTL_MS", "0")
            .env("MANDATE_LOG", "warn");
        match &self.public_url {
            PublicUrl::Listen => {}
            PublicUrl::Localhost => {
                c.env("MANDATE_PUBLIC_URL", self.localhost_base());
            }
            PublicUrl::Fixed(url) => {
                c.env("MANDATE_PUBLIC_URL", url);
            }
        }
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        // MANDATE_TEST_LOG_FILE captures the server's logs for inspection.
        match self
            .extra_env
            .iter()
            .find(|(k, _)| k == "MANDATE_TEST_LOG_FILE")
        {
            Some((_, path)) => c
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(path).expect("log file")),
            None => c.stdout(Stdio::null()).stderr(Stdio::inherit()),
        };
        self.child = Some(c.spawn().expect("spawn mandate serve"));
        let http = reqwest::Client::new();
        let tls = self.extra_env.iter().any(|(k, _)| k == "MANDATE_TLS_CERT");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Exited (the port was taken): try another. Checked first, so that another
            // process answering on the port is never taken for this one.
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("mandate serve exited early ({status}); retrying on another port");
                self.child = None;
                return false;
            }
            if tls {
                // The test client speaks no TLS: an accepted connection means ready.
                if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
                {
                    return true;
                }
            } else if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
                && self.child.as_mut().unwrap().try_wait().unwrap().is_none()
            {
                return true;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// A second server process on the same database (another node), with extra environment.
    pub async fn second_node(&self, env: &[(&str, &str)]) -> Server {
        self.second_node_at(PublicUrl::Listen, env).await
    }

    /// A second node that keeps this one's public URL (and so its issuers): two nodes behind one
    /// public URL, as behind a load balancer. In Chromium, [`Chromium::reroute`] from
    /// `self.public_base()` to the new node's [`Server::localhost_base`] sends the browser there.
    pub async fn second_node_same_public_url(&self, env: &[(&str, &str)]) -> Server {
        self.second_node_at(PublicUrl::Fixed(self.public_base()), env)
            .await
    }

    /// A second node on the same database with its own public URL.
    pub async fn second_node_at(&self, public_url: PublicUrl, env: &[(&str, &str)]) -> Server {
        let mut s = Server {
            backend: self.backend,
            base: String::new(),
            port: 0,
            public_url,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            schema: self.schema.clone(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        s.spawn().await;
        s
    }

    /// The server process id (to read its memory from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send SIGKILL and wait.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .unwrap();
        c.wait().unwrap()
    }

    /// The origin the server names in its issuers (see [`PublicUrl`]).
    pub fn public_base(&self) -> String {
        match &self.public_url {
            PublicUrl::Listen => self.base.clone(),
            PublicUrl::Localhost => self.localhost_base(),
            PublicUrl::Fixed(url) => url.trim_end_matches('/').to_string(),
        }
    }

    /// This process by name, `http://localhost:<port>`, whatever its public URL.
    pub fn localhost_base(&self) -> String {
        format!("http://localhost:{}", self.port)
    }

    /// A tenant's issuer, on the public URL.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.public_base())
    }

    /// Run a CLI command against the same storage; returns (exit ok, stdout, stderr).
    pub fn cli_raw(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut c = self.command();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn cli");
        {
            use std::io::Write;
            let mut sin = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                sin.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run a CLI command with `--json`, expecting success.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let (ok, out, err) = self.cli_raw(&a, stdin);
        assert!(ok, "mandate {args:?} failed: {err}");
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}: {out}"))
    }

    pub fn create_tenant(&self, name: &str) {
        self.cli(&["tenant", "create", name], None);
    }

    /// Revoke one mandate with the CLI.
    pub fn revoke_mandate(&self, tenant: &str, id: &str) -> Value {
        let id = format!("--id={id}");
        self.cli(&["mandate", "revoke", "--tenant", tenant, &id], None)
    }

    pub fn create_user(&self, tenant: &str, username: &str) -> String {
        let v = self.cli(
            &[
                "user",
                "create",
                "--tenant",
                tenant,
                "--username",
                username,
                "--email",
                &format!("{username}@example.com"),
                "--password-stdin",
            ],
            Some(PASSWORD),
        );
        v["id"].as_str().unwrap().to_string()
    }

    /// A confidential web client with the code and refresh grants; returns (id, secret).
    pub fn create_web_client(&self, tenant: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec![
            "client",
            "create",
            "--tenant",
            tenant,
            "--name",
            "Web App",
            "--redirect-uri",
            REDIRECT,
            "--post-logout-redirect-uri",
            "https://app.example/bye",
        ];
        args.extend_from_slice(extra);
        let v = self.cli(&args, None);
        (
            v["client_id"].as_str().unwrap().into(),
            v["client_secret"].as_str().unwrap_or_default().into(),
        )
    }

    /// A client_credentials client with scope `api.read`.
    pub fn create_service_client(&self, tenant: &str) -> (String, String) {
        let v = self.cli(
            &[
                "client",
                "create",
                "--tenant",
                tenant,
                "--name",
                "Service",
                "--grant-type",
                "client_credentials",
                "--scope",
                "api.read",
                "--scope",
                "api.write",
            ],
            None,
        );
        (
            v["client_id"].as_str().unwrap().into(),
            v["client_secret"].as_str().unwrap().into(),
        )
    }

    /// Open the same database directly (for snapshots and tampering checks).
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        let url = match &self.database_url {
            Some(_) => PG_BASE.to_string(),
            None => format!(
                "sqlite://{}?mode=rw",
                self.data_dir.join("mandate.db").display()
            ),
        };
        let schema = self.schema.clone();
        sqlx::pool::PoolOptions::<sqlx::Any>::new()
            .max_connections(1)
            .after_connect(move |conn, _| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(s) = schema {
                        sqlx::query(&format!("SET search_path TO {s}"))
                            .execute(conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(s) = &self.schema {
            let _ = Command::new("psql")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "test",
                    "-c",
                    &format!("DROP SCHEMA IF EXISTS {s} CASCADE"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Unescape the HTML entities minijinja produces.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// A browser: cookies kept, redirects not followed (so tests see each hop).
pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn get(&self, url: &str) -> (u16, String, Option<String>) {
        let r = self.http.get(url).send().await.unwrap();
        page(r).await
    }

    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let r = self.http.post(url).form(form).send().await.unwrap();
        page(r).await
    }

    /// Submit the login form on `html`.
    pub async fn login(
        &self,
        issuer: &str,
        html: &str,
        username: &str,
        password: &str,
    ) -> (u16, String, Option<String>) {
        let csrf = hidden(html, "csrf").expect("csrf field");
        let interaction = hidden(html, "interaction").expect("interaction field");
        self.post_form(
            &format!("{issuer}/login"),
            &[
                ("csrf", &csrf),
                ("interaction", &interaction),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Submit the consent form on `html`.
    pub async fn consent(
        &self,
        issuer: &str,
        html: &str,
        decision: &str,
    ) -> (u16, String, Option<String>) {
        let csrf = hidden(html, "csrf").expect("csrf field");
        let interaction = hidden(html, "interaction").expect("interaction field");
        self.post_form(
            &format!("{issuer}/consent"),
            &[
                ("csrf", &csrf),
                ("interaction", &interaction),
                ("decision", decision),
            ],
        )
        .await
    }

    /// Walk authorize → login (if asked) → consent (if asked) and return the final redirect.
    pub async fn authorize(&self, issuer: &str, auth_url: &str, username: &str) -> String {
        let (mut status, mut body, mut loc) = self.get(auth_url).await;
        if status == 200 && body.contains("name=\"password\"") {
            (status, body, loc) = self.login(issuer, &body, username, PASSWORD).await;
        }
        // The offer of a passkey after a first password sign-in (servers on localhost).
        if status == 200 && body.contains("name=\"skip_passkey\"") {
            let csrf = hidden(&body, "csrf").expect("csrf field");
            let interaction = hidden(&body, "interaction").expect("interaction field");
            (status, body, loc) = self
                .post_form(
                    &format!("{issuer}/login/continue"),
                    &[
                        ("csrf", &csrf),
                        ("interaction", &interaction),
                        ("skip_passkey", "1"),
                    ],
                )
                .await;
        }
        if status == 200 && body.contains("name=\"decision\"") {
            (status, body, loc) = self.consent(issuer, &body, "approve").await;
        }
        assert_eq!(
            status, 303,
            "expected a redirect to the client, got {status}: {body}"
        );
        loc.expect("Location")
    }
}

async fn page(r: reqwest::Response) -> (u16, String, Option<String>) {
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), loc)
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (
        verifier,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()),
    )
}

/// An authorization URL with PKCE for a client.
pub fn auth_url(
    issuer: &str,
    client_id: &str,
    challenge: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut u = url::Url::parse(&format!("{issuer}/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "st-123")
            .append_pair("nonce", "n-456")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Log in through the browser and redeem the code; returns the token response JSON.
pub async fn code_flow_tokens(
    s: &Server,
    b: &Browser,
    tenant: &str,
    client: &(String, String),
    username: &str,
) -> Value {
    let issuer = s.issuer(tenant);
    let (verifier, challenge) = pkce();
    let loc = b
        .authorize(
            &issuer,
            &auth_url(&issuer, &client.0, &challenge, "openid profile email", &[]),
            username,
        )
        .await;
    let code = query_param(&loc, "code").expect("code in redirect");
    let r = token(
        &issuer,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    r.1
}

/// POST to the token endpoint with client_secret_basic.
pub async fn token(issuer: &str, client: &(String, String), form: &[(&str, &str)]) -> (u16, Value) {
    post_auth(&format!("{issuer}/token"), client, form).await
}

/// POST a form with HTTP Basic client authentication; returns status and JSON body.
pub async fn post_auth(
    url: &str,
    client: &(String, String),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .basic_auth(&client.0, Some(&client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Introspect a token as `client`.
pub async fn introspect(issuer: &str, client: &(String, String), token: &str) -> Value {
    let (status, v) = post_auth(&format!("{issuer}/introspect"), client, &[("token", token)]).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// A fingerprint of every non-audit table: row counts and state flags. Negative tests assert
/// that a rejected request leaves it unchanged.
pub async fn snapshot(s: &Server) -> Vec<(String, i64)> {
    let pool = s.db().await;
    let queries = [
        "SELECT COUNT(*) FROM tenants",
        "SELECT COUNT(*) FROM signing_keys",
        "SELECT COUNT(*) FROM clients",
        "SELECT COUNT(*) FROM users",
        "SELECT COUNT(*) FROM sessions",
        "SELECT COUNT(*) FROM consents",
        "SELECT COUNT(*) FROM grants",
        "SELECT COUNT(*) FROM grants WHERE revoked_at IS NOT NULL",
        "SELECT COUNT(*) FROM auth_codes",
        "SELECT COUNT(*) FROM auth_codes WHERE consumed_at IS NOT NULL",
        "SELECT COUNT(*) FROM refresh_tokens",
        "SELECT COUNT(*) FROM refresh_tokens WHERE spent_at IS NOT NULL",
        "SELECT COUNT(*) FROM access_tokens",
        "SELECT COUNT(*) FROM revoked_access_tokens",
        "SELECT COUNT(*) FROM replay_entries",
    ];
    let mut out = Vec::new();
    for q in queries {
        let n: i64 = sqlx::query_scalar(q)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        out.push((q.to_string(), n));
    }
    pool.close().await;
    out
}

/// A person's own access token for `scope` at tenant `default`, through the browser flow.
pub async fn person_token(
    s: &Server,
    web: &(String, String),
    username: &str,
    scope: &str,
) -> String {
    person_token_at(s, "default", web, username, scope).await
}

/// [`person_token`] at any tenant.
pub async fn person_token_at(
    s: &Server,
    tenant: &str,
    web: &(String, String),
    username: &str,
    scope: &str,
) -> String {
    let issuer = s.issuer(tenant);
    let (verifier, challenge) = pkce();
    let loc = Browser::new()
        .authorize(
            &issuer,
            &auth_url(&issuer, &web.0, &challenge, scope, &[]),
            username,
        )
        .await;
    let code = query_param(&loc, "code").expect("code in redirect");
    let (status, v) = token(
        &issuer,
        web,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().into()
}

/// Register an agent of tenant `default` owned by `owner` with a fresh P-256 public key
/// (private_key_jwt); returns its id and private key (PKCS#8 DER).
pub fn key_agent(s: &Server, name: &str, owner: &str, ceiling: &str) -> (String, Vec<u8>) {
    key_agent_with(s, name, owner, ceiling, &[])
}

/// [`key_agent`] with more `agent create` options (`--redirect-uri`, `--require-dpop`, …).
pub fn key_agent_with(
    s: &Server,
    name: &str,
    owner: &str,
    ceiling: &str,
    extra: &[&str],
) -> (String, Vec<u8>) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let pt = kp.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&pt[1..33]),
        "y": b64(&pt[33..65]), "kid": "k1", "alg": "ES256"});
    let path = s.data_dir.with_extension(format!("{name}.jwk.json"));
    std::fs::write(&path, jwk.to_string()).unwrap();
    let mut args = vec![
        "agent",
        "create",
        "--tenant",
        "default",
        "--name",
        name,
        "--owner",
        owner,
        "--jwk-file",
        path.to_str().unwrap(),
    ];
    for c in ceiling.split_whitespace() {
        args.extend(["--scope-ceiling", c]);
    }
    args.extend_from_slice(extra);
    let v = s.cli(&args, None);
    let id = v["id"]
        .as_str()
        .or(v["client_id"].as_str())
        .unwrap()
        .to_string();
    (id, kp.to_pkcs8v1().unwrap().as_ref().to_vec())
}

/// An RFC 7523 assertion (ES256, kid `k1`) by `iss` for `aud`, valid for a minute.
pub fn signed_assertion(key: &[u8], iss: &str, aud: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("k1".into());
    let claims = serde_json::json!({"iss": iss, "sub": iss, "aud": aud, "jti": jti,
        "iat": now, "exp": now + 60});
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_ec_der(key)).unwrap()
}

/// Register an agent of `tenant` owned by `owner` with a generated secret and the scope
/// ceiling `ceiling` (space-separated); returns (id, secret).
pub fn secret_agent(
    s: &Server,
    tenant: &str,
    name: &str,
    owner: &str,
    ceiling: &str,
) -> (String, String) {
    let mut args = vec![
        "agent", "create", "--tenant", tenant, "--name", name, "--owner", owner,
    ];
    for c in ceiling.split_whitespace() {
        args.extend(["--scope-ceiling", c]);
    }
    args.push("--generate-secret");
    let v = s.cli(&args, None);
    (
        v["client_id"].as_str().unwrap().into(),
        v["client_secret"].as_str().unwrap().into(),
    )
}

/// `both_backends!(case_a, case_b)`: each `async fn case(backend: Backend)` of the file runs as
/// two tests, `sqlite::case` and `postgres::case`.
#[allow(unused_macros)]
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_backends;

/// The claims of a JWT (its payload, not verified: the tests check what the server put there).
/// A token Mandate signed is also read through the pure token crate's type for its kind
/// (access token, ID token, SET), and must come back unchanged: every claim the server issues
/// is one the types know, so what a resource server reads with `mandate-token` is exactly what
/// was issued.
pub fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = |i: usize| -> Value {
        let b64 = jwt.split('.').nth(i).expect("a JWT has three parts");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .expect("base64url"),
        )
        .expect("JSON")
    };
    let (header, payload) = (part(0), part(1));
    fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value, kind: &str) {
        let t: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|e| panic!("{kind} claims do not read as their type: {e}: {v}"));
        assert_eq!(
            &serde_json::to_value(&t).unwrap(),
            v,
            "{kind} claims read back unchanged"
        );
    }
    if header.get("kid").is_some() {
        match header["typ"].as_str() {
            Some("at+jwt") => {
                typed::<mandate_token::claims::AccessTokenClaims>(&payload, "access token")
            }
            Some("JWT") => typed::<mandate_token::id_token::IdTokenClaims>(&payload, "ID token"),
            Some("secevent+jwt") => typed::<mandate_token::set::SetClaims>(&payload, "SET"),
            _ => {}
        }
    }
    payload
}

/// An access token's claims as the token crate types them.
pub fn access_claims(jwt: &str) -> mandate_token::claims::AccessTokenClaims {
    serde_json::from_value(claims(jwt)).expect("access token claims")
}
