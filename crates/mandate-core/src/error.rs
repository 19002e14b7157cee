//! One RFC-shaped error type for every protocol endpoint (RFC 6749 §5.2, OIDC Core §3.1.2.6,
//! RFC 6750 §3.1), with a debug detail that is logged but never shown to the caller.

use std::fmt;

/// Error codes defined by RFC 6749, RFC 6750, RFC 7009 and OpenID Connect Core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// OpenID Connect Core (errata set 2) §3.1.2.6: the authentication the request asks for
    /// cannot be performed.
    UnmetAuthenticationRequirements,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidTarget,
    /// RFC 9396 §5.
    InvalidAuthorizationDetails,
    /// RFC 9449 §5: the DPoP proof is missing or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8: retry with the server's `DPoP-Nonce`.
    UseDpopNonce,
    /// CIBA §11: the person has not decided yet; poll again.
    AuthorizationPending,
    /// CIBA §11: polling too fast; wait the interval plus 5 seconds.
    SlowDown,
    /// CIBA §11: the `auth_req_id` expired before the person decided.
    ExpiredToken,
    /// CIBA §13: the hint names no known person.
    UnknownUserId,
    /// CIBA §13: the `login_hint_token` has expired.
    ExpiredLoginHintToken,
    /// CIBA §13: the `binding_message` is invalid or unacceptable.
    InvalidBindingMessage,
}

impl ErrorCode {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidAuthorizationDetails => "invalid_authorization_details",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::ExpiredLoginHintToken => "expired_login_hint_token",
            Self::InvalidBindingMessage => "invalid_binding_message",
        }
    }

    /// The HTTP status a direct (non-redirect) response with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken => 401,
            Self::InsufficientScope | Self::AccessDenied => 403,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// A protocol error as the client sees it, plus a hidden detail for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Human-readable text for the client developer (RFC 6749 `error_description`).
    pub description: Option<String>,
    /// Internal detail: logged, never sent.
    pub debug: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            debug: None,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, d)
    }
    /// An internal failure; the detail goes to the log only.
    pub fn server_error(debug: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: Some("internal error".into()),
            debug: Some(debug.into()),
        }
    }
    /// Attach an internal detail.
    pub fn with_debug(mut self, debug: impl Into<String>) -> Self {
        self.debug = Some(debug.into());
        self
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(d) = &self.debug {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for OAuthError {}

/// Failures of a storage backend. Never shown to a caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    /// Something a batch expected to exist does not (e.g. a tuple to delete).
    #[error("does not exist: {0}")]
    Missing(String),
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::server_error(e.to_string())
    }
}

/// Failures of administrative operations (CLI and admin API).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("key generation failed: {0}")]
    Crypto(String),
    /// Password hashing is at capacity: retry after this many seconds.
    #[error("password hashing is busy; retry in {0} s")]
    Busy(u64),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AdminError::Conflict(what),
            other => AdminError::Store(other),
        }
    }
}

/// Result type of every store call.
pub type StoreResult<T> = Result<T, StoreError>;
