//! The provider: store, settings and per-tenant caches that the protocol modules share.
//! Handlers hold one `Provider` and call the protocol modules with it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::agents::Agent;
use crate::error::{OAuthError, StoreError};
use crate::keys::{KeyError, KeySet};
use crate::model::{Client, Tenant};
use crate::settings::Settings;
use crate::store::Store;
use crate::time::now;

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

/// Shared state of the protocol rules.
pub struct Provider {
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    public_url: String,
    /// How long tenant keys and clients stay cached; another node's change shows within it.
    cache_ttl: std::time::Duration,
    tenants: RwLock<HashMap<String, Cached<Arc<TenantCtx>>>>,
    clients: ClientCache,
    /// Agents by client id. Only what never changes is read from here: whoever needs the
    /// status asks the store (token exchange does, in its one query).
    agents: AgentCache,
    origins: RwLock<HashMap<String, Cached<Vec<String>>>>,
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

impl Provider {
    pub fn new(
        store: Arc<dyn Store>,
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
            origins: RwLock::new(HashMap::new()),
        }
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

    /// Current Unix time.
    pub fn now(&self) -> i64 {
        now()
    }
}
