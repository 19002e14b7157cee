//! The provider: store, settings and per-tenant caches that the protocol modules share.
//! Handlers hold one `Provider` and call the protocol modules with it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::agents::Agent;
use crate::domain::model::{Client, Tenant};
use crate::error::{OAuthError, StoreError};
use crate::mail::Mailer;
use crate::settings::Settings;
use crate::store::{AgentStore, ClientStore, KeyStore, Store, TenantStore};
use crate::time::now;
use mandate_token::jwk::{KeyError, KeySet};

/// A tenant with its issuer URL and loaded keys.
#[derive(Debug)]
pub struct TenantCtx {
    pub tenant: Tenant,
    /// `{public_url}/t/{name}`.
    pub issuer: String,
    pub keys: KeySet,
}

impl TenantCtx {
    pub fn id(&self) -> &str {
        &self.tenant.id
    }
    /// Absolute URL of an endpoint under this issuer (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

struct Cached<V> {
    value: V,
    loaded_at: std::time::Instant,
}

type ClientCache = RwLock<HashMap<(String, String), Cached<Option<Arc<Client>>>>>;
type AgentCache = RwLock<HashMap<(String, String), Cached<Option<Arc<Agent>>>>>;
/// Access tokens whose signature verified: (tenant id, SHA-256 of the token) → (kid, claims).
type VerifiedCache = RwLock<HashMap<(String, Vec<u8>), (String, Arc<Claims>)>>;
type Claims = mandate_token::claims::AccessTokenClaims;

/// The verified-signature cache's key of a token.
fn verified_key(t: &TenantCtx, token: &str) -> (String, Vec<u8>) {
    (
        t.id().to_string(),
        crate::crypto::secret::sha256(token.as_bytes()),
    )
}

/// Most verified tokens remembered (the map is emptied when it would grow past this).
const MAX_VERIFIED: usize = 20_000;

/// Shared state of the protocol rules. `S` is the storage it reaches: the server holds one over
/// the combined [`Store`]; an operation that names the ports it uses
/// (`p: &Provider<S>` with `S: GrantStore + AuditSink + ?Sized`) can be run over a small fake.
pub struct Provider<S: ?Sized = dyn Store> {
    pub store: Arc<S>,
    pub settings: Settings,
    public_url: String,
    /// How long tenant keys and clients stay cached; another node's change shows within it.
    cache_ttl: std::time::Duration,
    tenants: RwLock<HashMap<String, Cached<Arc<TenantCtx>>>>,
    clients: ClientCache,
    /// Agents by client id. Only what never changes is read from here: whoever needs the
    /// status asks the store (token exchange does, in its one query).
    agents: AgentCache,
    /// Signature checks already done: the same token presented again (a PEP's token on every
    /// AuthZEN call, a person's token exchanged for several tasks) skips the ES256 verify.
    /// Only the signature is remembered; expiry is checked on every use and liveness
    /// (revocation) is always asked of the store.
    verified: VerifiedCache,
    origins: RwLock<HashMap<String, Cached<Vec<String>>>>,
    /// Where mail goes; `None`: no mail is configured, and what needs it is not offered.
    mailer: Option<Arc<dyn Mailer>>,
}

/// Why a tenant could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl From<LoadError> for OAuthError {
    fn from(e: LoadError) -> Self {
        OAuthError::server_error(e.to_string())
    }
}

impl<S: ?Sized> Provider<S> {
    pub fn new(
        store: Arc<S>,
        settings: Settings,
        public_url: &str,
        cache_ttl: std::time::Duration,
    ) -> Self {
        Self {
            store,
            settings,
            public_url: public_url.trim_end_matches('/').to_string(),
            cache_ttl,
            tenants: RwLock::new(HashMap::new()),
            clients: RwLock::new(HashMap::new()),
            agents: RwLock::new(HashMap::new()),
            verified: RwLock::new(HashMap::new()),
            origins: RwLock::new(HashMap::new()),
            mailer: None,
        }
    }

    /// The same provider sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// The mailer, when mail is configured.
    pub fn mailer(&self) -> Option<&dyn Mailer> {
        self.mailer.as_deref()
    }

    /// The public base URL (no trailing slash).
    /// How long cached tenant data may be served before it is re-read.
    pub fn cache_ttl(&self) -> std::time::Duration {
        self.cache_ttl
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Issuer URL of a tenant name.
    pub fn issuer_for(&self, name: &str) -> String {
        format!("{}/t/{}", self.public_url, name)
    }

    /// The claims of `token` if an earlier call to [`Provider::remember_verified`] stored them
    /// for this tenant and the key that signed it is still published (whether the claims are
    /// still unexpired is the caller's to check).
    pub fn verified(&self, t: &TenantCtx, token: &str) -> Option<Arc<Claims>> {
        let key = verified_key(t, token);
        let (kid, claims) = self.verified.read().expect("lock").get(&key).cloned()?;
        t.keys.by_kid(&kid, self.now())?;
        Some(claims)
    }

    /// Remember that `token`'s signature verified for this tenant with key `kid`.
    pub fn remember_verified(&self, t: &TenantCtx, token: &str, kid: &str, claims: Arc<Claims>) {
        let key = verified_key(t, token);
        let mut map = self.verified.write().expect("lock");
        if map.len() >= MAX_VERIFIED {
            map.clear();
        }
        map.insert(key, (kid.to_string(), claims));
    }

    /// Current Unix time.
    pub fn now(&self) -> i64 {
        now()
    }
}

impl<S: TenantStore + KeyStore + ?Sized> Provider<S> {
    /// Load a tenant (cached). `None` when no such tenant exists.
    pub async fn tenant(&self, name: &str) -> Result<Option<Arc<TenantCtx>>, LoadError> {
        if let Some(c) = self.tenants.read().expect("lock").get(name)
            && c.loaded_at.elapsed() < self.cache_ttl
        {
            return Ok(Some(c.value.clone()));
        }
        self.reload_tenant(name).await
    }

    /// Reload a tenant from the store, bypassing the cache (e.g. on an unknown `kid`).
    pub async fn reload_tenant(&self, name: &str) -> Result<Option<Arc<TenantCtx>>, LoadError> {
        let Some(tenant) = self.store.tenant_by_name(name).await? else {
            self.tenants.write().expect("lock").remove(name);
            return Ok(None);
        };
        let keys = KeySet::load(&self.store.keys(&tenant.id).await?)?;
        let ctx = Arc::new(TenantCtx {
            issuer: self.issuer_for(&tenant.name),
            tenant,
            keys,
        });
        self.tenants.write().expect("lock").insert(
            name.to_string(),
            Cached {
                value: ctx.clone(),
                loaded_at: std::time::Instant::now(),
            },
        );
        Ok(Some(ctx))
    }
}

impl<S: ClientStore + ?Sized> Provider<S> {
    /// Load a client of a tenant (cached, including misses).
    pub async fn client(
        &self,
        t: &TenantCtx,
        client_id: &str,
    ) -> Result<Option<Arc<Client>>, StoreError> {
        if client_id.is_empty() || client_id.len() > 256 {
            return Ok(None);
        }
        let key = (t.id().to_string(), client_id.to_string());
        if let Some(c) = self.clients.read().expect("lock").get(&key)
            && c.loaded_at.elapsed() < self.cache_ttl
        {
            return Ok(c.value.clone());
        }
        let client = self.store.client(t.id(), client_id).await?.map(Arc::new);
        let mut map = self.clients.write().expect("lock");
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(
            key,
            Cached {
                value: client.clone(),
                loaded_at: std::time::Instant::now(),
            },
        );
        Ok(client)
    }

    /// Is `origin` registered as a web origin by one of the tenant's public clients (CORS)?
    pub async fn web_origin_allowed(
        &self,
        t: &TenantCtx,
        origin: &str,
    ) -> Result<bool, StoreError> {
        if let Some(c) = self.origins.read().expect("lock").get(t.id())
            && c.loaded_at.elapsed() < self.cache_ttl
        {
            return Ok(c.value.iter().any(|o| o == origin));
        }
        let origins: Vec<String> = self
            .store
            .list_clients(t.id())
            .await?
            .into_iter()
            .filter(|c| c.is_public())
            .flat_map(|c| c.web_origins)
            .collect();
        let allowed = origins.iter().any(|o| o == origin);
        self.origins.write().expect("lock").insert(
            t.id().to_string(),
            Cached {
                value: origins,
                loaded_at: std::time::Instant::now(),
            },
        );
        Ok(allowed)
    }
}

impl<S: AgentStore + ?Sized> Provider<S> {
    /// The registered agent a client is (cached, including "not an agent"), for its fixed
    /// terms: name, owner, scope ceiling, DPoP requirement. Its status may be stale by the
    /// cache lifetime: check it in the store where it matters.
    pub async fn agent(&self, t: &TenantCtx, id: &str) -> Result<Option<Arc<Agent>>, StoreError> {
        let key = (t.id().to_string(), id.to_string());
        if let Some(c) = self.agents.read().expect("lock").get(&key)
            && c.loaded_at.elapsed() < self.cache_ttl
        {
            return Ok(c.value.clone());
        }
        let agent = self.store.agent(t.id(), id).await?.map(Arc::new);
        let mut map = self.agents.write().expect("lock");
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(
            key,
            Cached {
                value: agent.clone(),
                loaded_at: std::time::Instant::now(),
            },
        );
        Ok(agent)
    }
}
