//! The domain records every layer shares. Timestamps are Unix seconds.

use serde::{Deserialize, Serialize};

use crate::domain::branding::{Branding, ScopeDescriptions};
use crate::domain::scope::Scope;
use mandate_token::jwk::Alg;

/// An isolated realm: its own issuer, keys, users and clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Stable internal id.
    pub id: String,
    /// URL-safe name used in the issuer path `/t/{name}`.
    pub name: String,
    /// Key for the keyed digests of this tenant's secrets.
    pub secret_key: Vec<u8>,
    /// Algorithm of newly issued access tokens.
    pub access_token_alg: Alg,
    pub created_at: i64,
    /// Policy switches an administrator sets per tenant.
    pub settings: TenantSettings,
}

/// Per-tenant policy switches (`mandate tenant set`). The defaults are the safe ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Let non-agent clients registered for token exchange get a token for a person with no
    /// `act` (RFC 8693 impersonation), recorded as such. Off: only delegation.
    #[serde(default)]
    pub impersonation: bool,
    /// The RFC 9396 `authorization_details` types the tenant accepts (published in discovery);
    /// empty: any type.
    #[serde(default)]
    pub authorization_details_types: Vec<String>,
    /// Shortest password accepted when a password is set (characters; at least 8).
    #[serde(default = "default_min_password_length")]
    pub min_password_length: usize,
    /// When a sign-in needs a second factor (a passkey counts as both factors).
    #[serde(default)]
    pub second_factor: SecondFactorPolicy,
    /// Clients whose sign-ins need a second factor even when the policy is `optional`.
    #[serde(default)]
    pub second_factor_clients: Vec<String>,
    /// Offer a one-time code mailed to a person's verified address as a second factor (when
    /// mail is configured). Off by default: with "forgot password" by mail too, the mailbox
    /// alone opens the account.
    #[serde(default)]
    pub email_code: bool,
    /// How the tenant's pages look: display name, logo, colours, an extra stylesheet.
    #[serde(default, skip_serializing_if = "Branding::is_empty")]
    pub branding: Branding,
    /// The tenant's own plain-language descriptions of its scopes, per language, shown on
    /// consent and account pages (scope → language tag → text).
    #[serde(default, skip_serializing_if = "ScopeDescriptions::is_empty")]
    pub scope_descriptions: ScopeDescriptions,
    /// Which risk signals lead to what (the risk engine, `risk/`; `mandate tenant risk`).
    #[serde(default)]
    pub risk: super::risk_policy::RiskPolicy,
}

/// A tenant's rule for second factors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorPolicy {
    /// Asked of people who enrolled one (and of the clients listed in
    /// `second_factor_clients`).
    #[default]
    Optional,
    /// Asked of every sign-in; a person with none enrols one first.
    Required,
}

fn default_min_password_length() -> usize {
    crate::settings::MIN_PASSWORD_LENGTH
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            impersonation: false,
            authorization_details_types: Vec::new(),
            min_password_length: default_min_password_length(),
            second_factor: SecondFactorPolicy::Optional,
            second_factor_clients: Vec::new(),
            email_code: false,
            branding: Branding::default(),
            scope_descriptions: ScopeDescriptions::new(),
            risk: Default::default(),
        }
    }
}

impl TenantSettings {
    /// Does the policy require a second factor of every sign-in to `client_id`, whether or
    /// not the person enrolled one?
    pub fn second_factor_required(&self, client_id: &str) -> bool {
        self.second_factor == SecondFactorPolicy::Required
            || self.second_factor_clients.iter().any(|c| c == client_id)
    }

    /// Is every detail of a type the tenant accepts?
    pub fn details_allowed(&self, details: &[serde_json::Value]) -> bool {
        self.authorization_details_types.is_empty()
            || details.iter().all(|d| {
                d.get("type")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|t| self.authorization_details_types.iter().any(|a| a == t))
            })
    }
}

/// How a client proves its identity at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client_secret_basic" => Self::ClientSecretBasic,
            "client_secret_post" => Self::ClientSecretPost,
            "private_key_jwt" => Self::PrivateKeyJwt,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// OAuth grant types Mandate implements. No implicit and no password grant, ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// RFC 8693: an agent exchanges a person's token for a delegated one under a mandate.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// OpenID CIBA Core 1.0: an agent redeems an `auth_req_id` the person approved.
    #[serde(rename = "urn:openid:params:grant-type:ciba")]
    Ciba,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::TokenExchange => TOKEN_EXCHANGE,
            Self::Ciba => CIBA_GRANT,
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "authorization_code" => Self::AuthorizationCode,
            "refresh_token" => Self::RefreshToken,
            "client_credentials" => Self::ClientCredentials,
            TOKEN_EXCHANGE => Self::TokenExchange,
            CIBA_GRANT => Self::Ciba,
            _ => return None,
        })
    }
}

/// The RFC 8693 grant type URI.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The OpenID CIBA grant type URI (CIBA Core §10.1).
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// An OAuth client application registered in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub tenant_id: String,
    pub client_id: String,
    pub name: String,
    /// Keyed digest of the client secret; `None` for public and key-authenticated clients.
    pub secret_digest: Option<Vec<u8>>,
    pub auth_method: ClientAuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may ask for.
    pub scopes: Scope,
    /// Public JWK Set for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// `id_token_signed_response_alg`; RS256 when unset (OIDC Core §15.1).
    pub id_token_alg: Option<Alg>,
    /// Browser origins allowed to call token, userinfo and revocation (CORS).
    pub web_origins: Vec<String>,
    /// Seconds during which the previous refresh token is still accepted once, for clients on
    /// unreliable networks (0 = strict rotation; at most 60).
    pub refresh_grace_seconds: i64,
    pub created_at: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == ClientAuthMethod::None
    }
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

/// A person with an account in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub tenant_id: String,
    /// Stable subject identifier (`sub`).
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A browser login session (SSO). Stored under the digest of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub digest: Vec<u8>,
    pub tenant_id: String,
    /// Public session id for the `sid` claim (OIDC Front/Back-Channel Logout).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    pub expires_at: i64,
    /// When the person signed in, starting it.
    pub created_at: i64,
    /// The browser it was started from, as it names itself (`User-Agent`, clipped), so the
    /// person can tell their devices apart on the account page.
    pub user_agent: Option<String>,
    /// The client address it was started from.
    pub ip: Option<String>,
    /// The `acr` the risk decision at sign-in asks of this session before it is used (a
    /// second factor or a passkey: `risk::owed_acr`); met once `acr` satisfies it.
    pub risk_acr: Option<String>,
}

/// The authorization a user gave a client, tracked so that a reused code or a replayed refresh
/// token can revoke everything derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Everything an authorization code stands for. Stored under the code's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub digest: Vec<u8>,
    pub tenant_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Scope,
    pub nonce: Option<String>,
    pub sid: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub expires_at: i64,
    /// RFC 8707 resources the person authorized (empty: none named, tokens are for the
    /// issuer). The token endpoint may narrow them, never widen.
    pub resources: Vec<String>,
    /// For an agent's code: the mandate the person approved on the consent page. Its tokens
    /// carry `act` and `mandate` and stay inside it.
    pub mandate_id: Option<String>,
}

/// A refresh token: one link in a rotation family (= grant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub digest: Vec<u8>,
    pub tenant_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: Scope,
    pub sid: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub expires_at: i64,
    pub created_at: i64,
    /// When it was exchanged for its successor.
    pub spent_at: Option<i64>,
    /// For a refresh token issued with a delegated token (a mandate that allows it): the act
    /// chain, mandate, audiences and authorization_details every successor keeps.
    pub delegation: Option<serde_json::Value>,
    /// RFC 9449 §5: thumbprint of the DPoP key a public client's refresh token is bound to.
    /// Every refresh must prove possession of it, and its successor stays bound.
    pub dpop_jkt: Option<String>,
    /// RFC 8707 resources of the grant (from the authorization request); every successor
    /// keeps them and a refresh may only narrow them.
    pub resources: Vec<String>,
}

/// A user's standing consent for a client and a set of scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub tenant_id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: Scope,
    pub granted_at: i64,
}
