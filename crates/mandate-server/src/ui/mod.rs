//! Server-rendered pages: login, consent, account, errors.

pub mod account;
pub mod agents;
pub mod assets;
pub mod branding;
pub mod ciba;
pub mod consent;
pub mod login;
pub mod pages;
pub mod passkeys;
pub mod person;
pub mod profile;
pub mod recovery;
pub mod second_factor;
pub mod security;
pub mod sessions;
pub mod signin;
pub mod templates;
pub mod words;
