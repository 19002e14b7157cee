//! mandate-store tests, one binary: the storage contract on SQLite and PostgreSQL, and the
//! migration of personal audit data.

mod contract;
mod migration_personal;
