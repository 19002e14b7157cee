//! `mandate keys rotate`.

use std::sync::Arc;

use anyhow::Result;
use mandate_core::registry;
use mandate_core::settings::Settings;
use mandate_core::store::Store;
use serde_json::json;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum KeysCmd {
    /// New signing keys for a tenant; old ones stay published until their tokens expire.
    Rotate {
        #[arg(long)]
        tenant: String,
    },
}

pub async fn run(
    cmd: KeysCmd,
    store: &Arc<dyn Store>,
    settings: &Settings,
    json_out: bool,
) -> Result<()> {
    let KeysCmd::Rotate { tenant } = cmd;
    let kids = registry::rotate_keys(store.as_ref(), &tenant, settings, CLI_ACTOR).await?;
    print(
        json_out,
        json!({"tenant": tenant, "new_kids": kids}),
        || format!("rotated keys of {tenant}: {}", kids.join(", ")),
    );
    Ok(())
}
