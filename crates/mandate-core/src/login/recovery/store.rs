//! The storage of the one-time secrets sent by mail: password reset links, e-mail
//! verification links and sign-in codes. Only a keyed digest of each is stored; a person has
//! at most one of each purpose (a newer one replaces the older), and each is taken once.

use async_trait::async_trait;

use crate::error::StoreResult;

/// What a mailed secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    VerifyEmail,
    SignInCode,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::SignInCode => "sign_in_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password_reset" => Some(Self::PasswordReset),
            "verify_email" => Some(Self::VerifyEmail),
            "sign_in_code" => Some(Self::SignInCode),
            _ => None,
        }
    }
}

/// A mailed secret, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub tenant_id: String,
    pub user_id: String,
    pub purpose: Purpose,
    /// Keyed digest of the secret (the tenant's key): the lookup key.
    pub digest: Vec<u8>,
    /// The address it was sent to: a verification confirms this address only.
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Mailed one-time secrets.
#[async_trait]
pub trait AccountTokenStore: Send + Sync {
    /// Keep `token`, replacing the person's earlier one of the same purpose.
    async fn put_account_token(&self, token: &AccountToken) -> StoreResult<()>;
    /// The unexpired token of this purpose with this digest, without taking it.
    async fn account_token(
        &self,
        tenant_id: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>>;
    /// Take the token (it is gone afterwards, so it is used once, even by concurrent
    /// requests); `None` when unknown, taken already or expired at `now`.
    async fn take_account_token(
        &self,
        tenant_id: &str,
        purpose: Purpose,
        digest: &[u8],
        now: i64,
    ) -> StoreResult<Option<AccountToken>>;
    /// Forget a person's tokens of one purpose (all purposes: `None`); returns how many.
    async fn delete_account_tokens(
        &self,
        tenant_id: &str,
        user_id: &str,
        purpose: Option<Purpose>,
    ) -> StoreResult<u64>;
}
