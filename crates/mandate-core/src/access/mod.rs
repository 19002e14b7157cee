//! The admin API's rules (`/admin/v1/…`): who may call it, and the audit log read through it.
//!
//! A caller presents an access token from the tenant's own issuer (RFC 6750 bearer), meant for
//! the issuer (`aud`), carrying [`ADMIN_SCOPE`]; a client gets one with `client_credentials`
//! after `mandate client create … --scope mandate:admin`. A person's token (one whose `sub` is a
//! person) needs the scope AND a role the person holds ([`crate::access::roles`]): the scope a client
//! was registered with never makes its users administrators. Delegated tokens (`act`,
//! `mandate`) are refused. The same rule guards every privileged scope (AuthZEN, SSF). Every
//! refusal is audited.

pub mod roles;
pub mod store;

use serde_json::json;

use crate::access::roles::{Right, roles_allow};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::dpop::{Presented, resource_claims};
use crate::provider::{Provider, TenantCtx};
use crate::store::{
    AuditLog, AuditQuery, AuditRecord, AuditSink, MandateStore, ReplayStore, RoleStore,
};

/// The scope that grants the admin API.
pub const ADMIN_SCOPE: &str = "mandate:admin";

/// Who called the admin API, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    /// The client that holds the token.
    pub client_id: String,
    /// The principal acting: the user for a user's token, else the client.
    pub principal: Principal,
}

async fn deny<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    meta: &RequestMeta,
    actor: Principal,
    client: Option<&str>,
    error: OAuthError,
) -> OAuthError {
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::AdminAccessDenied,
        Outcome::Failure,
        actor,
        meta,
    )
    .reason(error.code.as_str())
    .detail(json!({"error_description": error.description}));
    ev.client_id = client.map(str::to_string);
    match p.store.record(&ev).await {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

/// Verify an admin API bearer token: invalid or missing → `invalid_token` (401), valid but
/// without the admin scope, or a person's token without the `admin` role → `insufficient_scope`
/// (403). Both are recorded.
pub async fn authenticate<S: AuditSink + MandateStore + ReplayStore + RoleStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: Option<&Presented<'_>>,
    meta: &RequestMeta,
) -> Result<AdminCaller, OAuthError> {
    authenticate_for(p, t, token, meta, ADMIN_SCOPE).await
}

/// The scope a policy enforcement point needs to ask the AuthZEN API for decisions.
pub const AUTHZ_SCOPE: &str = "mandate:authz";

/// [`authenticate`] for another scope (e.g. [`AUTHZ_SCOPE`]); a person needs the `admin` role.
pub async fn authenticate_for<S: AuditSink + MandateStore + ReplayStore + RoleStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: Option<&Presented<'_>>,
    meta: &RequestMeta,
    scope: &str,
) -> Result<AdminCaller, OAuthError> {
    authorize(p, t, token, meta, scope, Right::Manage).await
}

/// [`authenticate_for`] with the right the route needs: a person's token passes only if a
/// role they hold gives `right` (e.g. `auditor` for [`Right::ReadAudit`]).
pub async fn authorize<S: AuditSink + MandateStore + ReplayStore + RoleStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: Option<&Presented<'_>>,
    meta: &RequestMeta,
    scope: &str,
    right: Right,
) -> Result<AdminCaller, OAuthError> {
    let claims = match token {
        Some(tok) => match resource_claims(p, t, tok).await {
            Ok(c) => c,
            Err(e) if e.code != ErrorCode::ServerError => {
                return Err(deny(p, t, meta, Principal::Anonymous, None, e).await);
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let Some(claims) = claims else {
        let why = if token.is_some() {
            "the access token is invalid, expired, revoked or from another issuer"
        } else {
            "an access token is required"
        };
        let e = OAuthError::invalid_token(why);
        return Err(deny(p, t, meta, Principal::Anonymous, None, e).await);
    };
    let client_id = claims.client_id.clone();
    let sub = claims.sub.clone();
    let principal = if sub.is_empty() || sub == client_id {
        Principal::Client {
            id: client_id.clone(),
        }
    } else {
        Principal::User { id: sub }
    };
    if !claims.is_for(&t.issuer) {
        let e = OAuthError::invalid_token("the access token is not meant for this issuer");
        return Err(deny(p, t, meta, principal, Some(&client_id), e).await);
    }
    if !claims.scopes().any(|s| s == scope) {
        let e = OAuthError::new(
            ErrorCode::InsufficientScope,
            format!("the {scope} scope is required"),
        );
        return Err(deny(p, t, meta, principal, Some(&client_id), e).await);
    }
    if let Principal::User { id } = &principal {
        // An agent acting for a person never administers: only the person themselves.
        let why = if claims.is_delegated() {
            Some("a delegated token cannot use this API")
        } else if !roles_allow(&p.store.user_roles(t.id(), id).await?, right) {
            Some("the person does not hold a role that allows this")
        } else {
            None
        };
        if let Some(why) = why {
            let e = OAuthError::new(ErrorCode::InsufficientScope, why);
            return Err(deny(p, t, meta, principal, Some(&client_id), e).await);
        }
    }
    Ok(AdminCaller {
        client_id,
        principal,
    })
}

/// A page of the tenant's audit log for an admin caller; the read itself is recorded.
/// Returns the records and the cursor of the next page (`None` on the last).
pub async fn query_audit<S: AuditLog + AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    caller: &AdminCaller,
    q: &AuditQuery,
    meta: &RequestMeta,
) -> Result<(Vec<AuditRecord>, Option<i64>), OAuthError> {
    let records = p.store.audit_query(t.id(), q).await?;
    let next = match records.last() {
        Some(r) if records.len() as u32 == q.limit => Some(r.seq),
        _ => None,
    };
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::AuditQueried,
        Outcome::Success,
        caller.principal.clone(),
        meta,
    )
    .client(caller.client_id.clone())
    .detail(json!({"returned": records.len()}));
    if let Principal::User { .. } = &caller.principal {
        ev.subject = Some(caller.principal.clone());
    }
    p.store.record(&ev).await?;
    Ok((records, next))
}
