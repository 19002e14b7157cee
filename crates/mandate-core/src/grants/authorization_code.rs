//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636) and OIDC ID tokens.
//! Everything is checked before the code is spent, so a rejected request changes nothing; a
//! replayed code revokes everything issued from it (RFC 6749 §4.1.2).

use super::{Issued, TokenRequest, issued_event, replay_detected};
use crate::audit::{EventKind, Principal, RequestMeta};
use crate::error::OAuthError;
use crate::model::{Client, GrantType};
use crate::pkce;
use crate::provider::{Provider, TenantCtx};
use crate::secret::keyed_digest;
use crate::store::Spend;
use crate::tokens::{self, IdTokenExtras, TokenResponse, TokenSubject};

pub async fn exchange(
    p: &Provider,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = req
        .redirect_uri
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let audience = tokens::parse_resources(&req.resources)?;
    let invalid =
        || OAuthError::invalid_grant("authorization code is invalid, expired or was already used");
    if code.len() > 256 {
        return Err(invalid());
    }
    let digest = keyed_digest(&t.tenant.secret_key, code);
    let (rec, consumed) = p.store.code(t.id(), &digest).await?.ok_or_else(invalid)?;
    if rec.client_id != client.client_id {
        return Err(invalid().with_debug("code issued to another client"));
    }
    if consumed {
        replay_detected(
            p,
            t,
            EventKind::CodeReuseDetected,
            (&rec.grant_id, &rec.client_id, &rec.user_id),
            "authorization code presented twice; grant revoked",
            meta,
        )
        .await?;
        return Err(invalid().with_debug("code reuse"));
    }
    if rec.expires_at <= p.now() {
        return Err(invalid().with_debug("code expired"));
    }
    if rec.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match req.code_verifier.as_deref() {
        None => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required (PKCE)",
            ));
        }
        Some(v) if !pkce::verify_s256(v, &rec.code_challenge) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        Some(_) => {}
    }
    let user = p
        .store
        .user(t.id(), &rec.user_id)
        .await?
        .ok_or_else(|| invalid().with_debug("user gone"))?;
    let rec = match p.store.consume_code(t.id(), &digest, p.now()).await? {
        Spend::Fresh(rec) => rec,
        Spend::Replayed(rec) => {
            replay_detected(
                p,
                t,
                EventKind::CodeReuseDetected,
                (&rec.grant_id, &rec.client_id, &rec.user_id),
                "authorization code presented twice; grant revoked",
                meta,
            )
            .await?;
            return Err(invalid().with_debug("code reuse (race)"));
        }
        Spend::Unknown => return Err(invalid()),
    };
    let subject = TokenSubject {
        sub: user.id.clone(),
        auth_time: Some(rec.auth_time),
        acr: Some(rec.acr.clone()),
        amr: rec.amr.clone(),
        sid: rec.sid.clone(),
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = tokens::access_token(p, t, client, &subject, &rec.scope, &audience)?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let refresh = if client.allows_grant(GrantType::RefreshToken) {
        let (value, rt) = tokens::refresh_token(p, t, &rec.grant_id, client, &subject, &rec.scope);
        p.store.insert_refresh(&rt).await?;
        Some(value)
    } else {
        None
    };
    let id_token = if rec.scope.contains("openid") {
        Some(tokens::id_token(
            p,
            t,
            client,
            &subject,
            IdTokenExtras {
                nonce: rec.nonce.as_deref(),
                access_token: Some(&at.token),
            },
        )?)
    } else {
        None
    };
    let scope = rec.scope.to_string();
    let ev = issued_event(
        t,
        client,
        Some(Principal::User {
            id: user.id.clone(),
        }),
        Issued {
            kind: EventKind::TokenIssued,
            grant: GrantType::AuthorizationCode,
            at: &at,
            scope: &scope,
            refresh: refresh.is_some(),
        },
        meta,
    );
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - p.now(),
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: refresh,
        id_token,
        scope,
        issued_token_type: None,
        authorization_details: None,
    })
}
