//! Shared application state handed to every handler.

use std::sync::Arc;

use mandate_core::Provider;

use crate::client_ip::TrustedProxies;
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

#[derive(Clone)]
pub struct AppState {
    pub provider: Arc<Provider>,
    pub config: Arc<HttpConfig>,
    pub templates: Arc<Templates>,
    pub metrics: Arc<Metrics>,
    /// The fine-grained authorization decision point (AuthZEN).
    pub pdp: Arc<mandate_authz::Pdp>,
}
