//! Login methods over real HTTP: second factors (TOTP, recovery codes, the tenant's policy,
//! step-up, administration).

mod second_factor;
