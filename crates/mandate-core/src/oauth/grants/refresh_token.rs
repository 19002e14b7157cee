//! The refresh token grant (RFC 6749 §6) with rotation on every use: presenting a spent
//! refresh token revokes its whole family (RFC 9700 §4.14.2). A delegated refresh token keeps
//! its delegation (`delegated_refresh.rs`).

use super::{Issued, TokenRequest, issued_event, replay_detected};
use crate::audit::{EventKind, Principal, RequestMeta};
use crate::crypto::secret::keyed_digest;
use crate::domain::model::{Client, GrantType, RefreshToken};
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::tokens::{self, IdTokenExtras, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, AuditSink, GrantStore, MandateStore, RiskStore, Spend, UserStore};

super::grant!(
    /// The refresh token grant (RFC 6749 §6), delegated refresh tokens included.
    RefreshTokenGrant,
    RefreshToken,
    ["refresh_token"]
);

pub async fn exchange<
    S: AgentStore + AuditSink + GrantStore + MandateStore + RiskStore + UserStore + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let value = req
        .param("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    tokens::parse_resources(&req.resources)?;
    let invalid = || OAuthError::invalid_grant("refresh token is invalid, expired or revoked");
    if value.len() > 256 {
        return Err(invalid());
    }
    let digest = keyed_digest(&t.tenant.secret_key, value);
    let rec = p
        .store
        .refresh(t.id(), &digest)
        .await?
        .ok_or_else(invalid)?;
    if rec.client_id != client.client_id {
        return Err(invalid().with_debug("refresh token of another client"));
    }
    // Before anything is spent: a refused proof must not cost the client its token.
    dpop_binding(&rec, req)?;
    // A spent token is a replay, unless the client opted into a grace period and this is the
    // family's most recent token, presented once more within it. One that can never be graced
    // is a replay whatever else the request says.
    let now = p.now();
    if let Some(spent_at) = rec.spent_at
        && !(client.refresh_grace_seconds > 0 && spent_at >= now - client.refresh_grace_seconds)
    {
        return Err(replay(p, t, &rec, meta).await?);
    }
    if rec.expires_at <= now {
        return Err(invalid().with_debug("expired"));
    }
    let user = p
        .store
        .user(t.id(), &rec.user_id)
        .await?
        .ok_or_else(|| invalid().with_debug("user gone"))?;
    // Everything is checked before the token (or its grace) is spent: a refused request
    // changes nothing, so the client's retry is not taken for a replay.
    let plan = match rec.delegation.clone() {
        Some(d) => Plan::Delegated(
            super::delegated_refresh::prepare(p, t, client, req, &rec, d, meta).await?,
        ),
        None => own_plan(p, t, client, req, &rec).await?,
    };
    let rec = if rec.spent_at.is_some() {
        in_grace_or_replay(p, t, client, &digest, meta).await?
    } else {
        match p.store.spend_refresh(t.id(), &digest, now).await? {
            Spend::Fresh(rec) => rec,
            Spend::Replayed(_) => in_grace_or_replay(p, t, client, &digest, meta).await?,
            Spend::Unknown => return Err(invalid()),
        }
    };
    let (scope, audience) = match plan {
        Plan::Delegated(prepared) => {
            return super::delegated_refresh::issue(p, t, client, req, &rec, prepared, meta).await;
        }
        Plan::Own { scope, audience } => (scope, audience),
    };
    let subject = TokenSubject {
        sub: user.id.clone(),
        auth_time: Some(rec.auth_time),
        acr: Some(rec.acr.clone()).filter(|a| !a.is_empty()),
        amr: rec.amr.clone(),
        sid: rec.sid.clone(),
        cnf_jkt: req.dpop_jkt.clone(),
    };
    let at = tokens::access_token(p, t, client, &subject, &scope, &audience)?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    // The successor keeps the original grant's scope and resources; only this access token is
    // narrowed.
    let (new_value, mut new_rt) =
        tokens::refresh_token(p, t, &rec.grant_id, client, &subject, &rec.scope);
    new_rt.resources = rec.resources.clone();
    p.store.insert_refresh(&new_rt).await?;
    let id_token = if scope.contains("openid") {
        Some(tokens::id_token(
            p,
            t,
            client,
            &subject,
            IdTokenExtras {
                nonce: None,
                access_token: Some(&at.token),
            },
        )?)
    } else {
        None
    };
    let scope_s = scope.to_string();
    let ev = issued_event(
        t,
        client,
        Some(Principal::User {
            id: user.id.clone(),
        }),
        Issued {
            kind: EventKind::TokenRefreshed,
            grant: GrantType::RefreshToken,
            at: &at,
            scope: &scope_s,
            refresh: true,
        },
        meta,
    );
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - p.now(),
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: Some(new_value),
        id_token,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: None,
    })
}

/// RFC 9449 §5: a refresh token bound to a DPoP key (a public client's) is redeemed only with
/// a valid proof by that key. No proof is `invalid_dpop_proof`; another key is `invalid_grant`,
/// as for any proof whose key does not match what it must be bound to.
fn dpop_binding(rec: &RefreshToken, req: &TokenRequest) -> Result<(), OAuthError> {
    let Some(bound) = rec.dpop_jkt.as_deref() else {
        return Ok(());
    };
    match req.dpop_jkt.as_deref() {
        None => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "this refresh token is bound to a DPoP key: send a DPoP proof by that key",
        )),
        Some(jkt) if jkt != bound => Err(OAuthError::invalid_grant(
            "the DPoP proof is not signed by the key this refresh token is bound to",
        )),
        Some(_) => Ok(()),
    }
}

/// What the refresh will issue, decided before anything is spent.
// One value per request, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Plan {
    Own { scope: Scope, audience: Vec<String> },
    Delegated(super::delegated_refresh::Prepared),
}

/// A person's own refresh token: scope and resources only narrow (RFC 6749 §6, RFC 8707). A
/// registered agent never holds one (its tokens for a person are delegated), so one presented
/// by an agent is refused.
async fn own_plan<S: AgentStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    rec: &RefreshToken,
) -> Result<Plan, OAuthError> {
    if p.store.agent(t.id(), &client.client_id).await?.is_some() {
        return Err(
            OAuthError::invalid_grant("refresh token is invalid, expired or revoked")
                .with_debug("a registered agent's refresh token without a mandate"),
        );
    }
    let scope = match req.scope.as_deref() {
        None => rec.scope.clone(),
        Some(s) => {
            let asked =
                Scope::parse(s).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?;
            if !asked.is_subset(&rec.scope) {
                return Err(OAuthError::invalid_scope(
                    "requested scope exceeds the original grant",
                ));
            }
            asked
        }
    };
    let audience = tokens::narrow_resources(&t.issuer, &rec.resources, &req.resources)?;
    Ok(Plan::Own { scope, audience })
}

/// A spent refresh token came back outside any grace period: revoke its family.
async fn replay<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    rec: &RefreshToken,
    meta: &RequestMeta,
) -> Result<OAuthError, OAuthError> {
    replay_detected(
        p,
        t,
        EventKind::RefreshReuseDetected,
        (&rec.grant_id, &rec.client_id, &rec.user_id),
        "spent refresh token presented; family revoked",
        meta,
    )
    .await?;
    Ok(
        OAuthError::invalid_grant("refresh token is invalid, expired or revoked")
            .with_debug("spent refresh token presented"),
    )
}

/// The token was already spent: accept it within the client's grace period, else treat it as
/// a replay and revoke the family.
async fn in_grace_or_replay<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    digest: &[u8],
    meta: &RequestMeta,
) -> Result<RefreshToken, OAuthError> {
    let now = p.now();
    if client.refresh_grace_seconds > 0
        && let Some(rec) = p
            .store
            .spend_refresh_in_grace(t.id(), digest, now - client.refresh_grace_seconds, now)
            .await?
    {
        return Ok(rec);
    }
    let invalid = OAuthError::invalid_grant("refresh token is invalid, expired or revoked");
    let Some(rec) = p.store.refresh(t.id(), digest).await? else {
        return Err(invalid);
    };
    replay_detected(
        p,
        t,
        EventKind::RefreshReuseDetected,
        (&rec.grant_id, &rec.client_id, &rec.user_id),
        "spent refresh token presented; family revoked",
        meta,
    )
    .await?;
    Err(invalid.with_debug("spent refresh token presented"))
}
