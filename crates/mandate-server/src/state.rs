//! Shared application state handed to every handler.

use std::sync::Arc;

use mandate_core::Provider;

use crate::client_ip::{ProxyTrust, TrustedProxies};
use crate::ops::metrics::Metrics;
use crate::ui::templates::Templates;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Public base URL; `https` turns on `Secure` and `__Host-` cookies.
    pub public_url: String,
    /// Proxies whose `X-Forwarded-For`/`-Proto` headers are believed.
    pub trusted_proxies: TrustedProxies,
}

impl HttpConfig {
    pub fn secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// What every handler shares. Cloned by each extractor and middleware of every request, so it
/// is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`].
pub struct Shared {
    pub provider: Arc<Provider>,
    pub config: Arc<HttpConfig>,
    pub templates: Arc<Templates>,
    pub metrics: Arc<Metrics>,
    /// The fine-grained authorization decision point (AuthZEN).
    pub pdp: Arc<mandate_authz::Pdp>,
    /// The token endpoint's grants (discovery lists the same).
    pub grants: mandate_core::oauth::grants::Grants,
}

impl AppState {
    /// State from its parts.
    pub fn new(parts: Shared) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl ProxyTrust for AppState {
    fn trusted_proxies(&self) -> &TrustedProxies {
        &self.config.trusted_proxies
    }
}

impl axum::extract::FromRef<AppState> for Arc<Metrics> {
    fn from_ref(s: &AppState) -> Self {
        s.metrics.clone()
    }
}
