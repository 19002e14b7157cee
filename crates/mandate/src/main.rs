//! `mandate`: run the identity server and administer it.

mod cli;
mod config;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Mandate: an identity server for people and the AI agents that act for them.
#[derive(Debug, Parser)]
#[command(name = "mandate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub storage: config::StorageArgs,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates the data directory when missing).
    Serve(Box<config::ServeArgs>),
    /// Create the data directory (or PostgreSQL tables) and the default tenant.
    Init,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(cli::tenant::TenantCmd),
    /// Manage users.
    #[command(subcommand)]
    User(cli::user::UserCmd),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(cli::client::ClientCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(cli::keys::KeysCmd),
    /// Register and manage AI agents.
    #[command(subcommand)]
    Agent(cli::agent::AgentCmd),
    /// Delegations from people to agents.
    #[command(subcommand)]
    Mandate(cli::mandate::MandateCmd),
    /// Fine-grained authorization: models, tuples, checks, Cedar policy.
    #[command(subcommand)]
    Authz(cli::authz::AuthzCmd),
    /// Query, export and verify the tamper-evident audit log; print checkpoints.
    #[command(subcommand)]
    Audit(cli::audit::AuditCmd),
}

fn main() -> ExitCode {
    // `--json` asks for machine-readable output, errors included; it is looked for in the
    // raw arguments so that even a command line clap refuses gets a JSON error.
    let json = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let message = first.trim_start_matches("error: ");
            eprintln!(
                "{}",
                serde_json::json!({"error": "usage", "message": message})
            );
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report(
                json,
                &anyhow::anyhow!("cannot start the async runtime: {e}"),
            );
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(json, &e);
            ExitCode::FAILURE
        }
    }
}

/// Print an error on standard error: one line of text, or one JSON object with `--json`.
/// A closed standard error is not worth a panic.
fn report(json: bool, e: &anyhow::Error) {
    use std::io::Write;
    let line = if json {
        serde_json::json!({"error": "failed", "message": one_line(e)}).to_string()
    } else {
        format!("error: {}", one_line(e))
    };
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
