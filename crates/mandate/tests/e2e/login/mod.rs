//! Signing in: the login methods beyond the password (issue 14).

mod passkeys;
mod recovery;
