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
    /// Run the server.
    Serve(config::ServeArgs),
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
    /// Verify the tamper-evident audit log and print checkpoints.
    #[command(subcommand)]
    Audit(cli::audit::AuditCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
