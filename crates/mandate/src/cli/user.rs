//! `mandate user create|erase`.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use mandate_core::admin;
use mandate_core::store::Store;
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
            let u = admin::create_user(
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
            let id = admin::erase_user(store.as_ref(), &tenant, &username, CLI_ACTOR).await?;
            print(
                json_out,
                json!({"erased": id, "username": username, "tenant": tenant}),
                || format!("erased user {username} (sub {id})"),
            );
        }
    }
    Ok(())
}
