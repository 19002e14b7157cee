//! SQLite and PostgreSQL storage for Mandate: one [`SqlStore`] over the sqlx `Any` driver
//! implements every storage trait of `mandate-core` with portable SQL. The backend is chosen
//! from the URL when connecting; migrations for each backend are embedded and run on connect.

mod account_tokens;
mod agents;
mod audit;
mod authz;
mod ciba;
mod clients;
mod codes;
mod connect;
mod consents;
mod error;
mod grants;
mod keys;
mod passkeys;
mod purge;
mod refresh;
mod replay;
mod risk;
mod roles;
mod rows;
mod sessions;
mod ssf;
mod tenants;
mod throttle;
mod totp;
mod users;

pub use connect::{Backend, SqlStore};

/// The SQLite database file inside a data directory.
pub const SQLITE_FILE: &str = "mandate.db";
