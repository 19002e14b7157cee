//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636) and OIDC ID tokens.
//! Everything is checked before the code is spent, so a rejected request changes nothing; a
//! replayed code revokes everything issued from it (RFC 6749 §4.1.2). The token's audiences
//! are the resources the person authorized, or fewer (RFC 8707). A registered agent's code
//! yields a delegated token (`act`, `mandate`) inside the mandate the person approved on the
//! consent page ([`super::delegation`]); an agent never gets a person's plain token here.

use mandate_token::act::Act;
use serde_json::{Value, json};

use super::delegation::{self, Asked, Bounds, Delegation, Granted, delegated_token};
use super::{Issued, TokenRequest, issued_event, replay_detected};
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::keyed_digest;
use crate::domain::agents::{Agent, Mandate};
use crate::domain::model::{AuthCode, Client, GrantType};
use crate::domain::pkce;
use crate::domain::scope::Scope;
use crate::error::OAuthError;
use crate::oauth::authorize::OIDC_SCOPES;
use crate::oauth::tokens::{self, IdTokenExtras, TokenResponse, TokenSubject};
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, AuditSink, GrantStore, MandateStore, Spend, UserStore};

super::grant!(
    /// The authorization code grant (RFC 6749 §4.1.3, PKCE RFC 7636).
    AuthorizationCodeGrant,
    AuthorizationCode,
    ["code", "redirect_uri", "code_verifier"]
);

pub async fn exchange<
    S: AgentStore + AuditSink + GrantStore + MandateStore + UserStore + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let code = req
        .param("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = req
        .param("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    tokens::parse_resources(&req.resources)?;
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
    match req.param("code_verifier") {
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
    // Everything about what may be issued is decided before the code is spent.
    let plan = plan(p, t, client, req, &rec).await?;
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
    let audience = match plan {
        Plan::Own { audience } => audience,
        Plan::Delegated {
            agent,
            mandate,
            granted,
        } => {
            return delegated(
                p, t, client, &rec, &subject, &agent, &mandate, granted, meta,
            )
            .await;
        }
        Plan::Identity { agent } => {
            return identity_only(p, t, client, &rec, &subject, &agent, meta).await;
        }
    };
    let at = tokens::access_token(p, t, client, &subject, &rec.scope, &audience)?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let refresh = if client.allows_grant(GrantType::RefreshToken) {
        let (value, mut rt) =
            tokens::refresh_token(p, t, &rec.grant_id, client, &subject, &rec.scope);
        rt.resources = rec.resources.clone();
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

/// What redeeming the code will issue, decided before it is spent.
// One value per request, moved once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Plan {
    /// The client's own token for the person, for these audiences.
    Own { audience: Vec<String> },
    /// A registered agent's code under the mandate the person approved.
    Delegated {
        agent: Agent,
        mandate: Mandate,
        granted: Granted,
    },
    /// A registered agent that only asked who the person is (OpenID Connect scopes, no
    /// mandate): an ID token, and an access token good for userinfo only.
    Identity { agent: Agent },
}

async fn plan<S: AgentStore + MandateStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &TokenRequest,
    rec: &AuthCode,
) -> Result<Plan, OAuthError> {
    let agent = delegation::active_agent(p, t, client, |why| {
        OAuthError::invalid_client(why.to_string())
    })
    .await?;
    let Some(agent) = agent else {
        if rec.mandate_id.is_some() {
            return Err(OAuthError::invalid_grant(
                "authorization code is invalid, expired or was already used",
            )
            .with_debug("mandate code of a client that is not an agent"));
        }
        return Ok(Plan::Own {
            audience: tokens::narrow_resources(&t.issuer, &rec.resources, &req.resources)?,
        });
    };
    delegation::dpop_required(&agent, req)?;
    let Some(mandate_id) = rec.mandate_id.as_deref() else {
        // Nothing was delegated: only the issuer (userinfo) as audience.
        tokens::narrow_resources(&t.issuer, &[], &req.resources)?;
        return Ok(Plan::Identity { agent });
    };
    let mandate = delegation::mandate_in_force(p, t, mandate_id, &rec.user_id, &agent.id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the approved mandate is no longer in force"))?;
    delegation::mandate_ttl_left(p, &mandate)?;
    let granted = delegation::fit(
        &t.issuer,
        &mandate,
        &agent,
        &Bounds {
            scope: &rec.scope,
            audiences: (!rec.resources.is_empty()).then_some(rec.resources.as_slice()),
            details: None,
        },
        &Asked {
            scope: None,
            audiences: tokens::parse_resources(&req.resources)?,
            details: req.authorization_details.as_deref(),
        },
    )?;
    Ok(Plan::Delegated {
        agent,
        mandate,
        granted,
    })
}

/// An agent's code under its mandate: a delegated token (and, when the mandate allows
/// refresh, a delegated refresh token of the code's grant); the ID token tells the agent who
/// the person is.
#[allow(clippy::too_many_arguments)]
async fn delegated<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    rec: &AuthCode,
    subject: &TokenSubject,
    agent: &Agent,
    mandate: &Mandate,
    granted: Granted,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let act = Act::new(agent.id.clone());
    let at = delegated_token(
        p,
        t,
        client,
        &Delegation {
            mandate,
            subject,
            scope: &granted.scope,
            audience: &granted.audience,
            details: &granted.details,
            act: act.clone(),
        },
    )?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let refresh = if mandate.allow_refresh {
        let d = json!({
            "act": act.to_value(),
            "mandate": mandate.id,
            "aud": granted.audience,
            "authorization_details": granted.details,
        });
        let (value, mut rt) = super::delegated_refresh::successor(
            p,
            t,
            &rec.grant_id,
            client,
            subject,
            &granted.scope,
            mandate,
            d,
        );
        rt.resources = granted.audience.clone();
        p.store.insert_refresh(&rt).await?;
        Some(value)
    } else {
        None
    };
    let id_token = id_token_for(p, t, client, rec, subject, &at.token)?;
    let scope_s = granted.scope.to_string();
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::TokenIssued,
        Outcome::Success,
        Principal::Agent {
            id: agent.id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: subject.sub.clone(),
    })
    .client(client.client_id.clone())
    .detail(json!({
        "grant_type": GrantType::AuthorizationCode.as_str(),
        "scope": scope_s,
        "aud": at.audience,
        "jti": at.jti,
        "expires_at": at.expires_at,
        "authorization_details": granted.details,
        "refresh_token_issued": refresh.is_some(),
        "delegated": true,
    }));
    ev.act_chain = vec![Principal::Agent {
        id: agent.id.clone(),
    }];
    ev.mandate_id = Some(mandate.id.clone());
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - p.now(),
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: refresh,
        id_token,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: (!granted.details.is_empty())
            .then_some(Value::Array(granted.details)),
    })
}

/// An agent that only signed the person in: its access token names the agent (`act`), carries
/// only the OpenID Connect scopes, is for the issuer alone, and comes without a refresh token.
async fn identity_only<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    rec: &AuthCode,
    subject: &TokenSubject,
    agent: &Agent,
    meta: &RequestMeta,
) -> Result<TokenResponse, OAuthError> {
    let scope = rec
        .scope
        .intersect(&Scope::from_iter(OIDC_SCOPES.iter().copied()));
    let at = tokens::access_token_with(
        p,
        t,
        client,
        subject,
        &scope,
        std::slice::from_ref(&t.issuer),
        p.settings.access_token_ttl,
        tokens::DelegatedClaims {
            act: Some(Act::new(agent.id.clone())),
            ..Default::default()
        },
    )?;
    p.store
        .record_access_token(t.id(), &at.jti, &rec.grant_id, at.expires_at)
        .await?;
    let id_token = id_token_for(p, t, client, rec, subject, &at.token)?;
    let scope_s = scope.to_string();
    let mut ev = issued_event(
        t,
        client,
        Some(Principal::User {
            id: subject.sub.clone(),
        }),
        Issued {
            kind: EventKind::TokenIssued,
            grant: GrantType::AuthorizationCode,
            at: &at,
            scope: &scope_s,
            refresh: false,
        },
        meta,
    );
    ev.act_chain = vec![Principal::Agent {
        id: agent.id.clone(),
    }];
    p.store.record(&ev).await?;
    Ok(TokenResponse {
        expires_in: at.expires_at - p.now(),
        access_token: at.token,
        token_type: subject.token_type(),
        refresh_token: None,
        id_token,
        scope: scope_s,
        issued_token_type: None,
        authorization_details: None,
    })
}

fn id_token_for<S: ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    rec: &AuthCode,
    subject: &TokenSubject,
    access_token: &str,
) -> Result<Option<String>, OAuthError> {
    if !rec.scope.contains("openid") {
        return Ok(None);
    }
    tokens::id_token(
        p,
        t,
        client,
        subject,
        IdTokenExtras {
            nonce: rec.nonce.as_deref(),
            access_token: Some(access_token),
        },
    )
    .map(Some)
}
