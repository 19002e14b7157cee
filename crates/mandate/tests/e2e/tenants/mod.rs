//! Tenants: isolation and per-tenant settings.

mod isolation;
mod settings;
