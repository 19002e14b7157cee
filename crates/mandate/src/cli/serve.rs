//! `mandate serve`: open the store, make sure the default tenant exists, and serve HTTP(S)
//! until SIGTERM or Ctrl-C, then drain.

use std::sync::Arc;

use anyhow::{Context, Result};
use mandate_core::Provider;
use mandate_server::{HttpConfig, Templates, TlsFiles, TrustedProxies};

use crate::config::{self, FileConfig, ServeArgs, StoreLocation};

pub async fn run(args: &ServeArgs, file: &FileConfig, location: StoreLocation) -> Result<()> {
    let started = std::time::Instant::now();
    let cfg = config::serve_config(args, file)?;
    init_tracing(cfg.log_json);
    mandate_core::crypto::secret::password::configure(cfg.hash_limits);
    let trusted = TrustedProxies::parse(&cfg.trusted_proxies).map_err(anyhow::Error::msg)?;
    let templates = Arc::new(
        Templates::new(cfg.templates_dir.clone())
            .map_err(anyhow::Error::msg)
            .context("cannot load templates")?,
    );
    let sql = super::open_sql(location).await?;
    let store: Arc<dyn mandate_core::store::Store> = sql.clone();
    let mut provider = Provider::new(
        store.clone(),
        cfg.settings.clone(),
        &cfg.public_url,
        cfg.cache_ttl,
    );
    if let Some(mail) = cfg.mail.clone() {
        let mail_templates =
            mandate_server::mail::MailTemplates::new(cfg.templates_dir.clone(), templates.clone())
                .map_err(anyhow::Error::msg)
                .context("cannot load mail templates")?;
        let queue = mandate_server::mail::start(mail, mail_templates, store.clone())
            .map_err(anyhow::Error::msg)
            .context("cannot set up mail")?;
        provider = provider.with_mailer(queue);
    }
    let provider = Arc::new(provider);
    mandate_server::ssf::push::spawn(provider.clone());
    let state = mandate_server::state(
        provider,
        sql,
        HttpConfig {
            public_url: cfg.public_url.clone(),
            trusted_proxies: trusted,
        },
        templates,
    );
    let listener = std::net::TcpListener::bind(&cfg.listen)
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    spawn_purger(store);
    tracing::info!(%addr, public_url = %cfg.public_url, startup_ms = started.elapsed().as_millis() as u64, "mandate listening");
    let tls = cfg.tls.map(|(cert, key)| TlsFiles { cert, key });
    mandate_server::serve(state, listener, tls, cfg.limits, shutdown_signal())
        .await
        .context("server failed")?;
    tracing::info!("mandate stopped");
    Ok(())
}

/// Standard error that never fails: a log line that cannot be written (a closed pipe, a full
/// disk) is dropped, so logging can neither abort nor stall the server, its shutdown included.
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MANDATE_LOG")
        .unwrap_or_else(|_| "info".into());
    // Text logs of untrusted data are escaped by the formatter (control characters, ANSI
    // sequences, line breaks); JSON logs by JSON string encoding.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false)
        .with_writer(|| LossyStderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Delete expired artefacts once a minute.
fn spawn_purger(store: Arc<dyn mandate_core::store::Store>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            match store.purge_expired(mandate_core::time::now()).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
