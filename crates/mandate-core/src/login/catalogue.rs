//! The login methods a tenant offers, in the order pages show them. Kept apart from
//! [`super::method`] (the trait every method implements), so each method's folder can depend on
//! the trait while this list depends on the methods.

use super::method::{LoginMethod, Password};
use super::totp::TotpMethod;
use super::totp::recovery::RecoveryCodeMethod;

/// Every method on offer: sign-in methods first, then second factors. A sign-in page shows the
/// first ([`super::method::sign_in_ids`]); discovery's `acr_values_supported` reads them all.
pub fn offered() -> &'static [&'static dyn LoginMethod] {
    &[&Password, &TotpMethod, &RecoveryCodeMethod]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::method::{acr_values, second_factor_ids, sign_in_ids};
    use crate::settings::{ACR_MFA, ACR_PASSWORD};

    #[test]
    fn the_catalogue() {
        assert_eq!(sign_in_ids(offered()), ["password"]);
        assert_eq!(second_factor_ids(offered()), ["totp", "recovery_code"]);
        assert_eq!(acr_values(offered()), [ACR_PASSWORD, ACR_MFA]);
    }
}
