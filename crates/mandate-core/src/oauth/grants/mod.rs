//! The token endpoint's grants, one module each (RFC 6749 §4–6). The client is already
//! authenticated when a grant runs.

pub mod authorization_code;
pub mod ciba;
pub mod client_credentials;
pub mod delegated_refresh;
pub(crate) mod delegation;
pub mod refresh_token;
pub mod token_exchange;

use serde_json::json;

use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::{Client, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{IssuedAccessToken, TokenResponse};
use crate::provider::{Provider, TenantCtx};

/// Most `resource` and `audience` values one token request may carry.
pub const MAX_TARGETS: usize = 16;

/// The token request parameters, as parsed from the form body.
#[derive(Debug, Default, Clone)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// RFC 8707 `resource` (may repeat).
    pub resources: Vec<String>,
    /// RFC 8693 parameters.
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    /// RFC 8693 `audience` (may repeat).
    pub audiences: Vec<String>,
    /// RFC 9396 `authorization_details`, parsed.
    pub authorization_details: Option<Vec<serde_json::Value>>,
    /// RFC 9449: the one `DPoP` header's proof, if sent.
    pub dpop_proof: Option<String>,
    /// Set by [`exchange`] once the proof verified: the key the access token is bound to.
    pub dpop_jkt: Option<String>,
    /// CIBA: the `auth_req_id` being redeemed.
    pub auth_req_id: Option<String>,
}

/// Run the grant the request names.
pub async fn exchange(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let grant = match req.grant_type.as_deref() {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(g) => GrantType::parse(g).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("unsupported grant_type {g:?}"),
            )
        })?,
    };
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
        match grant {
            GrantType::AuthorizationCode => {
                authorization_code::exchange(p, t, client, req, meta).await
            }
            GrantType::RefreshToken => refresh_token::exchange(p, t, client, req, meta).await,
            GrantType::ClientCredentials => {
                client_credentials::exchange(p, t, client, req, meta).await
            }
            GrantType::TokenExchange => token_exchange::exchange(p, t, client, req, meta).await,
            GrantType::Ciba => ciba::exchange(p, t, client, req, meta).await,
        }
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
pub(crate) async fn replay_detected(
    p: &Provider,
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
