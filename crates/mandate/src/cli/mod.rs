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
    let location = config::store_location(&cli.storage, &file);
    match cli.command {
        Command::Serve(args) => serve::run(&args, &file, location).await,
        Command::Tenant(c) => tenant::run(c, &open(location).await?, cli.json).await,
        Command::User(c) => user::run(c, &open(location).await?, cli.json).await,
        Command::Client(c) => client::run(c, &open(location).await?, cli.json).await,
        Command::Audit(c) => audit::run(c, &open(location).await?, cli.json).await,
        Command::Agent(c) => agent::run(c, &open(location).await?, cli.json).await,
        Command::Mandate(c) => mandate::run(c, &open(location).await?, cli.json).await,
        Command::Authz(c) => authz::run(c, &open(location).await?, cli.json).await,
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

/// Open the store (running migrations) and make sure the default tenant exists.
pub async fn open(location: StoreLocation) -> Result<Arc<dyn Store>> {
    let store = match &location {
        StoreLocation::Dir(d) => SqlStore::open_dir(d)
            .await
            .with_context(|| format!("cannot open data directory {}", d.display()))?,
        StoreLocation::Url(u) => SqlStore::connect(u)
            .await
            .context("cannot connect to the database")?,
    };
    let store: Arc<dyn Store> = Arc::new(store);
    mandate_core::admin::ensure_default_tenant(store.as_ref())
        .await
        .context("cannot create the default tenant")?;
    Ok(store)
}

/// Print either JSON or human text.
pub fn print(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}
