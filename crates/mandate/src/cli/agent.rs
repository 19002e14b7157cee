//! `mandate agent create|list|show|suspend|resume|delete`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::agents::{self, AgentSpec, CibaSpec};
use mandate_core::domain::agents::{Agent, AgentStatus};
use mandate_core::store::Store;
use serde_json::Value;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum AgentCmd {
    /// Register an agent; prints its id (its client_id) and, with --generate-secret, the secret
    /// (once).
    Create(Box<CreateArgs>),
    /// Every agent of a tenant.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// One agent.
    Show {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Stop an agent: every token it holds is inactive at once, until resumed.
    Suspend {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Let a suspended agent act again.
    Resume {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Delete an agent for good: its tokens die and its mandates are revoked.
    Delete {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    name: String,
    /// The owning user's username.
    #[arg(
        long,
        required_unless_present = "tenant_owned",
        conflicts_with = "tenant_owned"
    )]
    owner: Option<String>,
    /// Owned by the tenant rather than a person.
    #[arg(long)]
    tenant_owned: bool,
    #[arg(long)]
    provider: Option<String>,
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    version: Option<String>,
    /// The most it may ever be granted (repeatable).
    #[arg(long = "scope-ceiling", required = true)]
    scope_ceiling: Vec<String>,
    /// Its public key (JWK or JWK Set, JSON file): authenticates with private_key_jwt.
    #[arg(
        long,
        required_unless_present = "generate_secret",
        conflicts_with = "generate_secret"
    )]
    jwk_file: Option<PathBuf>,
    /// Authenticate with a generated secret instead of a key.
    #[arg(long)]
    generate_secret: bool,
    /// Issue tokens only with a DPoP proof.
    #[arg(long)]
    require_dpop: bool,
    /// A redirect URI (repeatable): the agent's client may then also run the authorization
    /// code flow, where the person approves a mandate on the consent page.
    #[arg(long = "redirect-uri")]
    redirect_uri: Vec<String>,
    /// Let the agent make CIBA backchannel requests, with this token delivery mode (`poll` or
    /// `ping`).
    #[arg(long = "ciba-mode", value_parser = ["poll", "ping"])]
    ciba_mode: Option<String>,
    /// Where CIBA pings go (ping mode): https, or http on a loopback address.
    #[arg(long = "ciba-notification-endpoint", requires = "ciba_mode")]
    ciba_notification_endpoint: Option<String>,
}

fn show(a: &Agent) -> Value {
    a.admin_view()
}

fn line(a: &Agent) -> String {
    format!(
        "{} {} [{}] ceiling={:?}{}",
        a.id,
        a.name,
        a.status.as_str(),
        a.scope_ceiling.to_string(),
        a.owner_user_id
            .as_ref()
            .map(|o| format!(" owner={o}"))
            .unwrap_or_default()
    )
}

pub async fn run(cmd: AgentCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    let store = store.as_ref();
    let status_change = |tenant: String, id: String, status: AgentStatus| async move {
        let a = agents::set_agent_status(store, &tenant, &id, status, CLI_ACTOR).await?;
        print(json_out, show(&a), || line(&a));
        Ok::<(), anyhow::Error>(())
    };
    match cmd {
        AgentCmd::Create(c) => {
            let c = *c;
            let jwk = match &c.jwk_file {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    Some(
                        serde_json::from_str::<Value>(&text)
                            .with_context(|| format!("{} is not a JSON JWK", path.display()))?,
                    )
                }
            };
            if jwk.is_none() && !c.generate_secret {
                bail!("give --jwk-file or --generate-secret");
            }
            let (a, secret) = agents::create_agent_with_ciba(
                store,
                &c.tenant,
                AgentSpec {
                    name: c.name,
                    owner_username: c.owner,
                    provider: c.provider,
                    model: c.model,
                    version: c.version,
                    scope_ceiling: c.scope_ceiling,
                    jwk,
                    require_dpop: c.require_dpop,
                    redirect_uris: c.redirect_uri,
                },
                c.ciba_mode.map(|mode| CibaSpec {
                    mode,
                    notification_endpoint: c.ciba_notification_endpoint,
                }),
                CLI_ACTOR,
            )
            .await?;
            let mut v = show(&a);
            v["client_id"] = a.id.clone().into();
            if let Some(reg) = store.ciba_registration(&a.tenant_id, &a.id).await? {
                v["backchannel_token_delivery_mode"] = reg.mode.as_str().into();
                v["backchannel_client_notification_endpoint"] = reg.notification_endpoint.into();
            }
            if let Some(s) = &secret {
                v["client_secret"] = s.clone().into();
            }
            print(json_out, v, || match &secret {
                Some(s) => format!("created agent {}\nclient_secret: {s}", line(&a)),
                None => format!("created agent {}", line(&a)),
            });
        }
        AgentCmd::List { tenant } => {
            let all = agents::list_agents(store, &tenant).await?;
            print(
                json_out,
                Value::Array(all.iter().map(show).collect()),
                || all.iter().map(line).collect::<Vec<_>>().join("\n"),
            );
        }
        AgentCmd::Show { tenant, id } => {
            let a = agents::agent(store, &tenant, &id).await?;
            print(json_out, show(&a), || line(&a));
        }
        AgentCmd::Suspend { tenant, id } => {
            status_change(tenant, id, AgentStatus::Suspended).await?
        }
        AgentCmd::Resume { tenant, id } => status_change(tenant, id, AgentStatus::Active).await?,
        AgentCmd::Delete { tenant, id } => status_change(tenant, id, AgentStatus::Deleted).await?,
    }
    Ok(())
}
