//! OpenID Connect Client-Initiated Backchannel Authentication (CIBA Core 1.0) for agents: an
//! agent asks, without a browser, to act for a named person on a specific task; the person
//! approves or denies on a page of their own signed-in session; approval records a mandate
//! (origin `ciba`) covering exactly what was asked, and the agent redeems its `auth_req_id` at
//! the token endpoint for a delegated token (the CIBA grant). Poll and ping delivery.
//!
//! The `auth_req_id` is stored only as a keyed digest, with one exception forced by ping mode:
//! the ping must carry it, so for a ping client it is kept until the ping has been sent.

pub mod grant;
pub mod model;
pub mod store;

pub use model::{
    CibaApproval, CibaRegistration, CibaRequest, CibaStatus, DeliveryMode, registration_terms,
};

use serde_json::{Value, json};

use crate::agents::MandateTerms;
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{keyed_digest, random_token};
use crate::domain::agents::{self, Agent, AgentStatus, MandateOrigin};
use crate::domain::model::{Client, GrantType, Session};
use crate::domain::scope::Scope;
use crate::error::{AdminError, ErrorCode, OAuthError};
use crate::oauth::authorize::{CONSENT_MANDATE_SECONDS, CONSENT_MAX_TOKEN_LIFETIME, OIDC_SCOPES};
use crate::oauth::tokens::parse_resources;
use crate::provider::{Provider, TenantCtx};
use crate::store::{AgentStore, AuditSink, CibaStore, MandateStore, RiskStore, UserStore};

/// How much `slow_down` adds to a client's polling interval (CIBA §11, RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: i64 = 5;
/// Longest `binding_message` accepted (characters); it has to fit on a phone screen.
pub const MAX_BINDING_MESSAGE: usize = 128;
/// Longest `client_notification_token` accepted (CIBA §7.1 asks for at least 128 bits).
pub const MAX_NOTIFICATION_TOKEN: usize = 1024;
/// How long the mandate an approval records runs, like one given on the consent page.
pub const CIBA_MANDATE_SECONDS: i64 = CONSENT_MANDATE_SECONDS;
/// The longest lifetime of one token under it.
pub const CIBA_MAX_TOKEN_LIFETIME: i64 = CONSENT_MAX_TOKEN_LIFETIME;

impl CibaRequest {
    /// The scopes a mandate carries: what was asked minus the OpenID Connect ones.
    pub fn delegated_scopes(&self) -> Vec<String> {
        self.scope
            .iter()
            .filter(|s| !OIDC_SCOPES.contains(s))
            .map(str::to_string)
            .collect()
    }
}

/// The parameters of `POST {issuer}/bc-authorize` (CIBA §7.1), as sent.
#[derive(Debug, Clone, Default)]
pub struct BackchannelRequest {
    pub scope: Option<String>,
    pub login_hint: Option<String>,
    pub login_hint_token: Option<String>,
    pub id_token_hint: Option<String>,
    pub binding_message: Option<String>,
    /// RFC 9396, still as JSON text.
    pub authorization_details: Option<String>,
    /// RFC 8707 (may repeat).
    pub resources: Vec<String>,
    pub requested_expiry: Option<String>,
    pub client_notification_token: Option<String>,
}

/// The successful response (CIBA §7.3), and what the webhook is told.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub auth_req_id: String,
    pub expires_in: i64,
    pub interval: i64,
    pub notice: Value,
}

impl Accepted {
    /// The JSON body of the response.
    pub fn to_json(&self) -> Value {
        json!({
            "auth_req_id": self.auth_req_id,
            "expires_in": self.expires_in,
            "interval": self.interval,
        })
    }
}

/// The page where the person decides on a request.
pub fn approval_url(t: &TenantCtx, request_id: &str) -> String {
    t.url(&format!("/account/ciba/{request_id}"))
}

fn ciba_error(code: ErrorCode, why: impl Into<String>) -> OAuthError {
    OAuthError::new(code, why)
}

/// Is the client an active agent registered for CIBA? Its agent and registration, or the
/// CIBA §13 error.
async fn ciba_agent<S: AgentStore + CibaStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
) -> Result<(Agent, CibaRegistration), OAuthError> {
    let agent = p
        .store
        .agent(t.id(), &client.client_id)
        .await?
        .ok_or_else(|| OAuthError::unauthorized_client("only registered agents may use CIBA"))?;
    if agent.status != AgentStatus::Active {
        return Err(OAuthError::unauthorized_client(format!(
            "the agent is {}",
            agent.status.as_str()
        )));
    }
    let reg = p
        .store
        .ciba_registration(t.id(), &client.client_id)
        .await?
        .filter(|_| client.allows_grant(GrantType::Ciba))
        .ok_or_else(|| OAuthError::unauthorized_client("the agent is not registered for CIBA"))?;
    Ok((agent, reg))
}

/// A token as it may appear in an `Authorization: Bearer` header (RFC 6750 §2.1 b64token).
fn bearer_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NOTIFICATION_TOKEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

/// Handle a backchannel authentication request of the authenticated `client` (CIBA §7): check
/// it, record it (audited `ciba_requested`) and answer with a fresh `auth_req_id`. A refusal
/// stores nothing but its `authorization_failed` audit record.
pub async fn backchannel_authorize<S: AgentStore + AuditSink + CibaStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &BackchannelRequest,
    meta: &RequestMeta,
) -> Result<Accepted, OAuthError> {
    let result = accept(p, t, client, req, meta).await;
    if let Err(e) = &result
        && e.code != ErrorCode::ServerError
    {
        let actor = match p.store.agent(t.id(), &client.client_id).await? {
            Some(a) => agent_actor(&a.id),
            None => Principal::Client {
                id: client.client_id.clone(),
            },
        };
        let ev = AuditEvent::new(
            t.id(),
            EventKind::AuthorizationFailed,
            Outcome::Failure,
            actor,
            meta,
        )
        .client(client.client_id.clone())
        .reason(e.code.as_str())
        .detail(json!({"endpoint": "bc-authorize", "error_description": e.description}));
        p.store.record(&ev).await?;
    }
    result
}

async fn accept<S: AgentStore + AuditSink + CibaStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client: &Client,
    req: &BackchannelRequest,
    meta: &RequestMeta,
) -> Result<Accepted, OAuthError> {
    let (agent, reg) = ciba_agent(p, t, client).await?;
    // Exactly one hint, and only login_hint is understood (CIBA §7.1).
    let hints = [
        req.login_hint.is_some(),
        req.login_hint_token.is_some(),
        req.id_token_hint.is_some(),
    ];
    match hints.iter().filter(|h| **h).count() {
        0 => return Err(OAuthError::invalid_request("login_hint is required")),
        1 => {}
        _ => {
            return Err(OAuthError::invalid_request(
                "exactly one of login_hint, login_hint_token and id_token_hint is allowed",
            ));
        }
    }
    let Some(login_hint) = req.login_hint.as_deref() else {
        return Err(OAuthError::invalid_request(
            "only login_hint (the person's username) is supported",
        ));
    };
    let scope = match req.scope.as_deref() {
        Some(s) => Scope::parse(s).ok_or_else(|| OAuthError::invalid_scope("malformed scope"))?,
        None => Scope::default(),
    };
    let details = match req.authorization_details.as_deref() {
        None => Vec::new(),
        Some(d) => agents::parse_details(d).ok_or_else(|| {
            ciba_error(
                ErrorCode::InvalidAuthorizationDetails,
                "authorization_details must be a JSON array of objects with a type",
            )
        })?,
    };
    if !t.tenant.settings.details_allowed(&details) {
        return Err(crate::oauth::authorize::unsupported_details_type());
    }
    let delegated: Scope = scope.iter().filter(|s| !OIDC_SCOPES.contains(s)).collect();
    if delegated.is_empty() && details.is_empty() {
        return Err(OAuthError::invalid_scope(
            "ask for a scope or authorization_details to act on (openid alone delegates nothing)",
        ));
    }
    if !delegated.is_subset(&agent.scope_ceiling) {
        return Err(OAuthError::invalid_scope(
            "the requested scope exceeds the agent's scope ceiling",
        ));
    }
    let resources = parse_resources(&req.resources)?;
    if let Some(m) = req.binding_message.as_deref()
        && (m.chars().count() > MAX_BINDING_MESSAGE || m.chars().any(char::is_control))
    {
        return Err(ciba_error(
            ErrorCode::InvalidBindingMessage,
            format!("binding_message must be at most {MAX_BINDING_MESSAGE} printable characters"),
        ));
    }
    let lifetime = match req.requested_expiry.as_deref() {
        None => p.settings.ciba_default_expiry,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => n.min(p.settings.ciba_max_expiry),
            _ => {
                return Err(OAuthError::invalid_request(
                    "requested_expiry must be a positive number of seconds",
                ));
            }
        },
    };
    let notification_token = match (reg.mode, req.client_notification_token.as_deref()) {
        (DeliveryMode::Ping, None) => {
            return Err(OAuthError::invalid_request(
                "client_notification_token is required in ping mode",
            ));
        }
        (_, Some(tok)) if !bearer_safe(tok) => {
            return Err(OAuthError::invalid_request(format!(
                "client_notification_token must be a bearer token of at most \
                 {MAX_NOTIFICATION_TOKEN} characters"
            )));
        }
        (DeliveryMode::Ping, Some(tok)) => Some(tok.to_string()),
        (DeliveryMode::Poll, _) => None,
    };
    if login_hint.len() > 256 {
        return Err(ciba_error(ErrorCode::UnknownUserId, "unknown user"));
    }
    let user = p
        .store
        .user_by_username(t.id(), login_hint)
        .await?
        .ok_or_else(|| ciba_error(ErrorCode::UnknownUserId, "unknown user"))?;
    let now = p.now();
    let auth_req_id = random_token(32);
    let r = CibaRequest {
        tenant_id: t.id().to_string(),
        id: random_token(16),
        digest: keyed_digest(&t.tenant.secret_key, &auth_req_id),
        client_id: client.client_id.clone(),
        user_id: user.id.clone(),
        scope,
        authorization_details: details,
        resources,
        binding_message: req.binding_message.clone(),
        ping_auth_req_id: notification_token.as_ref().map(|_| auth_req_id.clone()),
        notification_token,
        status: CibaStatus::Pending,
        interval: p.settings.ciba_interval,
        last_polled_at: None,
        expires_at: now + lifetime,
        created_at: now,
        decided_at: None,
        approval: None,
    };
    p.store.insert_ciba_request(&r).await?;
    let ev = event(
        t,
        EventKind::CibaRequested,
        &r,
        agent_actor(&agent.id),
        meta,
    )
    .detail(json!({
        "request_id": r.id,
        "scope": r.scope.to_string(),
        "authorization_details": r.authorization_details,
        "resources": r.resources,
        "binding_message": r.binding_message,
        "delivery_mode": reg.mode.as_str(),
        "expires_at": r.expires_at,
    }));
    p.store.record(&ev).await?;
    let notice = json!({
        "tenant": t.tenant.name,
        "request_id": r.id,
        "user": {"id": user.id, "username": user.username},
        "agent": {"id": agent.id, "name": agent.name, "provider": agent.provider,
                  "model": agent.model},
        "binding_message": r.binding_message,
        "scope": r.scope.to_string(),
        "authorization_details": r.authorization_details,
        "approval_url": approval_url(t, &r.id),
        "expires_at": r.expires_at,
    });
    Ok(Accepted {
        auth_req_id,
        expires_in: lifetime,
        interval: r.interval,
        notice,
    })
}

fn agent_actor(id: &str) -> Principal {
    Principal::Agent { id: id.to_string() }
}

/// An audit record about a request: subject the person, client the agent, and the mandate once
/// approved.
pub(crate) fn event(
    t: &TenantCtx,
    kind: EventKind,
    r: &CibaRequest,
    actor: Principal,
    meta: &RequestMeta,
) -> AuditEvent {
    let outcome = match kind {
        EventKind::CibaDenied | EventKind::CibaExpired => Outcome::Failure,
        _ => Outcome::Success,
    };
    // The agent's own steps carry it as the act chain; the person's decision does not.
    let chain = match &actor {
        Principal::Agent { id } => vec![agent_actor(id)],
        _ => Vec::new(),
    };
    let mut ev = AuditEvent::new(t.id(), kind, outcome, actor, meta)
        .subject(Principal::User {
            id: r.user_id.clone(),
        })
        .client(r.client_id.clone());
    ev.act_chain = chain;
    ev.mandate_id = r.approval.as_ref().map(|a| a.mandate_id.clone());
    ev
}

/// A request waiting for its person, with the agent that asked.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    pub request: CibaRequest,
    pub agent: Option<Agent>,
}

impl PendingRequest {
    /// The self-service API's JSON form.
    pub fn to_json(&self, t: &TenantCtx) -> Value {
        let r = &self.request;
        json!({
            "id": r.id,
            "agent": self.agent.as_ref().map(Agent::metadata),
            "binding_message": r.binding_message,
            "scope": r.scope.iter().collect::<Vec<_>>(),
            "authorization_details": r.authorization_details,
            "resources": r.resources,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "approval_url": approval_url(t, &r.id),
        })
    }
}

/// The requests waiting for `user_id`, newest first.
pub async fn pending<S: AgentStore + CibaStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
) -> Result<Vec<PendingRequest>, OAuthError> {
    let mut out = Vec::new();
    for r in p
        .store
        .pending_ciba_requests(t.id(), user_id, p.now())
        .await?
    {
        let agent = p.store.agent(t.id(), &r.client_id).await?;
        out.push(PendingRequest { request: r, agent });
    }
    Ok(out)
}

/// One request waiting for `user_id`; `None` when it is not theirs, not pending or expired (so
/// other people's request ids reveal nothing).
pub async fn pending_one<S: AgentStore + CibaStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    user_id: &str,
    id: &str,
) -> Result<Option<PendingRequest>, OAuthError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    let Some(r) = p.store.ciba_request(t.id(), id).await? else {
        return Ok(None);
    };
    if r.user_id != user_id || r.status != CibaStatus::Pending || r.expires_at <= p.now() {
        return Ok(None);
    }
    let agent = p.store.agent(t.id(), &r.client_id).await?;
    Ok(Some(PendingRequest { request: r, agent }))
}

/// A ping to send (CIBA §10.2): POST `{"auth_req_id"}` to `endpoint` with `Authorization:
/// Bearer {token}`.
#[derive(Debug, Clone)]
pub struct Ping {
    pub request_id: String,
    pub endpoint: String,
    pub token: String,
    pub auth_req_id: String,
}

impl Ping {
    /// The ping's JSON body.
    pub fn body(&self) -> Value {
        json!({ "auth_req_id": self.auth_req_id })
    }
}

/// The person deciding, and how they authenticated (for the tokens' `auth_time`/`acr`/`amr`).
#[derive(Debug, Clone)]
pub struct Approver {
    pub user_id: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
}

impl From<&Session> for Approver {
    fn from(s: &Session) -> Self {
        Approver {
            user_id: s.user_id.clone(),
            auth_time: s.auth_time,
            acr: s.acr.clone(),
            amr: s.amr.clone(),
        }
    }
}

impl From<&crate::account::Caller> for Approver {
    /// Through the self-service API: the person's token's authentication (or now, if it
    /// does not say).
    fn from(c: &crate::account::Caller) -> Self {
        Approver {
            user_id: c.user_id.clone(),
            auth_time: c.auth_time.unwrap_or_else(crate::time::now),
            acr: c.acr.clone().unwrap_or_default(),
            amr: c.amr.clone(),
        }
    }
}

/// The person's decision was recorded.
#[derive(Debug, Clone)]
pub struct Decided {
    pub approved: bool,
    /// The mandate an approval recorded.
    pub mandate_id: Option<String>,
    /// In ping mode, the ping to send now.
    pub ping: Option<Ping>,
}

/// The person (signed in, or through the self-service API) approves or denies one of their
/// pending requests. Approval records a
/// mandate (origin `ciba`, actor the person) covering exactly what was asked, for
/// [`CIBA_MANDATE_SECONDS`], tokens of at most [`CIBA_MAX_TOKEN_LIFETIME`], no
/// sub-delegation. Audited `ciba_approved` / `ciba_denied` with the person as actor. `None`
/// when the request is not theirs, already decided or expired.
pub async fn decide<
    S: AgentStore + AuditSink + CibaStore + MandateStore + UserStore + RiskStore + ?Sized,
>(
    p: &Provider<S>,
    t: &TenantCtx,
    who: &Approver,
    id: &str,
    approve: bool,
    meta: &RequestMeta,
) -> Result<Option<Decided>, OAuthError> {
    let Some(PendingRequest { request: r, .. }) = pending_one(p, t, &who.user_id, id).await? else {
        return Ok(None);
    };
    let person = Principal::User {
        id: who.user_id.clone(),
    };
    let approval = if approve {
        let terms = MandateTerms {
            agent_id: r.client_id.clone(),
            scopes: r.delegated_scopes(),
            authorization_details: r.authorization_details.clone(),
            resources: r.resources.clone(),
            expires_in: CIBA_MANDATE_SECONDS,
            max_token_lifetime: CIBA_MAX_TOKEN_LIFETIME,
            max_delegation_depth: 0,
            approval_required: Vec::new(),
            allow_refresh: false,
        };
        let m = crate::agents::grant_mandate(
            p.store.as_ref(),
            t.id(),
            &who.user_id,
            terms,
            MandateOrigin::Ciba,
            person.clone(),
            meta,
        )
        .await
        .map_err(|e| match e {
            AdminError::Invalid(why) => OAuthError::invalid_request(why),
            AdminError::NotFound(what) => OAuthError::invalid_request(format!("{what} not found")),
            other => OAuthError::server_error(other.to_string()),
        })?;
        Some(CibaApproval {
            mandate_id: m.id,
            auth_time: who.auth_time,
            acr: who.acr.clone(),
            amr: who.amr.clone(),
        })
    } else {
        None
    };
    let now = p.now();
    if !p
        .store
        .decide_ciba_request(t.id(), &r.id, approval.as_ref(), now)
        .await?
    {
        // Decided concurrently (or it just expired): the mandate must not outlive that.
        if let Some(a) = &approval {
            crate::agents::revoke_mandates_by(
                p.store.as_ref(),
                t.id(),
                crate::store::MandateSelector::One(&a.mandate_id),
                person,
                meta,
                "backchannel request no longer pending",
            )
            .await
            .map_err(|e| OAuthError::server_error(e.to_string()))?;
        }
        return Ok(None);
    }
    let decided = CibaRequest {
        approval: approval.clone(),
        ..r.clone()
    };
    let kind = if approve {
        EventKind::CibaApproved
    } else {
        EventKind::CibaDenied
    };
    let ev = event(t, kind, &decided, person, meta).detail(json!({
        "request_id": r.id,
        "scope": r.scope.to_string(),
        "authorization_details": r.authorization_details,
    }));
    p.store.record(&ev).await?;
    if decided.approval.is_some() {
        crate::risk::approved(p, t, &r.client_id, &who.user_id).await?;
    }
    let ping = match (r.notification_token, r.ping_auth_req_id) {
        (Some(token), Some(auth_req_id)) => p
            .store
            .ciba_registration(t.id(), &r.client_id)
            .await?
            .and_then(|reg| reg.notification_endpoint)
            .map(|endpoint| Ping {
                request_id: r.id.clone(),
                endpoint,
                token,
                auth_req_id,
            }),
        _ => None,
    };
    Ok(Some(Decided {
        approved: approve,
        mandate_id: approval.map(|a| a.mandate_id),
        ping,
    }))
}

/// The ping for a request was sent (or given up on): forget the `auth_req_id` kept for it.
pub async fn ping_done<S: CibaStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    request_id: &str,
) -> Result<(), OAuthError> {
    Ok(p.store.clear_ciba_ping(t.id(), request_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(registration_terms("poll", None).is_ok());
        assert!(registration_terms("push", None).is_err());
        assert!(registration_terms("poll", Some("https://a.example/cb")).is_err());
        assert!(registration_terms("ping", None).is_err());
        assert!(registration_terms("ping", Some("https://a.example/cb")).is_ok());
        // Loopback only behind the development switch (off here).
        assert!(registration_terms("ping", Some("http://127.0.0.1:9000/cb")).is_err());
        assert!(registration_terms("ping", Some("http://localhost/cb")).is_err());
        assert!(registration_terms("ping", Some("http://a.example/cb")).is_err());
        assert!(registration_terms("ping", Some("http://10.0.0.1/cb")).is_err());
        assert!(registration_terms("ping", Some("https://10.0.0.1/cb")).is_err());
        assert!(registration_terms("ping", Some("https://169.254.169.254/cb")).is_err());
        assert!(registration_terms("ping", Some("not a url")).is_err());
    }

    #[test]
    fn notification_tokens_fit_a_header() {
        assert!(bearer_safe("abc-DEF_123.~+/="));
        assert!(!bearer_safe(""));
        assert!(!bearer_safe("a b"));
        assert!(!bearer_safe("a\r\nX: y"));
        assert!(!bearer_safe(&"a".repeat(MAX_NOTIFICATION_TOKEN + 1)));
    }
}
