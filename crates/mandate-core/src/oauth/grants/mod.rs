//! The token endpoint and its grants (RFC 6749 §4–6), one file each, dispatched through a
//! registry ([`Grants`]). A grant implements [`Grant`]: its `grant_type`, the form parameters it
//! reads, and its exchange. What every grant shares runs once, in [`exchange`]: the bounds on
//! `resource`/`audience`, the DPoP proof, the client's allowed grants, and the audit record of a
//! refused request; the "issued" record is [`issued_event`]. Discovery's
//! `grant_types_supported` reads the registry. Flows above OAuth register their own grant
//! (CIBA's is `ciba::grant`), so this folder never names them. The client is already
//! authenticated when a grant runs.

pub mod authorization_code;
pub mod client_credentials;
pub mod delegated_refresh;
pub(crate) mod delegation;
pub mod refresh_token;
pub mod token_exchange;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::{Client, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{IssuedAccessToken, TokenResponse};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, GrantStore};

/// Most `resource` and `audience` values one token request may carry.
pub const MAX_TARGETS: usize = 16;

/// A token request: the parameters every grant may use, parsed, and the grant's own
/// parameters (those its [`Grant::parameters`] names) as sent.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    /// RFC 8707 `resource` (may repeat).
    pub resources: Vec<String>,
    /// RFC 8693 `audience` (may repeat).
    pub audiences: Vec<String>,
    /// RFC 9396 `authorization_details`, parsed.
    pub authorization_details: Option<Vec<serde_json::Value>>,
    /// RFC 9449: the one `DPoP` header's proof, if sent.
    pub dpop_proof: Option<String>,
    /// Set by [`exchange`] once the proof verified: the key the access token is bound to.
    pub dpop_jkt: Option<String>,
    /// The grant's own parameters, by name (empty values are absent).
    pub params: BTreeMap<&'static str, String>,
}

impl TokenRequest {
    /// One of the grant's own parameters.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// One grant of the token endpoint.
#[async_trait]
pub trait Grant: Send + Sync {
    /// The `grant_type` it answers.
    fn grant_type(&self) -> GrantType;
    /// The form parameters it reads beyond those of [`TokenRequest`]'s fields.
    fn parameters(&self) -> &'static [&'static str];
    /// Issue tokens for the authenticated `client`, or say why not.
    async fn exchange(
        &self,
        p: &Provider,
        t: &TenantCtx,
        client: &Client,
        req: &TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OAuthError>;
}

/// Declare a grant: `grant!(/// doc, Name, GrantTypeVariant, ["param", …])` makes `Name` a
/// [`Grant`] whose exchange is the calling module's `exchange` function.
macro_rules! grant {
    ($(#[$attr:meta])* $name:ident, $variant:ident, [$($param:literal),* $(,)?]) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        #[async_trait::async_trait]
        impl $crate::oauth::grants::Grant for $name {
            fn grant_type(&self) -> $crate::domain::model::GrantType {
                $crate::domain::model::GrantType::$variant
            }

            fn parameters(&self) -> &'static [&'static str] {
                &[$($param),*]
            }

            async fn exchange(
                &self,
                p: &$crate::provider::Provider,
                t: &$crate::provider::TenantCtx,
                client: &$crate::domain::model::Client,
                req: &$crate::oauth::grants::TokenRequest,
                meta: &$crate::audit::RequestMeta,
            ) -> Result<$crate::oauth::tokens::TokenResponse, $crate::error::OAuthError> {
                exchange(p, t, client, req, meta).await
            }
        }
    };
}
pub(crate) use grant;

/// The grants a token endpoint offers, in the order discovery lists them.
#[derive(Clone, Default)]
pub struct Grants(Vec<Arc<dyn Grant>>);

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.types()).finish()
    }
}

impl Grants {
    /// OAuth's own grants: authorization code, refresh token, client credentials and token
    /// exchange (RFC 8693).
    pub fn oauth() -> Self {
        Self::default()
            .with(authorization_code::AuthorizationCodeGrant)
            .with(refresh_token::RefreshTokenGrant)
            .with(client_credentials::ClientCredentialsGrant)
            .with(token_exchange::TokenExchangeGrant)
    }

    /// This registry with `grant` added (it replaces one for the same `grant_type`).
    pub fn with(mut self, grant: impl Grant + 'static) -> Self {
        self.0.retain(|g| g.grant_type() != grant.grant_type());
        self.0.push(Arc::new(grant));
        self
    }

    /// The grant for a `grant_type` value, if offered.
    pub fn find(&self, grant_type: &str) -> Option<&dyn Grant> {
        let g = GrantType::parse(grant_type)?;
        self.0
            .iter()
            .find(|x| x.grant_type() == g)
            .map(|x| x.as_ref())
    }

    /// The `grant_type` values offered (discovery's `grant_types_supported`).
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|g| g.grant_type().as_str())
    }
}

/// Run the grant the request names, with the steps every grant shares. The registry holds
/// grants as trait objects over the combined store; each grant's own steps name their ports.
pub async fn exchange(
    grants: &Grants,
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let handler = match req.grant_type.as_deref() {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(g) => grants.find(g).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("unsupported grant_type {g:?}"),
            )
        })?,
    };
    let grant = handler.grant_type();
    // Everything from here on is recorded when refused, DPoP proof failures included.
    let result = async {
        // RFC 8707 `resource` and RFC 8693 `audience` may repeat: bounded, like the
        // authorization endpoint's.
        let targets = req.resources.iter().chain(&req.audiences);
        if req.resources.len() + req.audiences.len() > MAX_TARGETS
            || targets.clone().any(|v| v.is_empty() || v.len() > 2048)
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("at most {MAX_TARGETS} non-empty resource and audience values"),
            ));
        }
        let mut req = req.clone();
        req.dpop_jkt = match &req.dpop_proof {
            None => None,
            Some(proof) => Some(crate::oauth::dpop::token_endpoint_proof(p, t, proof).await?),
        };
        let req = &req;
        // A token-exchange client may redeem the refresh tokens exchanges gave it (only a mandate
        // that allows refresh does).
        let delegated_refresh =
            grant == GrantType::RefreshToken && client.allows_grant(GrantType::TokenExchange);
        if !client.allows_grant(grant) && !delegated_refresh {
            return Err(OAuthError::unauthorized_client(format!(
                "client is not allowed the {} grant",
                grant.as_str()
            )));
        }
        handler.exchange(p, t, client, req, meta).await
    }
    .await;
    if let Err(e) = &result
        && !matches!(
            e.code,
            ErrorCode::ServerError | ErrorCode::AuthorizationPending | ErrorCode::SlowDown
        )
    {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::TokenRequestFailed,
            Outcome::Failure,
            Principal::Client {
                id: client.client_id.clone(),
            },
            meta,
        )
        .client(client.client_id.clone())
        .reason(e.code.as_str())
        .detail(json!({"grant_type": grant.as_str(), "error_description": e.description}));
        p.store.record(&ev).await?;
    }
    result
}

/// A single-use artefact came back a second time: revoke its whole grant (RFC 6749 §4.1.2,
/// RFC 9700 §4.14.2) and record it. `owner` is (grant id, client id, user id).
pub(crate) async fn replay_detected<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    kind: EventKind,
    owner: (&str, &str, &str),
    reason: &str,
    meta: &RequestMeta,
) -> Result<(), OAuthError> {
    let (grant_id, client_id, user_id) = owner;
    let revoked = p.store.revoke_grant(t.id(), grant_id, p.now()).await?;
    let ev = AuditEvent::new(
        t.id(),
        kind,
        Outcome::Failure,
        Principal::Client {
            id: client_id.to_string(),
        },
        meta,
    )
    .client(client_id.to_string())
    .subject(Principal::User {
        id: user_id.to_string(),
    })
    .reason(reason)
    .detail(json!({"grant_id": grant_id, "revoked": revoked}));
    p.store.record(&ev).await?;
    Ok(())
}

/// What was issued, for the audit record.
pub(crate) struct Issued<'a> {
    pub kind: EventKind,
    pub grant: GrantType,
    pub at: &'a IssuedAccessToken,
    pub scope: &'a str,
    pub refresh: bool,
}

/// The audit record of an issued token (never the token itself).
pub(crate) fn issued_event(
    t: &TenantCtx,
    client: &Client,
    subject: Option<Principal>,
    i: Issued<'_>,
    meta: &RequestMeta,
) -> AuditEvent {
    let Issued {
        kind,
        grant,
        at,
        scope,
        refresh,
    } = i;
    let actor = match &subject {
        Some(s @ Principal::User { .. }) => s.clone(),
        _ => Principal::Client {
            id: client.client_id.clone(),
        },
    };
    let mut ev = AuditEvent::new(t.id(), kind, Outcome::Success, actor, meta)
        .client(client.client_id.clone())
        .detail(json!({
            "grant_type": grant.as_str(),
            "scope": scope,
            "aud": at.audience,
            "jti": at.jti,
            "expires_at": at.expires_at,
            "refresh_token_issued": refresh,
        }));
    ev.subject = subject;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in grant for the registry's own rules (it never runs).
    struct Fake(GrantType);

    #[async_trait]
    impl Grant for Fake {
        fn grant_type(&self) -> GrantType {
            self.0
        }
        fn parameters(&self) -> &'static [&'static str] {
            &["x"]
        }
        async fn exchange(
            &self,
            _: &Provider,
            _: &TenantCtx,
            _: &Client,
            _: &TokenRequest,
            _: &RequestMeta,
        ) -> Result<TokenResponse, OAuthError> {
            Err(OAuthError::invalid_request("fake"))
        }
    }

    #[test]
    fn the_registry_offers_what_was_registered_and_nothing_else() {
        let g = Grants::oauth();
        assert_eq!(
            g.types().collect::<Vec<_>>(),
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                crate::domain::model::TOKEN_EXCHANGE
            ]
        );
        assert!(g.find(crate::domain::model::CIBA_GRANT).is_none());
        assert!(g.find("password").is_none());
        assert!(g.find("").is_none());
        assert_eq!(
            g.find("refresh_token").map(|x| x.parameters()),
            Some(&["refresh_token"][..])
        );
        // Adding a grant for a type already there replaces it, in last place.
        let g = g.with(Fake(GrantType::RefreshToken));
        assert_eq!(g.types().count(), 4);
        assert_eq!(g.types().last(), Some("refresh_token"));
        assert_eq!(
            g.find("refresh_token").map(|x| x.parameters()),
            Some(&["x"][..])
        );
        let g = Grants::default().with(Fake(GrantType::Ciba));
        assert_eq!(
            g.types().collect::<Vec<_>>(),
            [crate::domain::model::CIBA_GRANT]
        );
    }
}
