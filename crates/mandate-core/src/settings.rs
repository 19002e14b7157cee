//! Every protocol default in one place. Operators override them through `mandate.toml`,
//! `MANDATE_*` environment variables or flags; the binary maps those onto this struct.

/// Lifetimes and limits the protocol rules apply.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Access token lifetime (RFC 9068 JWT). Default 5 minutes.
    pub access_token_ttl: i64,
    /// ID token lifetime. Default 1 hour.
    pub id_token_ttl: i64,
    /// Authorization code lifetime. Default 60 seconds (SECURITY-CHECKLIST).
    pub code_ttl: i64,
    /// Refresh token lifetime (each rotation starts a new one). Default 30 days.
    pub refresh_token_ttl: i64,
    /// Browser session lifetime. Default 12 hours.
    pub session_ttl: i64,
    /// Clock skew tolerated on incoming JWTs (client assertions). Default 60 seconds.
    pub clock_skew: i64,
    /// Longest lifetime accepted for a client assertion (`exp - now`). Default 10 minutes.
    pub max_assertion_lifetime: i64,
    /// Require a server-issued `DPoP-Nonce` in DPoP proofs (RFC 9449 §8). Default off.
    pub dpop_require_nonce: bool,
    /// CIBA: the polling interval first given to a client (seconds). Default 5 (CIBA §7.3).
    pub ciba_interval: i64,
    /// CIBA: how long a backchannel request lives without `requested_expiry`. Default 300 s.
    pub ciba_default_expiry: i64,
    /// CIBA: the longest `requested_expiry` honoured (longer ones are cut). Default 600 s.
    pub ciba_max_expiry: i64,
    /// CIBA: where to POST each new request (with its approval link) so an app can notify the
    /// person. Default none.
    pub ciba_webhook_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_ttl: 300,
            id_token_ttl: 3600,
            code_ttl: 60,
            refresh_token_ttl: 30 * 24 * 3600,
            session_ttl: 12 * 3600,
            clock_skew: 60,
            max_assertion_lifetime: 600,
            dpop_require_nonce: false,
            ciba_interval: 5,
            ciba_default_expiry: 300,
            ciba_max_expiry: 600,
            ciba_webhook_url: None,
        }
    }
}

impl Settings {
    /// How long a retired signing key stays published: until every token it signed has expired.
    pub fn key_publish_window(&self) -> i64 {
        self.access_token_ttl.max(self.id_token_ttl) + self.clock_skew
    }
}

/// Scopes every tenant understands (OIDC Core §5.4).
pub const STANDARD_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The `acr` of a password login (no MFA yet): ISO/IEC 29115 level 1 style label.
pub const ACR_PASSWORD: &str = "urn:mandate:acr:pwd";

/// Limits of the HTTP server itself, so that slow or idle clients cannot hold connections
/// (and memory) forever (SECURITY-CHECKLIST: resource bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Seconds a client has to send a request's headers (and the TLS handshake, and the first
    /// bytes of a connection); also how long an idle HTTP/1.1 keep-alive connection is kept.
    /// Default 5.
    pub header_read_timeout: u64,
    /// Seconds a client has to send a request's body once its headers are in. Default 10.
    pub body_read_timeout: u64,
    /// Connections open at once; further ones are closed as soon as they are accepted.
    /// Default 1000.
    pub max_connections: usize,
    /// HTTP/2: seconds between keep-alive pings on a connection; one left unanswered for as
    /// long closes it. Default 20.
    pub http2_keepalive: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: 5,
            body_read_timeout: 10,
            max_connections: 1000,
            http2_keepalive: 20,
        }
    }
}
