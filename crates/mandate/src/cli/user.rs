//! `mandate user create|erase|grant-role|revoke-role|roles|methods|reset-second-factor|remove-passkey`.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::access::roles::{self, RoleActor};
use mandate_core::audit::{Principal, RequestMeta};
use mandate_core::login::second_factor;
use mandate_core::provider::Provider;
use mandate_core::registry;
use mandate_core::settings::Settings;
use mandate_core::store::Store;
use mandate_core::time::format_instant;
use serde_json::json;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Erase a user (GDPR Art. 17): the account, sessions, consents, tokens and the personal
    /// data of their audit records. The audit chain still verifies afterwards.
    Erase {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
    },
    /// Give a person a role: `admin` (the admin API, AuthZEN and SSF management with a token
    /// of a client registered with that scope) or `auditor` (reading the audit log only).
    GrantRole {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// `admin` or `auditor`.
        #[arg(long)]
        role: String,
    },
    /// Take a role away; the person's next admin API request is refused.
    RevokeRole {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// `admin` or `auditor`.
        #[arg(long)]
        role: String,
    },
    /// List the roles people hold in a tenant.
    Roles {
        #[arg(long)]
        tenant: String,
    },
    /// Show how a person can sign in: password, passkeys, authenticator app, recovery codes
    /// left (never a secret).
    Methods {
        username: String,
        #[arg(long)]
        tenant: String,
    },
    /// Reset a person's second factor (a lost phone): their authenticator app and recovery
    /// codes are removed; under a `required` policy they set up a new one at their next
    /// sign-in.
    ResetSecondFactor {
        username: String,
        #[arg(long)]
        tenant: String,
    },
    /// Remove one of a person's passkeys (by the id `mandate user methods` shows), unless it is
    /// their only way to sign in.
    RemovePasskey {
        username: String,
        id: String,
        #[arg(long)]
        tenant: String,
    },
}

/// The tenant as the sign-in rules see it (no server: the public URL is not used).
async fn tenant_ctx(
    store: &Arc<dyn Store>,
    name: &str,
) -> Result<(Provider<dyn Store>, Arc<mandate_core::TenantCtx>)> {
    let p = Provider::new(
        store.clone(),
        Settings::default(),
        "http://localhost",
        std::time::Duration::ZERO,
    );
    let t = p
        .tenant(name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_context(|| format!("tenant {name} not found"))?;
    Ok((p, t))
}

fn admin() -> Principal {
    Principal::Admin {
        id: CLI_ACTOR.to_string(),
    }
}

async fn tenant_id(store: &Arc<dyn Store>, name: &str) -> Result<String> {
    match store.tenant_by_name(name).await? {
        Some(t) => Ok(t.id),
        None => bail!("tenant {name} not found"),
    }
}

pub async fn run(cmd: UserCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    match cmd {
        UserCmd::Create {
            tenant,
            username,
            email,
            password_stdin: _,
        } => {
            let mut pw = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut pw)
                .context("cannot read the password from standard input")?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            if pw.is_empty() {
                bail!("no password on standard input");
            }
            let u = registry::create_user(
                store.as_ref(),
                &tenant,
                &username,
                email.as_deref(),
                pw,
                CLI_ACTOR,
            )
            .await?;
            print(
                json_out,
                json!({"id": u.id, "username": u.username, "tenant": tenant}),
                || format!("created user {} (sub {})", u.username, u.id),
            );
        }
        UserCmd::Erase { tenant, username } => {
            let id = registry::erase_user(store.as_ref(), &tenant, &username, CLI_ACTOR).await?;
            print(
                json_out,
                json!({"erased": id, "username": username, "tenant": tenant}),
                || format!("erased user {username} (sub {id})"),
            );
        }
        UserCmd::GrantRole {
            tenant,
            username,
            role,
        } => {
            let role = roles::parse_role(&role)?;
            let tid = tenant_id(store, &tenant).await?;
            let meta = RequestMeta::default();
            let new =
                roles::grant(store.as_ref(), &tid, &username, role, &cli_actor(&meta)).await?;
            print(
                json_out,
                json!({"username": username, "role": role.as_str(), "tenant": tenant, "granted": new}),
                || match new {
                    true => format!("granted role {} to {username}", role.as_str()),
                    false => format!("{username} already holds role {}", role.as_str()),
                },
            );
        }
        UserCmd::RevokeRole {
            tenant,
            username,
            role,
        } => {
            let role = roles::parse_role(&role)?;
            let tid = tenant_id(store, &tenant).await?;
            let meta = RequestMeta::default();
            roles::revoke(store.as_ref(), &tid, &username, role, &cli_actor(&meta)).await?;
            print(
                json_out,
                json!({"username": username, "role": role.as_str(), "tenant": tenant, "revoked": true}),
                || format!("revoked role {} from {username}", role.as_str()),
            );
        }
        UserCmd::Methods { username, tenant } => {
            let (p, t) = tenant_ctx(store, &tenant).await?;
            let view = second_factor::methods_of(&p, &t, &username).await?;
            print(json_out, json!(view), || {
                let mut out = vec![format!(
                    "password: {}",
                    if view.password { "yes" } else { "no" }
                )];
                for k in &view.passkeys {
                    out.push(format!(
                        "passkey {} \"{}\": created {}, last used {}",
                        k.id,
                        k.name,
                        format_instant(k.created_at),
                        k.last_used_at.map_or("never".into(), format_instant)
                    ));
                }
                out.push(match view.totp_enrolled_at {
                    Some(at) => format!("authenticator app: enrolled {}", format_instant(at)),
                    None => "authenticator app: none".into(),
                });
                out.push(format!("recovery codes left: {}", view.recovery_codes_left));
                out.join("\n")
            });
        }
        UserCmd::ResetSecondFactor { username, tenant } => {
            let (p, t) = tenant_ctx(store, &tenant).await?;
            let meta = RequestMeta::default();
            second_factor::reset(&p, &t, &username, admin(), &meta).await?;
            print(
                json_out,
                json!({"username": username, "tenant": tenant, "second_factor": "reset"}),
                || format!("removed {username}'s authenticator app and recovery codes"),
            );
        }
        UserCmd::RemovePasskey {
            username,
            id,
            tenant,
        } => {
            let (p, t) = tenant_ctx(store, &tenant).await?;
            let meta = RequestMeta::default();
            second_factor::remove_passkey(&p, &t, &username, &id, admin(), &meta).await?;
            print(
                json_out,
                json!({"username": username, "tenant": tenant, "passkey": id, "removed": true}),
                || format!("removed passkey {id} of {username}"),
            );
        }
        UserCmd::Roles { tenant } => {
            let tid = tenant_id(store, &tenant).await?;
            let all = roles::list(store.as_ref(), &tid).await?;
            print(json_out, json!({"roles": all}), || {
                all.iter()
                    .map(|r| {
                        format!(
                            "{}\t{}",
                            r["username"].as_str().unwrap_or("(erased)"),
                            r["role"].as_str().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}

fn cli_actor(meta: &RequestMeta) -> RoleActor<'_> {
    RoleActor {
        principal: Principal::Admin {
            id: CLI_ACTOR.to_string(),
        },
        client_id: None,
        meta,
    }
}
