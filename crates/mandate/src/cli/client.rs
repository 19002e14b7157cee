//! `mandate client create`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use mandate_core::registry::{self, ClientSpec};
use mandate_core::store::Store;
use serde_json::json;

use super::{CLI_ACTOR, print};

#[derive(Debug, clap::Subcommand)]
pub enum ClientCmd {
    /// Register a client; prints its client_id and, for confidential clients, the secret (once).
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    name: String,
    /// Exact redirect URI (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Post-logout redirect URI (repeatable).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE only).
    #[arg(long)]
    public: bool,
    /// Allowed grant type (repeatable): authorization_code, refresh_token, client_credentials.
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Allowed scope (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Token endpoint auth method: client_secret_basic, client_secret_post, private_key_jwt.
    #[arg(long)]
    auth_method: Option<String>,
    /// JWK Set file (JSON) with the client's public keys, for private_key_jwt.
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// ID token signing algorithm (RS256 default; ES256, EdDSA, PS256).
    #[arg(long)]
    id_token_alg: Option<String>,
    /// Browser origin allowed to call token/userinfo/revoke (repeatable), e.g. https://app.example.
    #[arg(long = "web-origin")]
    web_origins: Vec<String>,
    /// Accept the previous refresh token once more within this many seconds (0-60; default strict).
    #[arg(long, default_value_t = 0)]
    refresh_grace_seconds: i64,
}

pub async fn run(cmd: ClientCmd, store: &Arc<dyn Store>, json_out: bool) -> Result<()> {
    let ClientCmd::Create(a) = cmd;
    let jwks = match &a.jwks_file {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            // Accept a single JWK as well as a set.
            Some(if v.get("keys").is_some() {
                v
            } else {
                json!({"keys": [v]})
            })
        }
    };
    let spec = ClientSpec {
        name: a.name,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        public: a.public,
        grant_types: a.grant_types,
        scopes: a.scopes,
        auth_method: a.auth_method,
        jwks,
        id_token_alg: a.id_token_alg,
        web_origins: a.web_origins,
        refresh_grace_seconds: a.refresh_grace_seconds,
    };
    let (c, secret) = registry::create_client(store.as_ref(), &a.tenant, spec, CLI_ACTOR).await?;
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    print(
        json_out,
        json!({"client_id": c.client_id, "client_secret": secret, "name": c.name, "tenant": a.tenant,
               "token_endpoint_auth_method": c.auth_method.as_str(), "grant_types": grants, "scope": c.scopes.to_string()}),
        || match &secret {
            Some(s) => format!(
                "client_id: {}\nclient_secret: {s}\n(the secret is shown only once)",
                c.client_id
            ),
            None => format!("client_id: {}", c.client_id),
        },
    );
    Ok(())
}
