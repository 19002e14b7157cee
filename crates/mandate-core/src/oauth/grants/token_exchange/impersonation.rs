//! RFC 8693 impersonation, off unless a tenant enables it (`mandate tenant set T
//! --impersonation on`): a client registered for token exchange that is not an agent exchanges
//! a person's own access token for a token for that person with no `act`. It only ever
//! narrows (scope within the subject token's and the client's, audiences within the subject
//! token's, lifetime within both), never takes a delegated token (no laundering), and is
//! recorded as `token_impersonated`. Agents always get delegation instead.

use serde_json::json;

use super::subject::{ACCESS_TOKEN_TYPE, requested_type_supported, token_claims};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::model::Client;
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::grants::TokenRequest;
use crate::oauth::tokens::{self, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AuditSink, MandateStore, UserStore};

/// Issue an impersonation token; the caller has checked the tenant allows it.
pub async fn exchange<S: AuditSink + MandateStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let now = p.now();
    if req.param("actor_token").is_some() || req.param("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "impersonation takes no actor_token (delegation is for registered agents)",
        ));
    }
    requested_type_supported(req)?;
    if req.authorization_details.is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidAuthorizationDetails,
            "authorization_details are not offered for impersonation",
        ));
    }
    let subject = token_claims(
        p,
        t,
        req.param("subject_token"),
        req.param("subject_token_type"),
        "subject_token",
    )
    .await?;
    if subject.is_delegated() {
        return Err(OAuthError::invalid_request(
            "a delegated token cannot be exchanged for a token without its actors",
        ));
    }
    let user_id = subject.sub.clone();
    if subject.client_id == user_id || p.store.user(t.id(), &user_id).await?.is_none() {
        return Err(OAuthError::invalid_request(
            "the subject_token does not represent a person",
        ));
    }
    let ceiling = Scope::parse(subject.scope.as_deref().unwrap_or_default())
        .unwrap_or_default()
        .intersect(&client.scopes);
    let scope = match req.scope.as_deref() {
        None => ceiling,
        Some(s) => {
            let asked =
                Scope::parse(s).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if !asked.is_subset(&ceiling) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds the subject token's and the client's",
                ));
            }
            asked
        }
    };
    if scope.is_empty() {
        return Err(OAuthError::invalid_scope("no scope is left to grant"));
    }
    let subject_aud: Vec<String> = subject.aud.list().into_iter().map(str::to_string).collect();
    let mut audience: Vec<String> = req.resources.clone();
    audience.extend(req.audiences.iter().cloned());
    if audience.is_empty() {
        audience = subject_aud.clone();
    } else if let Some(bad) = audience.iter().find(|a| !subject_aud.contains(a)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("the subject token is not for {bad}"),
        ));
    }
    audience.sort();
    audience.dedup();
    let ttl = p.settings.access_token_ttl.min(subject.exp - now);
    if ttl <= 0 {
        return Err(OAuthError::invalid_request("the subject_token has expired"));
    }
    let info = TokenSubject {
        sub: user_id.clone(),
        auth_time: subject.auth_time,
        acr: subject.acr.clone(),
        amr: vec![],
        sid: None,
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = tokens::access_token_with(
        p,
        t,
        client,
        &info,
        &scope,
        &audience,
        ttl,
        Default::default(),
    )?;
    let scope_s = scope.to_string();
    let ev = AuditEvent::new(
        t.id(),
        EventKind::TokenImpersonated,
        Outcome::Success,
        Principal::Client {
            id: client.client_id.clone(),
        },
        meta,
    )
    .subject(Principal::User { id: user_id })
    .client(client.client_id.clone())
    .reason("impersonation")
    .detail(json!({
        "grant_type": crate::domain::model::TOKEN_EXCHANGE,
        "scope": scope_s,
        "aud": at.audience,
        "jti": at.jti,
        "expires_at": at.expires_at,
        "subject_token_jti": subject.jti,
    }));
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        access_token: at.token,
        token_type: info.token_type(),
        expires_in: at.expires_at - now,
        refresh_token: None,
        id_token: None,
        scope: scope_s,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        authorization_details: None,
    })
}
