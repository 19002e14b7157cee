//! Signing in: the login methods beyond the password (issue 14): passkeys, and second factors
//! (TOTP, recovery codes, the tenant's policy, step-up, administration).

mod passkeys;
mod sessions;
mod second_factor;
mod step_up;
mod recovery;
