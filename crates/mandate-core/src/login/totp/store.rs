//! The storage second factors need: a person's TOTP secret (encrypted) with the last time step
//! accepted, and their recovery codes (keyed digests only). Every method is one atomic step, so
//! two nodes cannot both accept one code.

use async_trait::async_trait;

use crate::error::StoreResult;

/// A person's TOTP authenticator, pending (shown, not yet confirmed with a code) or enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub tenant_id: String,
    pub user_id: String,
    /// The shared secret, encrypted (`crate::crypto::at_rest`), bound to tenant and person.
    pub secret: Vec<u8>,
    pub created_at: i64,
    /// When the person confirmed it with a code; `None` while pending.
    pub confirmed_at: Option<i64>,
    /// A pending enrolment is forgotten after this time (`None` once confirmed).
    pub pending_until: Option<i64>,
    /// The last time step a code was accepted for: it and every earlier one are refused.
    pub last_step: i64,
}

impl TotpCredential {
    /// Enrolled (confirmed), not merely shown.
    pub fn enrolled(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// TOTP secrets and recovery codes.
#[async_trait]
pub trait TotpStore: Send + Sync {
    /// A person's TOTP credential, pending or enrolled.
    async fn totp(&self, tenant_id: &str, user_id: &str) -> StoreResult<Option<TotpCredential>>;
    /// Keep a pending enrolment, replacing an earlier pending one; false (nothing changed) when
    /// the person has an enrolled one.
    async fn put_pending_totp(&self, cred: &TotpCredential) -> StoreResult<bool>;
    /// Confirm a pending enrolment that is still pending at `now`, with the step of the code
    /// that confirmed it as the last accepted; false when there is none.
    async fn confirm_totp(
        &self,
        tenant_id: &str,
        user_id: &str,
        step: i64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Accept a code's time step: true, and it becomes the last accepted, only when the
    /// person has an enrolled credential whose last accepted step is earlier (compare-and-set).
    async fn spend_totp_step(&self, tenant_id: &str, user_id: &str, step: i64)
    -> StoreResult<bool>;
    /// Remove a person's TOTP credential (pending or enrolled) and their recovery codes, in one
    /// transaction; returns whether there was an enrolled credential or any code.
    async fn remove_totp(&self, tenant_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Replace all of a person's recovery codes by these digests, in one transaction.
    async fn replace_recovery_codes(
        &self,
        tenant_id: &str,
        user_id: &str,
        digests: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<()>;
    /// Spend one recovery code (it is gone afterwards); false when the person has no such
    /// code (never had it, or spent it already).
    async fn spend_recovery_code(
        &self,
        tenant_id: &str,
        user_id: &str,
        digest: &[u8],
    ) -> StoreResult<bool>;
    /// How many recovery codes a person has left.
    async fn recovery_codes_left(&self, tenant_id: &str, user_id: &str) -> StoreResult<i64>;
}
