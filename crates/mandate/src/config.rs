//! Settings from flags, `MANDATE_*` environment variables and an optional `mandate.toml`, in that
//! order of precedence, onto defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// Options shared by every command (where the data lives).
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Configuration file (default: ./mandate.toml when it exists).
    #[arg(long, env = "MANDATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded SQLite database [default: ./mandate-data].
    #[arg(long, env = "MANDATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); overrides the data directory.
    #[arg(long, env = "MANDATE_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Development only: let SSF pushes and CIBA notifications go to loopback addresses (and
    /// over plain http there). Never in production.
    #[arg(long, env = "MANDATE_DEV_ALLOW_LOOPBACK_OUTBOUND", global = true)]
    pub dev_allow_loopback_outbound: bool,
}

/// `serve`'s own defaults (the protocol ones are `mandate_core::settings::Settings::default`).
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_LOG_FORMAT: &str = "text";
const DEFAULT_CACHE_TTL_MS: u64 = 5000;
const DEFAULT_SMTP_TIMEOUT: u64 = 10;
/// The sender of mails written to the outbox when none is given.
const OUTBOX_FROM: &str = "Mandate <mandate@localhost>";

/// Declares each `serve` setting once: its doc (the `--help` text), flag (`--{name}` with `_` as
/// `-`), environment variable, `mandate.toml` key (`{name}`) and type. It generates the clap
/// options ([`ServeArgs`]), the file form ([`FileConfig`]) and their layering ([`Given`]: the
/// flag or its variable, else the file); [`serve_config`] applies the defaults and checks.
/// docs/configuration.md is checked against what it generates (the tests below).
macro_rules! serve_settings {
    ($( $(#[$meta:meta])* $name:ident : $ty:ty = $env:literal, )*) => {
        /// Options of `mandate serve`.
        #[derive(Debug, Clone, clap::Args)]
        pub struct ServeArgs {
            $(
                $(#[$meta])*
                #[arg(long, env = $env)]
                pub $name: Option<$ty>,
            )*
            /// Reverse proxies (IP or CIDR) whose X-Forwarded-For/-Proto are trusted; repeatable or comma-separated.
            #[arg(
                long = "trusted-proxy",
                env = "MANDATE_TRUSTED_PROXIES",
                value_delimiter = ','
            )]
            pub trusted_proxies: Vec<String>,
        }

        /// The file form of the settings: where the data lives, and every `serve` setting
        /// under its own name.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            pub data_dir: Option<PathBuf>,
            pub database_url: Option<String>,
            #[serde(default)]
            pub dev_allow_loopback_outbound: bool,
            #[serde(default)]
            pub trusted_proxies: Vec<String>,
            $( pub $name: Option<$ty>, )*
        }

        /// Each `serve` setting as given: the flag (or its variable), else the file.
        #[derive(Debug, Clone, Default)]
        struct Given {
            $( $name: Option<$ty>, )*
        }

        impl ServeArgs {
            fn given(&self, f: &FileConfig) -> Given {
                Given {
                    $( $name: self.$name.clone().or_else(|| f.$name.clone()), )*
                }
            }
        }
    };
}

serve_settings! {
    /// Address to listen on [default: 127.0.0.1:8080].
    listen: String = "MANDATE_LISTEN",
    /// Public base URL of this server [default: http://{listen}].
    public_url: String = "MANDATE_PUBLIC_URL",
    /// TLS certificate chain (PEM).
    #[arg(requires = "tls_key")]
    tls_cert: PathBuf = "MANDATE_TLS_CERT",
    /// TLS private key (PEM).
    #[arg(requires = "tls_cert")]
    tls_key: PathBuf = "MANDATE_TLS_KEY",
    /// Directory of templates overriding the built-in ones.
    templates_dir: PathBuf = "MANDATE_TEMPLATES_DIR",
    /// Access token lifetime in seconds [default: 300].
    access_token_ttl: i64 = "MANDATE_ACCESS_TOKEN_TTL",
    /// ID token lifetime in seconds [default: 3600].
    id_token_ttl: i64 = "MANDATE_ID_TOKEN_TTL",
    /// Authorization code lifetime in seconds [default: 60].
    code_ttl: i64 = "MANDATE_CODE_TTL",
    /// Refresh token lifetime in seconds [default: 2592000].
    refresh_token_ttl: i64 = "MANDATE_REFRESH_TOKEN_TTL",
    /// Require a server nonce (`DPoP-Nonce`) in DPoP proofs (RFC 9449 §8).
    dpop_require_nonce: bool = "MANDATE_DPOP_REQUIRE_NONCE",
    /// Browser session lifetime in seconds [default: 43200].
    session_ttl: i64 = "MANDATE_SESSION_TTL",
    /// Seconds within which a person must have signed in to change their sign-in methods
    /// [default: 600].
    recent_sign_in: i64 = "MANDATE_RECENT_SIGN_IN",
    /// How long tenant keys and clients are cached, in milliseconds [default: 5000].
    cache_ttl_ms: u64 = "MANDATE_CACHE_TTL_MS",
    /// Log format: text or json [default: text].
    log_format: String = "MANDATE_LOG_FORMAT",
    /// URL that gets a JSON POST (with the approval link) for every new CIBA request, so an
    /// app can notify the person.
    ciba_webhook_url: String = "MANDATE_CIBA_WEBHOOK_URL",
    /// MaxMind-format GeoIP database (GeoLite2-City or similar) for the risk signal
    /// "impossible travel" [default: none, the signal is off].
    geoip_db: PathBuf = "MANDATE_GEOIP_DB",
    /// Minimum CIBA polling interval in seconds [default: 5].
    ciba_interval: i64 = "MANDATE_CIBA_INTERVAL",
    /// Password hashes computed at once [default: number of cores].
    password_hash_concurrency: usize = "MANDATE_PASSWORD_HASH_CONCURRENCY",
    /// Logins that may wait for a hash beyond those; more get 429 [default: 4 per core].
    password_hash_queue: usize = "MANDATE_PASSWORD_HASH_QUEUE",
    /// Failed logins of one account name before each further attempt waits [default: 3].
    login_failures_before_delay: i64 = "MANDATE_LOGIN_FAILURES_BEFORE_DELAY",
    /// Failed logins of one account name before it is locked out [default: 10].
    login_failures_before_lockout: i64 = "MANDATE_LOGIN_FAILURES_BEFORE_LOCKOUT",
    /// Failed logins from one address (IPv6: /64) before each further attempt waits [default: 20].
    login_ip_failures_before_delay: i64 = "MANDATE_LOGIN_IP_FAILURES_BEFORE_DELAY",
    /// Failed logins from one address before it is locked out [default: 100].
    login_ip_failures_before_lockout: i64 = "MANDATE_LOGIN_IP_FAILURES_BEFORE_LOCKOUT",
    /// Lockout length in seconds, growing by this much per further failure [default: 60].
    login_wait_increment: i64 = "MANDATE_LOGIN_WAIT_INCREMENT",
    /// Longest lockout in seconds [default: 900].
    login_max_wait: i64 = "MANDATE_LOGIN_MAX_WAIT",
    /// Seconds after which failed logins are forgotten [default: 43200].
    login_failure_reset: i64 = "MANDATE_LOGIN_FAILURE_RESET",
    /// Seconds a client has to send request headers; also the keep-alive idle timeout [default: 5].
    header_read_timeout: u64 = "MANDATE_HEADER_READ_TIMEOUT",
    /// Seconds a client has to send a request body [default: 10].
    body_read_timeout: u64 = "MANDATE_BODY_READ_TIMEOUT",
    /// Most connections open at once; more are closed on arrival [default: 1000].
    max_connections: usize = "MANDATE_MAX_CONNECTIONS",
    /// HTTP/2 keep-alive ping interval and timeout in seconds [default: 20].
    http2_keepalive: u64 = "MANDATE_HTTP2_KEEPALIVE",
    /// SMTP server for mail: smtp://[user@]host[:port] (STARTTLS), smtps://… (implicit TLS),
    /// ?tls=none for a local relay only. A password in it only from the environment or file.
    smtp_url: String = "MANDATE_SMTP_URL",
    /// File holding the SMTP password.
    smtp_password_file: PathBuf = "MANDATE_SMTP_PASSWORD_FILE",
    /// Seconds one SMTP step (connecting, each command) may take [default: 10].
    smtp_timeout: u64 = "MANDATE_SMTP_TIMEOUT",
    /// Sender of mails, e.g. "Acme <no-reply@acme.example>" (needed with --smtp-url).
    mail_from: String = "MANDATE_MAIL_FROM",
    /// Development and tests: write each mail as an .eml file into this directory instead of
    /// sending it.
    mail_outbox: PathBuf = "MANDATE_MAIL_OUTBOX",
}

impl FileConfig {
    /// Read the named file, or `./mandate.toml` when it exists.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("mandate.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(FileConfig::default())
            }
            Err(e) => Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        }
    }
}

/// Where the store lives, resolved.
pub enum StoreLocation {
    Dir(PathBuf),
    Url(String),
}

pub fn store_location(args: &StorageArgs, file: &FileConfig) -> StoreLocation {
    match args
        .database_url
        .clone()
        .or_else(|| file.database_url.clone())
    {
        Some(url) => StoreLocation::Url(url),
        None => StoreLocation::Dir(
            args.data_dir
                .clone()
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from("mandate-data")),
        ),
    }
}

/// Token lifetimes for commands other than `serve` (e.g. how long `keys rotate` keeps old keys
/// published): environment, then file, then defaults.
pub fn token_settings(f: &FileConfig) -> Result<mandate_core::settings::Settings> {
    let env = |name: &str| -> Result<Option<i64>> {
        match std::env::var(name) {
            Ok(v) => v
                .parse()
                .map(Some)
                .with_context(|| format!("{name} must be a number of seconds")),
            Err(_) => Ok(None),
        }
    };
    let mut s = mandate_core::settings::Settings::default();
    s.access_token_ttl = env("MANDATE_ACCESS_TOKEN_TTL")?
        .or(f.access_token_ttl)
        .unwrap_or(s.access_token_ttl);
    s.id_token_ttl = env("MANDATE_ID_TOKEN_TTL")?
        .or(f.id_token_ttl)
        .unwrap_or(s.id_token_ttl);
    Ok(s)
}

/// Everything `serve` needs, resolved.
pub struct ServeConfig {
    pub listen: String,
    pub public_url: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub trusted_proxies: Vec<String>,
    pub templates_dir: Option<PathBuf>,
    pub settings: mandate_core::settings::Settings,
    pub cache_ttl: std::time::Duration,
    pub log_json: bool,
    /// The bound on password hashing.
    pub hash_limits: mandate_core::crypto::secret::password::HashLimits,
    pub limits: mandate_core::settings::HttpLimits,
    /// Where mail goes (`None`: no mail, and what needs it is not offered).
    pub mail: Option<mandate_server::mail::MailConfig>,
}

/// The mail settings: SMTP or the outbox (not both), the sender, the timeout. The SMTP
/// password comes from its file, or from the URL when that came from the environment or the
/// file (never from the command line, which every local user can read).
fn mail_config(a: &ServeArgs, g: &Given) -> Result<Option<mandate_server::mail::MailConfig>> {
    use mandate_server::mail::{MailConfig, MailTransport, SmtpSettings};
    let timeout = g.smtp_timeout.unwrap_or(DEFAULT_SMTP_TIMEOUT);
    if timeout == 0 {
        anyhow::bail!("the SMTP timeout must be positive");
    }
    let timeout = std::time::Duration::from_secs(timeout);
    let transport = match (&g.smtp_url, &g.mail_outbox) {
        (Some(_), Some(_)) => anyhow::bail!("choose one of the SMTP URL and the mail outbox"),
        (None, None) => {
            if g.mail_from.is_some() || g.smtp_password_file.is_some() {
                anyhow::bail!("mail settings given without --smtp-url or --mail-outbox");
            }
            return Ok(None);
        }
        (None, Some(dir)) => MailTransport::Outbox(dir.clone()),
        (Some(url), None) => {
            let password = match &g.smtp_password_file {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| {
                            format!("cannot read the SMTP password file {}", f.display())
                        })?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                ),
                None => None,
            };
            let s = SmtpSettings::parse(url, password).map_err(anyhow::Error::msg)?;
            let on_command_line = a.smtp_url.as_deref() == Some(url.as_str())
                && std::env::var("MANDATE_SMTP_URL").ok().as_deref() != Some(url.as_str());
            if on_command_line && url::Url::parse(url).is_ok_and(|u| u.password().is_some()) {
                anyhow::bail!(
                    "put the SMTP password in --smtp-password-file (or MANDATE_SMTP_URL), not on the command line"
                );
            }
            MailTransport::Smtp(s)
        }
    };
    let from = match (&g.mail_from, &transport) {
        (Some(f), _) => f.clone(),
        (None, MailTransport::Outbox(_)) => OUTBOX_FROM.into(),
        (None, MailTransport::Smtp(_)) => anyhow::bail!("--smtp-url needs --mail-from"),
    };
    Ok(Some(MailConfig {
        transport,
        from,
        timeout,
    }))
}

/// Check a listen address (`host:port`, IPv6 hosts in brackets) before anything is derived
/// from it, so that a typo is reported as what it is.
pub fn check_listen(listen: &str) -> Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "invalid listen address {listen:?}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::]:8080"
        )
    };
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let name_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !name_ok {
        return Err(bad());
    }
    Ok(())
}

pub fn serve_config(a: &ServeArgs, f: &FileConfig) -> Result<ServeConfig> {
    let g = a.given(f);
    let listen = g.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
    check_listen(&listen)?;
    let tls = match (g.tls_cert.clone(), g.tls_key.clone()) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key"),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = g
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{listen}"));
    let parsed = url::Url::parse(&public_url)
        .with_context(|| format!("invalid public URL {public_url:?}"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        anyhow::bail!("public URL must be http(s) without query or fragment: {public_url}");
    }
    let mut s = mandate_core::settings::Settings::default();
    s.access_token_ttl = g.access_token_ttl.unwrap_or(s.access_token_ttl);
    s.id_token_ttl = g.id_token_ttl.unwrap_or(s.id_token_ttl);
    s.code_ttl = g.code_ttl.unwrap_or(s.code_ttl);
    s.refresh_token_ttl = g.refresh_token_ttl.unwrap_or(s.refresh_token_ttl);
    s.session_ttl = g.session_ttl.unwrap_or(s.session_ttl);
    s.recent_sign_in = g.recent_sign_in.unwrap_or(s.recent_sign_in);
    s.dpop_require_nonce = g.dpop_require_nonce.unwrap_or(s.dpop_require_nonce);
    s.ciba_interval = g.ciba_interval.unwrap_or(s.ciba_interval);
    s.ciba_webhook_url = g.ciba_webhook_url.clone();
    if let Some(u) = &s.ciba_webhook_url
        && let Err(why) = mandate_core::outbound::check_url(u)
    {
        anyhow::bail!("the CIBA webhook URL {u:?} {why}");
    }
    if let Some(path) = &g.geoip_db {
        let db = mandate_core::geo::MaxMind::open(path)
            .with_context(|| format!("cannot use the GeoIP database {}", path.display()))?;
        s.geoip = Some(std::sync::Arc::new(db));
    }
    let lt = &mut s.login_throttle;
    lt.failures_before_delay = g
        .login_failures_before_delay
        .unwrap_or(lt.failures_before_delay);
    lt.failures_before_lockout = g
        .login_failures_before_lockout
        .unwrap_or(lt.failures_before_lockout);
    lt.ip_failures_before_delay = g
        .login_ip_failures_before_delay
        .unwrap_or(lt.ip_failures_before_delay);
    lt.ip_failures_before_lockout = g
        .login_ip_failures_before_lockout
        .unwrap_or(lt.ip_failures_before_lockout);
    lt.wait_increment = g.login_wait_increment.unwrap_or(lt.wait_increment);
    lt.max_wait = g.login_max_wait.unwrap_or(lt.max_wait);
    lt.failure_reset = g.login_failure_reset.unwrap_or(lt.failure_reset);
    lt.check().map_err(anyhow::Error::msg)?;
    let mut hash_limits = mandate_core::crypto::secret::password::HashLimits::default();
    if let Some(n) = g.password_hash_concurrency {
        if n == 0 {
            anyhow::bail!("the password hash concurrency must be at least 1");
        }
        hash_limits.concurrency = n;
        hash_limits.queue = 4 * n;
    }
    if let Some(q) = g.password_hash_queue {
        hash_limits.queue = q;
    }
    if s.ciba_interval <= 0 {
        anyhow::bail!("the CIBA polling interval must be positive");
    }
    for (name, v) in [
        ("access token", s.access_token_ttl),
        ("ID token", s.id_token_ttl),
        ("code", s.code_ttl),
        ("refresh token", s.refresh_token_ttl),
        ("session", s.session_ttl),
        ("recent sign-in", s.recent_sign_in),
    ] {
        if v <= 0 {
            anyhow::bail!("{name} lifetime must be positive");
        }
    }
    let mut trusted = a.trusted_proxies.clone();
    if trusted.is_empty() {
        trusted = f.trusted_proxies.clone();
    }
    let log_format = g
        .log_format
        .clone()
        .unwrap_or_else(|| DEFAULT_LOG_FORMAT.into());
    if !matches!(log_format.as_str(), "text" | "json") {
        anyhow::bail!("log format must be text or json");
    }
    let d = mandate_core::settings::HttpLimits::default();
    let limits = mandate_core::settings::HttpLimits {
        header_read_timeout: g.header_read_timeout.unwrap_or(d.header_read_timeout),
        body_read_timeout: g.body_read_timeout.unwrap_or(d.body_read_timeout),
        max_connections: g.max_connections.unwrap_or(d.max_connections),
        http2_keepalive: g.http2_keepalive.unwrap_or(d.http2_keepalive),
    };
    if limits.header_read_timeout == 0
        || limits.body_read_timeout == 0
        || limits.max_connections == 0
        || limits.http2_keepalive == 0
    {
        anyhow::bail!("HTTP timeouts and the connection limit must be positive");
    }
    let mail = mail_config(a, &g)?;
    Ok(ServeConfig {
        mail,
        listen,
        public_url: public_url.trim_end_matches('/').to_string(),
        tls,
        trusted_proxies: trusted,
        templates_dir: g.templates_dir.clone(),
        settings: s,
        cache_ttl: std::time::Duration::from_millis(g.cache_ttl_ms.unwrap_or(DEFAULT_CACHE_TTL_MS)),
        log_json: log_format == "json",
        hash_limits,
        limits,
    })
}

#[cfg(test)]
mod tests {
    //! docs/configuration.md is checked against the code: every flag of `serve` and of every
    //! command is in its table with the same environment variable and `mandate.toml` key, every
    //! key is one the file accepts, and every default it states is the one the code applies
    //! (and the one `--help` states).

    use std::collections::BTreeMap;

    use clap::{Args, FromArgMatches};

    use super::*;

    /// One row of the settings table.
    #[derive(Debug)]
    struct Row {
        flags: String,
        env: String,
        key: String,
        default: String,
    }

    fn table() -> Vec<Row> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let text = std::fs::read_to_string(path).expect("docs/configuration.md");
        text.lines()
            .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| setting"))
            .map(|l| {
                let cells: Vec<String> = l
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect();
                assert_eq!(cells.len(), 5, "a settings row has five cells: {l}");
                Row {
                    flags: cells[1].clone(),
                    env: cells[2].clone(),
                    key: cells[3].clone(),
                    default: cells[4].clone(),
                }
            })
            .collect()
    }

    /// `(long flag, env var, help)` of every argument of `serve` and of the global options.
    fn arguments() -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for cmd in [
            ServeArgs::augment_args(clap::Command::new("serve")),
            StorageArgs::augment_args(clap::Command::new("any")),
        ] {
            for a in cmd.get_arguments() {
                let Some(long) = a.get_long() else { continue };
                let env = a
                    .get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                out.push((long.to_string(), env, help));
            }
        }
        out
    }

    #[test]
    fn every_flag_is_documented_with_its_variable_and_key() {
        let rows = table();
        for (long, env, _) in arguments() {
            if long == "config" {
                continue; // how the file itself is found: in the prose above the table
            }
            let flag = format!("--{long}");
            let row = rows
                .iter()
                .find(|r| {
                    r.flags
                        .split(['`', ' ', '/'])
                        .any(|f| f == flag || format!("--{f}") == flag)
                })
                .unwrap_or_else(|| panic!("{flag} is not in docs/configuration.md"));
            let stem = env.trim_start_matches("MANDATE_");
            assert!(
                row.env.contains(&env) || row.env.contains(stem),
                "{flag}: the docs give {} where the code reads {env}",
                row.env
            );
            let key = long
                .replace('-', "_")
                .replace("trusted_proxy", "trusted_proxies");
            assert!(
                row.key.contains(&format!("`{key}`")),
                "{flag}: the docs give the key {} where the file reads `{key}`",
                row.key
            );
        }
    }

    #[test]
    fn every_documented_key_is_read_from_the_file() {
        for row in table() {
            for key in row.key.split('`').skip(1).step_by(2) {
                let err = toml::from_str::<FileConfig>(&format!("{key} = 0"))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(
                    !err.contains("unknown field"),
                    "docs/configuration.md documents the key {key}, which mandate.toml refuses"
                );
            }
        }
    }

    #[test]
    fn documented_defaults_are_the_applied_ones() {
        let args = ServeArgs::from_arg_matches(
            &ServeArgs::augment_args(clap::Command::new("serve"))
                .try_get_matches_from(["serve"])
                .expect("no arguments"),
        )
        .expect("defaults");
        // Without MANDATE_* in the environment of this test, what the code applies.
        let c = serve_config(&args, &FileConfig::default()).expect("the defaults are valid");
        let s = &c.settings;
        let lt = &s.login_throttle;
        let applied: BTreeMap<&str, String> = [
            ("listen", format!("`{}`", c.listen)),
            ("access_token_ttl", s.access_token_ttl.to_string()),
            ("id_token_ttl", s.id_token_ttl.to_string()),
            ("code_ttl", s.code_ttl.to_string()),
            ("refresh_token_ttl", s.refresh_token_ttl.to_string()),
            ("session_ttl", s.session_ttl.to_string()),
            ("recent_sign_in", s.recent_sign_in.to_string()),
            ("dpop_require_nonce", format!("`{}`", s.dpop_require_nonce)),
            ("cache_ttl_ms", c.cache_ttl.as_millis().to_string()),
            ("ciba_interval", s.ciba_interval.to_string()),
            (
                "login_failures_before_delay",
                lt.failures_before_delay.to_string(),
            ),
            (
                "login_failures_before_lockout",
                lt.failures_before_lockout.to_string(),
            ),
            (
                "login_ip_failures_before_delay",
                lt.ip_failures_before_delay.to_string(),
            ),
            (
                "login_ip_failures_before_lockout",
                lt.ip_failures_before_lockout.to_string(),
            ),
            ("login_wait_increment", lt.wait_increment.to_string()),
            ("login_max_wait", lt.max_wait.to_string()),
            ("login_failure_reset", lt.failure_reset.to_string()),
            (
                "header_read_timeout",
                c.limits.header_read_timeout.to_string(),
            ),
            ("body_read_timeout", c.limits.body_read_timeout.to_string()),
            ("max_connections", c.limits.max_connections.to_string()),
            ("http2_keepalive", c.limits.http2_keepalive.to_string()),
            ("smtp_timeout", DEFAULT_SMTP_TIMEOUT.to_string()),
        ]
        .into_iter()
        .collect();
        let rows = table();
        for (key, value) in &applied {
            let row = rows
                .iter()
                .find(|r| r.key == format!("`{key}`"))
                .unwrap_or_else(|| panic!("{key} is not in docs/configuration.md"));
            let documented = row.default.split(' ').next().unwrap_or_default();
            assert_eq!(documented, value, "{key}: documented default vs applied");
        }
        // `--help` says the same where it states a default.
        for (long, _, help) in arguments() {
            let key = long.replace('-', "_");
            if let (Some(value), Some(stated)) = (
                applied.get(key.as_str()),
                help.split("[default: ")
                    .nth(1)
                    .and_then(|h| h.split(']').next()),
            ) {
                assert_eq!(
                    stated,
                    value.trim_matches('`'),
                    "--{long}: --help states another default"
                );
            }
        }
    }
}
