//! `mandate mandate create|list|revoke`.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::agents::{self, MandateSpec, MandateTerms};
use mandate_core::domain::agents::{Mandate, MandateOrigin};
use mandate_core::store::{MandateSelector, Store};
use serde_json::{Value, json};

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum MandateCmd {
    /// Record a delegation from a user to an agent.
    Create(CreateArgs),
    /// Every mandate a user gave.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
    },
    /// Revoke one mandate, every mandate of an agent, or every mandate a user gave.
    Revoke {
        #[arg(long)]
        tenant: String,
        #[arg(long, conflicts_with_all = ["agent", "user"])]
        id: Option<String>,
        #[arg(long, conflicts_with = "user")]
        agent: Option<String>,
        /// A username: all their agents lose their mandates.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    tenant: String,
    /// The person delegating (username).
    #[arg(long)]
    user: String,
    /// The agent's id.
    #[arg(long)]
    agent: String,
    /// A scope it may use (repeatable).
    #[arg(long)]
    scope: Vec<String>,
    /// RFC 8707 resource (audience) it may get tokens for (repeatable).
    #[arg(long)]
    resource: Vec<String>,
    /// RFC 9396 authorization_details, a JSON array.
    #[arg(long)]
    authorization_details: Option<String>,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    expires_in: i64,
    /// Longest lifetime of one token (seconds).
    #[arg(long, default_value_t = 300)]
    max_token_lifetime: i64,
    /// How many further agents it may be handed on to (0: none).
    #[arg(long, default_value_t = 0)]
    max_delegation_depth: u32,
    /// An action that needs fresh human approval (repeatable).
    #[arg(long)]
    approval_required: Vec<String>,
    /// Tokens issued under it may come with a refresh token.
    #[arg(long)]
    allow_refresh: bool,
}

fn show(m: &Mandate) -> Value {
    m.admin_view()
}

pub async fn run(cmd: MandateCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    let store = store.as_ref();
    match cmd {
        MandateCmd::Create(c) => {
            let details = match &c.authorization_details {
                None => vec![],
                Some(s) => mandate_core::domain::agents::parse_details(s)
                    .context("--authorization-details must be a JSON array of typed objects")?,
            };
            let m = agents::create_mandate(
                store,
                &c.tenant,
                MandateSpec {
                    username: c.user,
                    terms: MandateTerms {
                        agent_id: c.agent,
                        scopes: c.scope,
                        authorization_details: details,
                        resources: c.resource,
                        expires_in: c.expires_in,
                        max_token_lifetime: c.max_token_lifetime,
                        max_delegation_depth: c.max_delegation_depth,
                        approval_required: c.approval_required,
                        allow_refresh: c.allow_refresh,
                    },
                },
                MandateOrigin::Api,
                CLI_ACTOR,
            )
            .await?;
            print(json_out, show(&m), || format!("created mandate {}", m.id));
        }
        MandateCmd::List { tenant, user } => {
            let t = store
                .tenant_by_name(&tenant)
                .await?
                .with_context(|| format!("tenant {tenant} not found"))?;
            // Every mandate of the person, ended ones too.
            let which = agents::MandateListing {
                agent_id: None,
                include_ended: true,
            };
            let all =
                agents::person_mandates(store, &t.id, &user, &which, mandate_core::time::now())
                    .await?;
            print(
                json_out,
                Value::Array(all.iter().map(show).collect()),
                || {
                    all.iter()
                        .map(|m| {
                            format!(
                                "{} agent={} scope={:?}",
                                m.id,
                                m.agent_id,
                                m.scope.to_string()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        MandateCmd::Revoke {
            tenant,
            id,
            agent,
            user,
        } => {
            let user_id = match &user {
                None => None,
                Some(u) => {
                    let t = store
                        .tenant_by_name(&tenant)
                        .await?
                        .with_context(|| format!("tenant {tenant} not found"))?;
                    Some(
                        store
                            .user_by_username(&t.id, u)
                            .await?
                            .with_context(|| format!("user {u} not found"))?
                            .id,
                    )
                }
            };
            let which = match (&id, &agent, &user_id) {
                (Some(i), _, _) => MandateSelector::One(i),
                (_, Some(a), _) => MandateSelector::Agent(a),
                (_, _, Some(u)) => MandateSelector::User(u),
                _ => bail!("give --id, --agent or --user"),
            };
            let ids = agents::revoke_mandates_in(store, &tenant, which, CLI_ACTOR).await?;
            print(json_out, json!({"revoked": ids}), || {
                format!("revoked {} mandate(s)", ids.len())
            });
        }
    }
    Ok(())
}
