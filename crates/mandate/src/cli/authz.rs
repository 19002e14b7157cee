//! `mandate authz model write|show`, `mandate authz tuple write|delete|read`,
//! `mandate authz check`, `mandate authz policy set` (rules in `mandate_authz::admin`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mandate_authz::admin as authz_admin;
use mandate_authz::{CheckRequest, Pdp, ReadFilter, Tuple};
use mandate_core::audit::Principal;
use mandate_core::store::Store;
use serde_json::json;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum AuthzCmd {
    /// Authorization models (OpenFGA DSL or JSON).
    #[command(subcommand)]
    Model(ModelCmd),
    /// Relationship tuples.
    #[command(subcommand)]
    Tuple(TupleCmd),
    /// Does USER have RELATION on OBJECT?
    Check {
        #[arg(long)]
        tenant: String,
        /// `type:id`, `type:*` or `type:id#relation`.
        #[arg(long)]
        user: String,
        #[arg(long)]
        relation: String,
        /// `type:id`.
        #[arg(long)]
        object: String,
    },
    /// Cedar runtime policy.
    #[command(subcommand)]
    Policy(PolicyCmd),
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelCmd {
    /// Write a new model version from a file (DSL, or JSON when it starts with `{`).
    Write {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
    },
    /// Print the current model as DSL (JSON with --json).
    Show {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct TupleArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    relation: String,
    #[arg(long)]
    object: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum TupleCmd {
    /// Write one tuple.
    Write(TupleArgs),
    /// Delete one tuple.
    Delete(TupleArgs),
    /// Read tuples matching the filters.
    Read {
        #[arg(long)]
        tenant: String,
        /// `type` or `type:id`.
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        relation: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Upload a Cedar policy set (and optionally a Cedar schema); refused with Cedar's
    /// diagnostics when invalid.
    Set {
        #[arg(long)]
        tenant: String,
        file: PathBuf,
        #[arg(long)]
        schema: Option<PathBuf>,
    },
}

async fn tenant_id(store: &Arc<dyn Store>, name: &str) -> Result<String> {
    Ok(store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("tenant {name} not found"))?
        .id)
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn run(
    cmd: AuthzCmd,
    store: &Arc<dyn Store>,
    authz_store: Arc<dyn mandate_authz::AuthzStore>,
    json_out: bool,
) -> Result<()> {
    let pdp = Pdp::new(authz_store, Duration::ZERO);
    let actor = Principal::Admin {
        id: CLI_ACTOR.into(),
    };
    let now = mandate_core::time::now();
    match cmd {
        AuthzCmd::Model(ModelCmd::Write { tenant, file }) => {
            let tid = tenant_id(store, &tenant).await?;
            let id =
                authz_admin::write_model(&pdp, store.as_ref(), &tid, &read(&file)?, &actor, now)
                    .await?;
            print(json_out, json!({"authorization_model_id": id}), || {
                format!("wrote model {id}")
            });
        }
        AuthzCmd::Model(ModelCmd::Show { tenant }) => {
            let tid = tenant_id(store, &tenant).await?;
            let (id, model) = pdp.current_model(&tid).await?;
            print(
                json_out,
                json!({"id": id, "authorization_model": model.to_json()}),
                || model.to_dsl(),
            );
        }
        AuthzCmd::Tuple(c @ (TupleCmd::Write(_) | TupleCmd::Delete(_))) => {
            let (delete, t) = match c {
                TupleCmd::Write(t) => (false, t),
                TupleCmd::Delete(t) => (true, t),
                TupleCmd::Read { .. } => unreachable!("matched above"),
            };
            let tid = tenant_id(store, &t.tenant).await?;
            let tuple = Tuple::new(t.object, t.relation, t.user);
            let (w, d) = if delete {
                (vec![], vec![tuple])
            } else {
                (vec![tuple], vec![])
            };
            let revision =
                authz_admin::write_tuples(&pdp, store.as_ref(), &tid, &w, &d, &actor).await?;
            print(json_out, json!({"revision": revision}), || {
                format!("revision {revision}")
            });
        }
        AuthzCmd::Tuple(TupleCmd::Read {
            tenant,
            object,
            relation,
            user,
        }) => {
            let tid = tenant_id(store, &tenant).await?;
            let (object_type, object_id) = match object.as_deref() {
                None => (None, None),
                Some(o) => match o.split_once(':') {
                    Some((t, id)) => (Some(t.to_string()), Some(id.to_string())),
                    None => (Some(o.to_string()), None),
                },
            };
            let tuples = pdp
                .read_tuples(
                    &tid,
                    &ReadFilter {
                        object_type,
                        object_id,
                        relation,
                        user,
                    },
                    None,
                )
                .await?;
            print(json_out, json!(tuples), || {
                tuples.iter().map(Tuple::key).collect::<Vec<_>>().join("\n")
            });
        }
        AuthzCmd::Check {
            tenant,
            user,
            relation,
            object,
        } => {
            let tid = tenant_id(store, &tenant).await?;
            let allowed = pdp
                .check(&tid, &CheckRequest::new(object, relation, user), None, None)
                .await?;
            print(json_out, json!({"allowed": allowed}), || {
                if allowed { "allowed" } else { "denied" }.to_string()
            });
        }
        AuthzCmd::Policy(PolicyCmd::Set {
            tenant,
            file,
            schema,
        }) => {
            let tid = tenant_id(store, &tenant).await?;
            let schema = schema.as_ref().map(read).transpose()?;
            let version = authz_admin::set_policy(
                &pdp,
                store.as_ref(),
                &tid,
                &read(&file)?,
                schema.as_deref(),
                &actor,
                now,
            )
            .await?;
            print(json_out, json!({"version": version}), || {
                format!("policy version {version}")
            });
        }
    }
    Ok(())
}
