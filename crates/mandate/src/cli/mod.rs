//! Command implementations.

pub mod agent;
pub mod audit;
pub mod authz;
pub mod client;
pub mod keys;
pub mod mandate;
pub mod serve;
pub mod tenant;
pub mod user;

use std::sync::Arc;

use anyhow::{Context, Result};
use mandate_core::store::Store;
use mandate_store::SqlStore;

use crate::config::{self, FileConfig, StoreLocation};
use crate::{Cli, Command};

/// Who admin commands are recorded as in the audit trail.
pub const CLI_ACTOR: &str = "cli";

pub async fn run(cli: Cli) -> Result<()> {
    let file = FileConfig::load(cli.storage.config.as_deref())?;
    mandate_core::outbound::set_allow_loopback(
        cli.storage.dev_allow_loopback_outbound || file.dev_allow_loopback_outbound,
    );
    let location = config::store_location(&cli.storage, &file);
    if !matches!(cli.command, Command::Serve(_) | Command::Init) {
        existing(&location)?;
    }
    match cli.command {
        Command::Serve(args) => serve::run(&args, &file, location).await,
        Command::Init => init(location, cli.json).await,
        Command::Tenant(c) => tenant::run(c, &open(location).await?, cli.json).await,
        Command::User(c) => user::run(c, &open(location).await?, cli.json).await,
        Command::Client(c) => client::run(c, &open(location).await?, cli.json).await,
        Command::Audit(c) => audit::run(c, &open(location).await?, cli.json).await,
        Command::Agent(c) => agent::run(c, &open(location).await?, cli.json).await,
        Command::Mandate(c) => mandate::run(c, &open(location).await?, cli.json).await,
        Command::Authz(c) => {
            let store = open_sql(location).await?;
            authz::run(c, &(store.clone() as Arc<dyn Store>), store, cli.json).await
        }
        Command::Keys(c) => {
            keys::run(
                c,
                &open(location).await?,
                &config::token_settings(&file)?,
                cli.json,
            )
            .await
        }
    }
}

/// Administrative commands act on existing data only: a mistyped or relative data directory
/// must not silently become a new, empty one.
fn existing(location: &StoreLocation) -> Result<()> {
    let StoreLocation::Dir(d) = location else {
        return Ok(());
    };
    if d.join(mandate_store::SQLITE_FILE).is_file() {
        return Ok(());
    }
    let shown = std::path::absolute(d).unwrap_or_else(|_| d.clone());
    anyhow::bail!(
        "no Mandate data in {} (looked for {}); point --data-dir or MANDATE_DATA_DIR at the \
         server's data directory (or --database-url for PostgreSQL), or create one with \
         `mandate init` or `mandate serve`",
        shown.display(),
        mandate_store::SQLITE_FILE
    )
}

/// `mandate init`: create the data directory (or the PostgreSQL tables) and the default tenant.
async fn init(location: StoreLocation, json: bool) -> Result<()> {
    let shown = match &location {
        StoreLocation::Dir(d) => std::path::absolute(d)
            .unwrap_or_else(|_| d.clone())
            .display()
            .to_string(),
        StoreLocation::Url(_) => "the PostgreSQL database".to_string(),
    };
    open(location).await?;
    print(json, serde_json::json!({"initialized": shown}), || {
        format!("initialized {shown}")
    });
    Ok(())
}

/// Open the store (running migrations) and make sure the default tenant exists.
pub async fn open(location: StoreLocation) -> Result<Arc<dyn Store>> {
    Ok(open_sql(location).await?)
}

/// [`open`], keeping the concrete store: it also holds the authorization data
/// ([`mandate_authz::AuthzStore`]), which the core's [`Store`] does not include.
pub async fn open_sql(location: StoreLocation) -> Result<Arc<SqlStore>> {
    let store = match &location {
        StoreLocation::Dir(d) => SqlStore::open_dir(d)
            .await
            .with_context(|| format!("cannot open data directory {}", d.display()))?,
        StoreLocation::Url(u) => SqlStore::connect(u)
            .await
            .context("cannot connect to the database")?,
    };
    let store = Arc::new(store);
    mandate_core::registry::ensure_default_tenant(store.as_ref())
        .await
        .context("cannot create the default tenant")?;
    Ok(store)
}

/// Print either JSON or human text.
/// Print either JSON or human text. A closed standard output (`| head`) is not an error
/// worth a panic: the rest of the output is dropped.
pub fn print(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    use std::io::Write;
    let line = if json { value.to_string() } else { text() };
    let _ = writeln!(std::io::stdout(), "{line}");
}
