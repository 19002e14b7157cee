//! What a signed-in person may do about the agents acting for them: see the mandates they gave
//! (with the agent and when it last acted), grant new ones and revoke them, through the
//! "agents acting for you" page (session) or the self-service API (the person's own access
//! token). A person only ever sees and touches their own mandates, and an agent never manages
//! mandates: a delegated token, or any token held by an agent's client, is refused.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::agents::MandateTerms;
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::domain::agents::{Agent, Mandate, MandateOrigin};
use crate::error::{AdminError, ErrorCode, OAuthError};
use crate::oauth::dpop::{Presented, resource_claims};
use crate::provider::{Provider, TenantCtx};
use crate::store::{
    AgentStore, AuditLog, AuditQuery, AuditSink, ConsentStore, GrantStore, MandateSelector,
    MandateStore, ReplayStore, UserStore,
};

/// Why a person's own revocation is recorded.
pub const REVOKED_BY_USER: &str = "revoked by the user";

/// Why what consent allowed is revoked when the person withdraws it.
pub const CONSENT_WITHDRAWN: &str = "consent withdrawn";

/// The scope an app needs for the person's self-service mandate API.
pub const SELF_SCOPE: &str = "mandate:self";

/// Defaults of a mandate created through the API when the request leaves them out.
pub const DEFAULT_EXPIRES_IN: i64 = 3600;
/// See [`DEFAULT_EXPIRES_IN`].
pub const DEFAULT_MAX_TOKEN_LIFETIME: i64 = 300;

/// A mandate in force as its person sees it: the agent, its owner's name and when the agent
/// last acted under it (the newest token exchanged or issued (CIBA) under it).
#[derive(Debug, Clone)]
pub struct AgentMandate {
    pub mandate: Mandate,
    /// `None` if the agent record is gone (never expected: agents are kept for the trail).
    pub agent: Option<Agent>,
    /// The owning user's username, when a person owns the agent.
    pub owner_username: Option<String>,
    /// Unix time of the newest token exchange under the mandate.
    pub last_acted: Option<i64>,
}

impl AgentMandate {
    /// The API's JSON form.
    pub fn to_json(&self) -> Value {
        let m = &self.mandate;
        let agent = self.agent.as_ref().map(|a| {
            let mut v = a.metadata();
            v["status"] = a.status.as_str().into();
            v["owner_username"] = json!(self.owner_username);
            v
        });
        json!({
            "id": m.id,
            "agent": agent,
            "scope": m.scope.iter().collect::<Vec<_>>(),
            "resources": m.resources,
            "authorization_details": m.authorization_details,
            "expires_at": m.expires_at,
            "max_token_lifetime": m.max_token_lifetime,
            "max_delegation_depth": m.max_delegation_depth,
            "approval_required": m.approval_required,
            "allow_refresh": m.allow_refresh,
            "origin": m.origin.as_str(),
            "created_at": m.created_at,
            "last_acted_at": self.last_acted,
        })
    }
}

/// Every mandate `user_id` gave that is in force now, newest first.
pub async fn mandates<S: AgentStore + AuditLog + MandateStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
) -> Result<Vec<AgentMandate>, OAuthError> {
    let now = p.now();
    let mut out = Vec::new();
    for m in p.store.user_mandates(t.id(), user_id).await? {
        if !m.is_active(now) {
            continue;
        }
        let agent = p.store.agent(t.id(), &m.agent_id).await?;
        let owner_username = match agent.as_ref().and_then(|a| a.owner_user_id.as_deref()) {
            Some(owner) => p.store.user(t.id(), owner).await?.map(|u| u.username),
            None => None,
        };
        let q = AuditQuery {
            mandate: Some(m.id.clone()),
            kinds: vec![EventKind::TokenExchanged, EventKind::TokenIssued],
            limit: 1,
            ..AuditQuery::default()
        };
        let last_acted = p
            .store
            .audit_query(t.id(), &q)
            .await?
            .first()
            .map(|r| r.event.time);
        out.push(AgentMandate {
            mandate: m,
            agent,
            owner_username,
            last_acted,
        });
    }
    Ok(out)
}

fn store_failure(e: AdminError) -> OAuthError {
    match e {
        AdminError::Store(s) => s.into(),
        other => OAuthError::server_error(other.to_string()),
    }
}

/// Revoke one mandate `user_id` gave, if it is theirs and in force; `false` otherwise (the
/// caller answers "not found" either way, so other people's mandate ids reveal nothing). The
/// person's own sessions and tokens and their other mandates are untouched.
pub async fn revoke<S: AuditSink + MandateStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    mandate_id: &str,
    meta: &RequestMeta,
) -> Result<bool, OAuthError> {
    if mandate_id.is_empty() || mandate_id.len() > 128 {
        return Ok(false);
    }
    let Some(m) = p.store.mandate(t.id(), mandate_id).await? else {
        return Ok(false);
    };
    if m.user_id != user_id || !m.is_active(p.now()) {
        return Ok(false);
    }
    let ids = crate::agents::revoke_mandates_by(
        p.store.as_ref(),
        t.id(),
        MandateSelector::One(&m.id),
        user(user_id),
        meta,
        REVOKED_BY_USER,
    )
    .await
    .map_err(store_failure)?;
    Ok(!ids.is_empty())
}

/// Revoke every mandate `user_id` gave; returns the ids revoked.
pub async fn revoke_all<S: AuditSink + MandateStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    meta: &RequestMeta,
) -> Result<Vec<String>, OAuthError> {
    crate::agents::revoke_mandates_by(
        p.store.as_ref(),
        t.id(),
        MandateSelector::User(user_id),
        user(user_id),
        meta,
        REVOKED_BY_USER,
    )
    .await
    .map_err(store_failure)
}

/// What withdrawing consent ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Withdrawn {
    /// The stored consent was removed.
    pub consent: bool,
    /// Grants (token families) revoked: their refresh tokens and access tokens are dead.
    pub grants: Vec<String>,
    /// Mandates the person gave the agent on its consent page, revoked.
    pub mandates: Vec<String>,
}

impl Withdrawn {
    /// Did the withdrawal end anything?
    pub fn any(&self) -> bool {
        self.consent || !self.grants.is_empty() || !self.mandates.is_empty()
    }
}

/// Withdraw a person's consent for a client, and with it every access that consent gave: the
/// client's grants for the person (refresh token families, and their access tokens, which
/// introspect inactive from now on), and when the client is an agent, the mandates the person
/// gave it on the consent page. Each revoked grant is recorded as `token_revoked` (so Shared
/// Signals receivers hear a session-revoked event), each mandate as `mandate_revoked`, and the
/// withdrawal as `consent_withdrawn`. Idempotent; an unknown client ends nothing.
pub async fn withdraw_consent<
    S: AgentStore + AuditSink + ConsentStore + GrantStore + MandateStore + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    client_id: &str,
    meta: &RequestMeta,
) -> Result<Withdrawn, OAuthError> {
    if client_id.is_empty() || client_id.len() > 256 {
        return Ok(Withdrawn::default());
    }
    let consent = p.store.delete_consent(t.id(), user_id, client_id).await?;
    let grants = p
        .store
        .revoke_client_grants(t.id(), user_id, client_id, p.now())
        .await?;
    for g in &grants {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::TokenRevoked,
            Outcome::Success,
            user(user_id),
            meta,
        )
        .client(client_id.to_string())
        .subject(user(user_id))
        .reason(CONSENT_WITHDRAWN)
        .detail(json!({"grant_id": g, "token_type": "refresh_token"}));
        p.store.record(&ev).await?;
    }
    let mut mandates = Vec::new();
    if p.store.agent(t.id(), client_id).await?.is_some() {
        let now = p.now();
        for m in p.store.user_mandates(t.id(), user_id).await? {
            if m.agent_id == client_id && m.origin == MandateOrigin::Consent && m.is_active(now) {
                mandates.extend(
                    crate::agents::revoke_mandates_by(
                        p.store.as_ref(),
                        t.id(),
                        MandateSelector::One(&m.id),
                        user(user_id),
                        meta,
                        CONSENT_WITHDRAWN,
                    )
                    .await
                    .map_err(store_failure)?,
                );
            }
        }
    }
    let done = Withdrawn {
        consent,
        grants,
        mandates,
    };
    if done.any() {
        let ev = AuditEvent::new(
            t.id(),
            EventKind::ConsentWithdrawn,
            Outcome::Success,
            user(user_id),
            meta,
        )
        .subject(user(user_id))
        .client(client_id.to_string())
        .detail(json!({
            "consent_removed": done.consent,
            "grants_revoked": done.grants.len(),
            "mandates_revoked": done.mandates,
        }));
        p.store.record(&ev).await?;
    }
    Ok(done)
}

/// Where account pages send a person who is not signed in, and where they return afterwards
/// when the return address is not usable.
pub const ACCOUNT_HOME: &str = "/account";

/// The place to return to after the account sign-in, as a path under the tenant's issuer
/// (the caller prefixes the issuer, so the result never leaves this tenant): `Some` only for a
/// plain absolute path of printable ASCII with no `//`, backslash, fragment, or `.`/`..`
/// segment (also percent-encoded), so it cannot become another origin or climb into another
/// tenant's pages. Anything else is `None` (use [`ACCOUNT_HOME`]).
pub fn safe_return_to(path: &str) -> Option<&str> {
    let ok_chars = path
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#');
    if path.is_empty() || path.len() > 1024 || !ok_chars || !path.starts_with('/') {
        return None;
    }
    let route = path.split('?').next().unwrap_or_default();
    let lower = route.to_ascii_lowercase();
    if route.contains("//")
        || ["%2e", "%2f", "%5c", "%00"]
            .iter()
            .any(|x| lower.contains(x))
    {
        return None;
    }
    if route.split('/').any(|seg| seg == "." || seg == "..") {
        return None;
    }
    Some(path)
}

fn user(id: &str) -> Principal {
    Principal::User { id: id.to_string() }
}

/// A request of the self-service API to grant a mandate (`POST {issuer}/account/v1/mandates`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateRequest {
    pub agent_id: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub authorization_details: Vec<Value>,
    /// Seconds from now; default [`DEFAULT_EXPIRES_IN`].
    pub expires_in: Option<i64>,
    /// Seconds; default [`DEFAULT_MAX_TOKEN_LIFETIME`].
    pub max_token_lifetime: Option<i64>,
    #[serde(default)]
    pub max_delegation_depth: u32,
    #[serde(default)]
    pub approval_required: Vec<String>,
    /// Tokens under it may come with a refresh token.
    #[serde(default)]
    pub allow_refresh: bool,
}

/// Grant a mandate from `user_id` to an agent (origin `api`, actor the person), under the same
/// rules as an administrator's ([`crate::agents::grant_mandate`]). Bad terms or an unknown or
/// inactive agent are `invalid_request`.
pub async fn create<S: AgentStore + AuditSink + MandateStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    req: MandateRequest,
    meta: &RequestMeta,
) -> Result<Mandate, OAuthError> {
    if !t
        .tenant
        .settings
        .details_allowed(&req.authorization_details)
    {
        return Err(crate::oauth::authorize::unsupported_details_type());
    }
    let terms = MandateTerms {
        agent_id: req.agent_id,
        scopes: req.scope,
        authorization_details: req.authorization_details,
        resources: req.resources,
        expires_in: req.expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
        max_token_lifetime: req.max_token_lifetime.unwrap_or(DEFAULT_MAX_TOKEN_LIFETIME),
        max_delegation_depth: req.max_delegation_depth,
        approval_required: req.approval_required,
        allow_refresh: req.allow_refresh,
    };
    crate::agents::grant_mandate(
        p.store.as_ref(),
        t.id(),
        user_id,
        terms,
        MandateOrigin::Api,
        user(user_id),
        meta,
    )
    .await
    .map_err(|e| match e {
        AdminError::Invalid(why) => OAuthError::invalid_request(why),
        AdminError::NotFound(what) if what.starts_with("active agent") => {
            OAuthError::invalid_request("no such active agent")
        }
        AdminError::NotFound(_) => OAuthError::invalid_token("the token's user no longer exists"),
        other => store_failure(other),
    })
}

/// The person behind a self-service API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// How the person authenticated for the token (`auth_time`, `acr`, `amr` claims).
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
}

async fn refuse<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    meta: &RequestMeta,
    actor: Principal,
    client: &str,
    e: OAuthError,
) -> OAuthError {
    let ev = AuditEvent::new(
        t.id(),
        EventKind::AuthorizationFailed,
        Outcome::Failure,
        actor,
        meta,
    )
    .client(client.to_string())
    .reason(e.code.as_str())
    .detail(json!({"endpoint": "account/v1/mandates", "error_description": e.description}));
    match p.store.record(&ev).await {
        Ok(()) => e,
        Err(err) => err.into(),
    }
}

/// Verify the access token of a self-service API request (Bearer or DPoP-bound): valid, meant
/// for this issuer (`aud`), and the person's own: a token for a user, not delegated (`act`,
/// `mandate`) and not held by an agent's client. Missing or invalid → `invalid_token` (401);
/// a delegated, agent-held or non-person token → `insufficient_scope` (403), recorded.
pub async fn authenticate<
    S: AgentStore + AuditSink + MandateStore + ReplayStore + UserStore + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    token: Option<&Presented<'_>>,
    meta: &RequestMeta,
) -> Result<Caller, OAuthError> {
    let Some(token) = token else {
        return Err(OAuthError::invalid_token("an access token is required"));
    };
    let claims = resource_claims(p, t, token).await?.ok_or_else(|| {
        OAuthError::invalid_token("the access token is invalid, expired or revoked")
    })?;
    if !claims.is_for(&t.issuer) {
        return Err(OAuthError::invalid_token(
            "the access token is not meant for this issuer",
        ));
    }
    let sub = claims.sub.clone();
    let client_id = claims.client_id.clone();
    let insufficient = |why: &str| OAuthError::new(ErrorCode::InsufficientScope, why);
    // Only an app the person allowed to manage their delegations may: not any app they use.
    if !claims.scopes().any(|s| s == SELF_SCOPE) {
        let e = insufficient("the mandate:self scope is required");
        let actor = Principal::Client {
            id: client_id.clone(),
        };
        return Err(refuse(p, t, meta, actor, &client_id, e).await);
    }
    if claims.is_delegated() {
        let actor = match claims.chain().first() {
            Some(a) => Principal::Agent { id: a.to_string() },
            None => Principal::Client {
                id: client_id.clone(),
            },
        };
        let e = insufficient("a delegated token cannot manage mandates");
        return Err(refuse(p, t, meta, actor, &client_id, e).await);
    }
    if p.store.agent(t.id(), &client_id).await?.is_some() {
        let e = insufficient("an agent's token cannot manage mandates");
        let actor = Principal::Agent {
            id: client_id.clone(),
        };
        return Err(refuse(p, t, meta, actor, &client_id, e).await);
    }
    if sub.is_empty() || sub == client_id {
        let e = insufficient("the access token does not represent a person");
        let actor = Principal::Client {
            id: client_id.clone(),
        };
        return Err(refuse(p, t, meta, actor, &client_id, e).await);
    }
    if p.store.user(t.id(), &sub).await?.is_none() {
        return Err(OAuthError::invalid_token(
            "the token's user no longer exists",
        ));
    }
    Ok(Caller {
        user_id: sub,
        client_id,
        auth_time: claims.auth_time,
        acr: claims.acr.clone(),
        amr: claims.amr.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_under_the_issuer() {
        for ok in [
            "/account/consents",
            "/account/ciba/abc-DEF_1",
            "/authorize?x=1&y=%20",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "account",
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "/../other/account/consents",
            "/account/%2e%2e/x",
            "/a/%2F/b",
            "/account#x",
            "/account consents",
            "/account/\u{7f}",
            "/kont\u{e9}",
            "/a/./b",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
    }
}
