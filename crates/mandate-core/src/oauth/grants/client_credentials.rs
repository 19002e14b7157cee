//! The client credentials grant (RFC 6749 §4.4): a token for the client itself, `sub` = its
//! client_id (RFC 9068 §2.2). The hot path: no storage write besides the audit record.

use super::{Issued, TokenRequest, issued_event};
use crate::audit::{EventKind, RequestMeta};
use crate::domain::model::{Client, GrantType};
use crate::domain::scope::Scope;
use crate::error::OAuthError;
use crate::oauth::tokens::{self, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::settings::STANDARD_SCOPES;
use crate::store::AuditSink;

super::grant!(
    /// The client credentials grant (RFC 6749 §4.4).
    ClientCredentialsGrant,
    ClientCredentials,
    []
);

pub async fn exchange<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "public clients cannot use client_credentials",
        ));
    }
    let audience = tokens::parse_resources(&req.resources)?;
    let allowed = Scope::from_iter(
        client
            .scopes
            .iter()
            .filter(|s| !STANDARD_SCOPES.contains(s)),
    );
    let scope = match req.scope.as_deref() {
        None => allowed,
        Some(s) => {
            let asked =
                Scope::parse(s).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if !asked.is_subset(&allowed) {
                return Err(OAuthError::invalid_scope(
                    "requested scope is not allowed for this client",
                ));
            }
            asked
        }
    };
    let subject = TokenSubject {
        sub: client.client_id.clone(),
        auth_time: None,
        acr: None,
        amr: vec![],
        sid: None,
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = tokens::access_token(p, t, client, &subject, &scope, &audience)?;
    let scope_s = scope.to_string();
    let ev = issued_event(
        t,
        client,
        None,
        Issued {
            kind: EventKind::TokenIssued,
            grant: GrantType::ClientCredentials,
            at: &at,
            scope: &scope_s,
            refresh: false,
        },
        meta,
    );
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - p.now(),
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: None,
        id_token: None,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: None,
    })
}
