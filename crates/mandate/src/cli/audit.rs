//! `mandate audit verify|checkpoint`.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::audit::chain::{self, Checkpoint, GENESIS};
use mandate_core::store::Store;
use serde_json::json;

use super::print;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Walk a tenant's hash chain and report the first bad record (exit status 1).
    Verify {
        #[arg(long)]
        tenant: String,
        /// A head printed earlier by `mandate audit checkpoint` (SEQ:HASH): the chain must still
        /// hold that record with that hash (detects a truncated or rewritten log).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// Print the head of a tenant's chain (SEQ:HASH), to keep elsewhere as a witness.
    Checkpoint {
        #[arg(long)]
        tenant: String,
    },
}

async fn tenant_id(store: &Arc<dyn Store>, name: &str) -> Result<String> {
    Ok(store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("tenant {name} not found"))?
        .id)
}

pub async fn run(cmd: AuditCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    match cmd {
        AuditCmd::Verify { tenant, checkpoint } => {
            let checkpoint = checkpoint
                .map(|c| c.parse::<Checkpoint>())
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let id = tenant_id(store, &tenant).await?;
            let outcome = chain::verify_stored(store.as_ref(), &id, checkpoint, chain::VERIFY_PAGE)
                .await
                .context("cannot read the audit log")?;
            match outcome {
                Ok(report) => print(
                    json_out,
                    json!({
                        "ok": true,
                        "tenant": tenant,
                        "records": report.records,
                        "head": {"seq": report.head.seq, "hash": chain::hex(&report.head.hash)},
                    }),
                    || {
                        format!(
                            "ok: {} records, head {} {}",
                            report.records,
                            report.head.seq,
                            chain::hex(&report.head.hash)
                        )
                    },
                ),
                Err(broken) => {
                    if json_out {
                        println!(
                            "{}",
                            json!({
                                "ok": false,
                                "tenant": tenant,
                                "seq": broken.seq,
                                "reason": broken.reason,
                            })
                        );
                    }
                    bail!("{broken}");
                }
            }
        }
        AuditCmd::Checkpoint { tenant } => {
            let id = tenant_id(store, &tenant).await?;
            let head = store.audit_head(&id).await?.unwrap_or(Checkpoint {
                seq: 0,
                hash: GENESIS.to_vec(),
            });
            print(
                json_out,
                json!({
                    "tenant": tenant,
                    "seq": head.seq,
                    "hash": chain::hex(&head.hash),
                    "checkpoint": head.to_string(),
                }),
                || head.to_string(),
            );
        }
    }
    Ok(())
}
