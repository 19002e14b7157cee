//! The storage passkeys need: the credentials people registered, and the ceremonies in
//! flight (kept in the store, not in one node's memory, so any node finishes a ceremony any
//! other started).

use async_trait::async_trait;

use crate::error::StoreResult;

/// A passkey a person registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub tenant_id: String,
    /// The credential id, base64url without padding.
    pub id: String,
    pub user_id: String,
    /// The WebAuthn user handle (a random UUID, the same for all of a person's passkeys): what
    /// a discoverable credential names its account by, never the person's id.
    pub user_handle: String,
    /// The name the person gave it ("Laptop", "Phone").
    pub name: String,
    /// The credential as webauthn-rs keeps it (public key, counter, flags), JSON.
    pub credential: String,
    /// The key may be synced to other devices (backup eligible), and is (backed up).
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The signature counter last seen (0 for authenticators that keep none).
    pub counter: u32,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// What a ceremony in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Adding a passkey to an account.
    Register,
    /// Signing in with a discoverable passkey.
    Authenticate,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Authenticate => "authenticate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(Self::Register),
            "authenticate" => Some(Self::Authenticate),
            _ => None,
        }
    }
}

/// A WebAuthn ceremony in flight: the challenge and policy the server sent, to be taken once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    pub tenant_id: String,
    /// Random, unguessable; the browser sends it back with the credential.
    pub id: String,
    pub kind: CeremonyKind,
    /// The account a registration is for (none for a sign-in).
    pub user_id: Option<String>,
    /// The client address that started it (as the guessing limits key it), if known.
    pub address: Option<String>,
    /// webauthn-rs's ceremony state, JSON.
    pub state: String,
    pub expires_at: i64,
}

/// Passkeys and their ceremonies.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// A person's passkeys, oldest first.
    async fn passkeys(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<StoredPasskey>>;
    /// A passkey by credential id.
    async fn passkey(&self, tenant_id: &str, id: &str) -> StoreResult<Option<StoredPasskey>>;
    /// Add a passkey; `Conflict` when the credential id is registered already.
    async fn add_passkey(&self, passkey: &StoredPasskey) -> StoreResult<()>;
    /// Record a use: the updated credential, counter, backup state and time.
    async fn passkey_used(&self, passkey: &StoredPasskey) -> StoreResult<bool>;
    /// Remove one of a person's passkeys; false when they have no such passkey.
    async fn remove_passkey(&self, tenant_id: &str, user_id: &str, id: &str) -> StoreResult<bool>;
    /// Ceremonies in flight at `now`: of the tenant, and of them those started from `address`.
    async fn live_ceremonies(
        &self,
        tenant_id: &str,
        address: Option<&str>,
        now: i64,
    ) -> StoreResult<(u64, u64)>;
    /// Keep a ceremony until it is taken or expires.
    async fn put_ceremony(&self, ceremony: &Ceremony) -> StoreResult<()>;
    /// Take a ceremony (it is gone afterwards, so a challenge is answered once); `None` when
    /// it is unknown, taken already or expired at `now`.
    async fn take_ceremony(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> StoreResult<Option<Ceremony>>;
}
