//! `mandate tenant create|list|show|set`.

use std::sync::Arc;

use anyhow::{Context, Result};
use mandate_core::domain::model::SecondFactorPolicy;
use mandate_core::domain::model::TenantSettings;
use mandate_core::registry;
use mandate_core::store::Store;
use mandate_token::jwk::Alg;
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
    /// Change a tenant's settings (unnamed ones stay as they are).
    Set {
        name: String,
        /// Let non-agent clients registered for token exchange impersonate a person (a token
        /// with no `act`, recorded as impersonation): on or off.
        #[arg(long, value_parser = ["on", "off"])]
        impersonation: Option<String>,
        /// An RFC 9396 authorization_details type the tenant accepts (repeatable; replaces the
        /// list). With none configured, any type is accepted.
        #[arg(long = "authorization-details-type")]
        authorization_details_type: Vec<String>,
        /// Accept any authorization_details type again.
        #[arg(long, conflicts_with = "authorization_details_type")]
        any_authorization_details_type: bool,
        /// Shortest password accepted when a password is set, in characters (8-256).
        #[arg(long)]
        min_password_length: Option<usize>,
        #[command(flatten)]
        branding: Box<BrandingArgs>,
        /// When sign-ins need a second factor: `optional` (people who enrolled one, and the
        /// clients listed with --second-factor-client) or `required` (everyone; a person with
        /// none sets up an authenticator app at their next sign-in).
        #[arg(long, value_parser = ["optional", "required"])]
        second_factor: Option<String>,
        /// A client whose sign-ins always need a second factor (repeatable; replaces the list).
        #[arg(long = "second-factor-client")]
        second_factor_client: Vec<String>,
        /// Empty the list of clients that always need a second factor.
        #[arg(long, conflicts_with = "second_factor_client")]
        no_second_factor_clients: bool,
        /// Offer a one-time code mailed to a person's verified address as a second factor
        /// (when mail is configured): on or off. Off by default: with "forgot password" by mail
        /// too, the mailbox alone opens the account.
        #[arg(long, value_parser = ["on", "off"])]
        email_code: Option<String>,
    },
    /// Show a tenant with its settings.
    Show { name: String },
    /// Show or change a tenant's risk policy (docs/risk.md); without options, show it.
    Risk {
        name: String,
        /// A rule SIGNAL=ACTION[@THRESHOLD] (repeatable): replaces the rules on that signal
        /// (several on one signal in one command are all kept). Actions for people: allow,
        /// second_factor, passkey, block; for agents: allow, approval, suspend.
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Start again from the default policy (before any --rule).
        #[arg(long)]
        reset: bool,
        /// Turn risk scoring on or off.
        #[arg(long, value_parser = ["on", "off"])]
        scoring: Option<String>,
        /// Seconds over which failed sign-ins count [default: 3600].
        #[arg(long)]
        failure_window: Option<i64>,
        /// Seconds an address waits after a block [default: 900].
        #[arg(long)]
        block_seconds: Option<i64>,
        /// Sign-ins (or an agent's requests) seen before the time signals speak [default: 10].
        #[arg(long)]
        min_history: Option<usize>,
        /// Seconds over which an agent's token requests count [default: 600].
        #[arg(long)]
        agent_window: Option<i64>,
    },
}

/// What pages show for the tenant (see docs/pages.md).
#[derive(Debug, clap::Args)]
pub struct BrandingArgs {
    /// The name pages show for the tenant (header, titles, "this organization").
    #[arg(long)]
    display_name: Option<String>,
    /// The logo: an https URL, or a base64 data:image/… URL of at most 32 KiB.
    #[arg(long)]
    logo_url: Option<String>,
    /// The colour of primary buttons, links and focus rings, as #rrggbb.
    #[arg(long)]
    primary_color: Option<String>,
    /// The page background colour, as #rrggbb (text must contrast 4.5:1 with it).
    #[arg(long)]
    background_color: Option<String>,
    /// The text colour, as #rrggbb.
    #[arg(long)]
    text_color: Option<String>,
    /// An extra stylesheet (https URL) loaded after Mandate's own.
    #[arg(long)]
    stylesheet_url: Option<String>,
    /// A plain-language description of a scope in a language, shown on consent and account
    /// pages: SCOPE LANG TEXT (repeatable; e.g. calendar.read de "Ihren Kalender sehen").
    #[arg(long, num_args = 3, value_names = ["SCOPE", "LANG", "TEXT"], action = clap::ArgAction::Append)]
    scope_description: Vec<String>,
    /// Remove a setting: display-name, logo-url, primary-color, background-color, text-color,
    /// stylesheet-url, branding (all of these) or scope-descriptions (repeatable).
    #[arg(long, value_parser = [
        "display-name", "logo-url", "primary-color", "background-color", "text-color",
        "stylesheet-url", "branding", "scope-descriptions",
    ])]
    clear: Vec<String>,
}

impl BrandingArgs {
    /// Apply the clearing first, then the values given.
    fn apply(self, settings: &mut TenantSettings) {
        let b = &mut settings.branding;
        for c in &self.clear {
            match c.as_str() {
                "display-name" => b.display_name = None,
                "logo-url" => b.logo_url = None,
                "primary-color" => b.primary_color = None,
                "background-color" => b.background_color = None,
                "text-color" => b.text_color = None,
                "stylesheet-url" => b.stylesheet_url = None,
                "branding" => *b = Default::default(),
                _ => settings.scope_descriptions.clear(),
            }
        }
        let b = &mut settings.branding;
        for (field, value) in [
            (&mut b.display_name, self.display_name),
            (&mut b.logo_url, self.logo_url),
            (&mut b.primary_color, self.primary_color),
            (&mut b.background_color, self.background_color),
            (&mut b.text_color, self.text_color),
            (&mut b.stylesheet_url, self.stylesheet_url),
        ] {
            if value.is_some() {
                *field = value;
            }
        }
        for d in self.scope_description.chunks_exact(3) {
            settings
                .scope_descriptions
                .entry(d[0].clone())
                .or_default()
                .insert(d[1].clone(), d[2].clone());
        }
    }
}

fn show(t: &mandate_core::domain::model::Tenant) -> serde_json::Value {
    json!({"id": t.id, "name": t.name, "created_at": t.created_at, "settings": t.settings})
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
            let t = registry::create_tenant(store.as_ref(), &name, alg, CLI_ACTOR).await?;
            print(json_out, json!({"id": t.id, "name": t.name}), || {
                format!("created tenant {}", t.name)
            });
        }
        TenantCmd::Set {
            name,
            impersonation,
            authorization_details_type,
            any_authorization_details_type,
            min_password_length,
            branding,
            second_factor,
            second_factor_client,
            no_second_factor_clients,
            email_code,
        } => {
            let t = store
                .tenant_by_name(&name)
                .await?
                .with_context(|| format!("tenant {name} not found"))?;
            let mut settings = t.settings;
            if let Some(v) = impersonation {
                settings.impersonation = v == "on";
            }
            if let Some(n) = min_password_length {
                settings.min_password_length = n;
            }
            if let Some(v) = email_code {
                settings.email_code = v == "on";
            }
            match second_factor.as_deref() {
                Some("required") => settings.second_factor = SecondFactorPolicy::Required,
                Some(_) => settings.second_factor = SecondFactorPolicy::Optional,
                None => {}
            }
            if no_second_factor_clients {
                settings.second_factor_clients.clear();
            } else if !second_factor_client.is_empty() {
                for c in &second_factor_client {
                    if store.client(&t.id, c).await?.is_none() {
                        anyhow::bail!("client {c} not found in tenant {name}");
                    }
                }
                settings.second_factor_clients = second_factor_client;
            }
            if any_authorization_details_type {
                settings.authorization_details_types.clear();
            } else if !authorization_details_type.is_empty() {
                settings.authorization_details_types = authorization_details_type;
            }
            (*branding).apply(&mut settings);
            let t =
                registry::set_tenant_settings(store.as_ref(), &name, settings, CLI_ACTOR).await?;
            print(json_out, show(&t), || format!("updated tenant {}", t.name));
        }
        TenantCmd::Risk {
            name,
            rules,
            reset,
            scoring,
            failure_window,
            block_seconds,
            min_history,
            agent_window,
        } => {
            use mandate_core::domain::risk_policy::{RiskPolicy, RiskRule};
            let t = store
                .tenant_by_name(&name)
                .await?
                .with_context(|| format!("tenant {name} not found"))?;
            let changed = !rules.is_empty()
                || reset
                || scoring.is_some()
                || failure_window.is_some()
                || block_seconds.is_some()
                || min_history.is_some()
                || agent_window.is_some();
            let mut settings = t.settings.clone();
            let p = &mut settings.risk;
            if reset {
                *p = RiskPolicy::default();
            }
            let parsed = rules
                .iter()
                .map(|r| RiskRule::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            p.rules
                .retain(|r| !parsed.iter().any(|n| n.signal == r.signal));
            p.rules.extend(parsed);
            if let Some(v) = scoring {
                p.enabled = v == "on";
            }
            p.failure_window = failure_window.unwrap_or(p.failure_window);
            p.block_seconds = block_seconds.unwrap_or(p.block_seconds);
            p.min_history = min_history.unwrap_or(p.min_history);
            p.agent_window = agent_window.unwrap_or(p.agent_window);
            p.check().map_err(anyhow::Error::msg)?;
            let t = if changed {
                registry::set_tenant_settings(store.as_ref(), &name, settings, CLI_ACTOR).await?
            } else {
                t
            };
            let policy = &t.settings.risk;
            print(json_out, json!(policy), || {
                let mut out = format!(
                    "risk scoring {} (failure window {} s, block {} s, min history {}, agent window {} s)",
                    if policy.enabled { "on" } else { "off" },
                    policy.failure_window,
                    policy.block_seconds,
                    policy.min_history,
                    policy.agent_window
                );
                for r in &policy.rules {
                    out.push_str(&format!(
                        "\n{}={}@{}",
                        r.signal.as_str(),
                        r.action.as_str(),
                        r.at_least
                    ));
                }
                out
            });
        }
        TenantCmd::Show { name } => {
            let t = store
                .tenant_by_name(&name)
                .await?
                .with_context(|| format!("tenant {name} not found"))?;
            print(json_out, show(&t), || {
                format!("{} {}", t.name, json!(t.settings))
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
