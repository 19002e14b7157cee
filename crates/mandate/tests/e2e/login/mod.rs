//! Signing in: the login methods beyond the password (issue 14): passkeys, and second factors
//! (TOTP, recovery codes, the tenant's policy, step-up, administration).

mod email_code;
mod passkeys;
mod recovery;
mod second_factor;
mod sessions;
mod step_up;
