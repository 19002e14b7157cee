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
    /// How recent a sign-in must be to change how the person signs in (add or remove a
    /// passkey, remove the password): a stolen session cookie alone cannot. Default 10 minutes.
    pub recent_sign_in: i64,
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
    /// Password guessing limits (per account and per client address).
    pub login_throttle: LoginThrottle,
    /// Where addresses are (a MaxMind-format GeoIP database, `--geoip-db`), for the risk
    /// signal "impossible travel". Default none: the signal is off.
    pub geoip: Option<std::sync::Arc<dyn crate::geo::Locator>>,
}

/// Brute-force protection of password login, after Keycloak's brute force detection: a few
/// free failures, then a progressive delay (1, 2, 4, … seconds, at most `wait_increment`),
/// then a temporary lockout that grows by `wait_increment` per further failure up to
/// `max_wait`. Counters live in the store, so every node sees them, and are kept per account
/// name (whether or not such an account exists) and per client address (IPv6: per /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures of one account name before each further attempt waits. Default 3.
    pub failures_before_delay: i64,
    /// Failures of one account name before it is locked out. Default 10.
    pub failures_before_lockout: i64,
    /// Failures from one address before each further attempt waits. Default 20.
    pub ip_failures_before_delay: i64,
    /// Failures from one address before it is locked out. Default 100.
    pub ip_failures_before_lockout: i64,
    /// Lockout length after the first lockout failure, added again for each further one
    /// (seconds). Also the longest progressive delay. Default 60.
    pub wait_increment: i64,
    /// Longest lockout (seconds). Default 900.
    pub max_wait: i64,
    /// Failures older than this are forgotten (seconds). Default 43200 (12 hours).
    pub failure_reset: i64,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            failures_before_delay: 3,
            failures_before_lockout: 10,
            ip_failures_before_delay: 20,
            ip_failures_before_lockout: 100,
            wait_increment: 60,
            max_wait: 900,
            failure_reset: 12 * 3600,
        }
    }
}

impl LoginThrottle {
    /// How long attempts wait after the `failures`-th failure, with the given thresholds.
    pub fn wait(&self, failures: i64, before_delay: i64, before_lockout: i64) -> i64 {
        if failures >= before_lockout {
            self.wait_increment
                .saturating_mul(failures - before_lockout + 1)
                .min(self.max_wait)
        } else if failures >= before_delay {
            (1i64 << (failures - before_delay).min(30))
                .min(self.wait_increment)
                .min(self.max_wait)
        } else {
            0
        }
    }

    /// Are the values usable (positive, thresholds in order)?
    pub fn check(&self) -> Result<(), String> {
        let all = [
            self.failures_before_delay,
            self.failures_before_lockout,
            self.ip_failures_before_delay,
            self.ip_failures_before_lockout,
            self.wait_increment,
            self.max_wait,
            self.failure_reset,
        ];
        if all.iter().any(|v| *v <= 0) {
            return Err("login throttling values must be positive".into());
        }
        if self.failures_before_delay > self.failures_before_lockout
            || self.ip_failures_before_delay > self.ip_failures_before_lockout
        {
            return Err("login failures before delay must not exceed those before lockout".into());
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            access_token_ttl: 300,
            id_token_ttl: 3600,
            code_ttl: 60,
            refresh_token_ttl: 30 * 24 * 3600,
            session_ttl: 12 * 3600,
            recent_sign_in: 600,
            clock_skew: 60,
            max_assertion_lifetime: 600,
            dpop_require_nonce: false,
            ciba_interval: 5,
            ciba_default_expiry: 300,
            ciba_max_expiry: 600,
            ciba_webhook_url: None,
            login_throttle: LoginThrottle::default(),
            geoip: None,
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

/// The `acr` of a sign-in with one factor (a password).
pub const ACR_PASSWORD: &str = "urn:mandate:acr:pwd";

/// The `acr` of a sign-in with two factors of which neither resists phishing (a password and a
/// one-time code).
pub const ACR_MFA: &str = "urn:mandate:acr:mfa";

/// The `acr` of a phishing-resistant sign-in (a passkey with user verification): the `phr`
/// value of OpenID's EAP ACR values.
pub const ACR_PHR: &str = "phr";

/// Shortest minimum password length a tenant may set (NIST SP 800-63B §5.1.1.2).
pub const MIN_PASSWORD_LENGTH: usize = 8;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_delays_grow_then_lock_out() {
        let t = LoginThrottle::default();
        let w: Vec<i64> = (1..=14).map(|f| t.wait(f, 3, 10)).collect();
        assert_eq!(w, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 120, 180, 240, 300]);
        assert_eq!(t.wait(1000, 3, 10), 900);
        assert!(t.check().is_ok());
    }
}
