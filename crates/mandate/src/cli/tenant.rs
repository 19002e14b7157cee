//! `mandate tenant create|list`.

use std::sync::Arc;

use anyhow::{Context, Result};
use mandate_core::admin;
use mandate_core::keys::Alg;
use mandate_core::store::Store;
use serde_json::json;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum TenantCmd {
    /// Create a tenant (its own issuer, keys, users and clients).
    Create {
        name: String,
        /// Signing algorithm of access tokens: ES256 (default), EdDSA, RS256, PS256.
        #[arg(long, default_value = "ES256")]
        access_token_alg: String,
    },
    /// List tenants.
    List,
}

pub async fn run(cmd: TenantCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    match cmd {
        TenantCmd::Create {
            name,
            access_token_alg,
        } => {
            let alg = Alg::parse(&access_token_alg).with_context(|| {
                format!("unsupported algorithm {access_token_alg:?} (ES256, EdDSA, RS256, PS256)")
            })?;
            let t = admin::create_tenant(store.as_ref(), &name, alg, CLI_ACTOR).await?;
            print(json_out, json!({"id": t.id, "name": t.name}), || {
                format!("created tenant {}", t.name)
            });
        }
        TenantCmd::List => {
            let ts = store.list_tenants().await?;
            let v: Vec<_> = ts
                .iter()
                .map(|t| json!({"id": t.id, "name": t.name, "created_at": t.created_at}))
                .collect();
            print(json_out, json!(v), || {
                ts.iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
