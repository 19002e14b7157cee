//! Mandate's end-to-end tests, one binary (it links once): the real `mandate` binary over
//! HTTP on SQLite and PostgreSQL, its CLI, and the docs' commands. The folders follow the
//! specifications and features they test; `common` is the harness.

mod common;
mod docs_commands;
mod layering;

mod agents;
mod audit;
mod authz;
mod branding;
mod browser;
mod ciba;
mod concurrency;
mod login;
mod oauth;
mod oidc;
mod ops;
mod pages;
mod risk;
mod security;
mod ssf;
mod tenants;
