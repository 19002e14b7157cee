//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): request validation, the
//! decision of what the user must do next, and code issuance. Pure rules over the request, the
//! session and the stored consent; the HTTP layer renders and redirects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::agents::MandateTerms;
use crate::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use crate::crypto::secret::{b64, b64_decode, ct_eq, keyed_digest, random_token};
use crate::domain::agents::{self, Agent, AgentStatus, Mandate, MandateOrigin};
use crate::domain::model::{AuthCode, Client, Consent, Grant, GrantType, Session};
use crate::domain::scope::Scope;
use crate::error::{ErrorCode, OAuthError, StoreError};
use crate::login::method::{
    LoginMethod, SecondFactorStep, acr_satisfies, second_factor_ids, second_factor_step,
    sign_in_ids,
};
use crate::provider::{Provider, TenantCtx};
use crate::store::{
    AgentStore, AuditSink, ClientStore, ConsentStore, GrantStore, MandateStore, UserStore,
};
use crate::{domain::pkce, domain::redirect};

/// A validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Scope,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
    /// OIDC Core §3.1.2.1 `acr_values`, in order of preference (voluntary: a value no login
    /// method reaches is not refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// RFC 8707 `resource` indicators (absolute URIs without fragment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// RFC 9396 `authorization_details` (typed objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details: Vec<Value>,
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).ok_or_else(|| serde::de::Error::custom("bad scope"))
    }
}

/// How an authorization error reaches the user agent.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Client or redirect URI unusable: show an error page, never redirect (no open redirector).
    Page(OAuthError),
    /// Redirect the error to the client's validated redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

impl From<OAuthError> for AuthorizeError {
    fn from(e: OAuthError) -> Self {
        AuthorizeError::Page(e)
    }
}

const MAX_PARAM: usize = 2048;

/// Most RFC 8707 `resource` parameters one request may carry.
const MAX_RESOURCES: usize = 16;
/// Most `acr_values` one request may name.
const MAX_ACR_VALUES: usize = 8;

/// Validate the raw parameters (each appears at most once; the HTTP layer ensured that).
pub async fn validate<S: ClientStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    params: &BTreeMap<String, String>,
) -> Result<(Arc<Client>, AuthorizeRequest), AuthorizeError> {
    validate_request(p, t, params, &[]).await
}

/// RFC 9396 §5: a type the tenant does not accept.
pub fn unsupported_details_type() -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidAuthorizationDetails,
        "an authorization_details type is not supported here",
    )
}

/// [`validate`], with the request's RFC 8707 `resource` parameters (the one parameter that may
/// repeat).
pub async fn validate_request<S: ClientStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    params: &BTreeMap<String, String>,
    resources: &[String],
) -> Result<(Arc<Client>, AuthorizeRequest), AuthorizeError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    for (k, v) in params {
        if v.len() > MAX_PARAM && k != "id_token_hint" || v.len() > 16 * 1024 {
            return Err(AuthorizeError::Page(OAuthError::invalid_request(format!(
                "parameter {k} is too long"
            ))));
        }
    }
    let client_id =
        get("client_id").ok_or_else(|| OAuthError::invalid_request("client_id is required"))?;
    let client = p
        .client(t, client_id)
        .await
        .map_err(OAuthError::from)?
        .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    let redirect_uri = match get("redirect_uri") {
        // A URI registered before registration refused bad characters is never redirected to.
        Some(r)
            if redirect::matches(&client.redirect_uris, r, client.is_public())
                && redirect::valid_for_registration(r) =>
        {
            r.to_string()
        }
        Some(_) => {
            return Err(AuthorizeError::Page(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            )));
        }
        None if client.redirect_uris.len() == 1
            && redirect::valid_for_registration(&client.redirect_uris[0])
            && !get("scope").unwrap_or("").split(' ').any(|s| s == "openid") =>
        {
            client.redirect_uris[0].clone()
        }
        None => {
            return Err(AuthorizeError::Page(OAuthError::invalid_request(
                "redirect_uri is required",
            )));
        }
    };
    let state = params.get("state").cloned();
    let fail = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
    };

    if params.contains_key("request") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        )));
    }
    if params.contains_key("request_uri") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        )));
    }
    match get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if let Some(m) = get("response_mode")
        && m != "query"
    {
        return Err(fail(OAuthError::invalid_request(
            "only response_mode=query is supported",
        )));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::unauthorized_client(
            "client may not use the authorization code grant",
        )));
    }
    let code_challenge = get("code_challenge").ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "code_challenge is required (PKCE)",
        ))
    })?;
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        )));
    }
    if !pkce::valid_challenge(code_challenge) {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge is malformed",
        )));
    }
    let asked = Scope::parse(get("scope").unwrap_or(""))
        .ok_or_else(|| fail(OAuthError::invalid_scope("malformed scope")))?;
    let scope = asked.intersect(&client.scopes);
    if scope.is_empty() && !asked.is_empty() {
        return Err(fail(OAuthError::invalid_scope(
            "none of the requested scopes is allowed for this client",
        )));
    }
    // A space-separated parameter's values (OIDC Core §3.1.2.1).
    let words = |name: &str| -> Vec<String> {
        get(name)
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let prompt = words("prompt");
    for pr in &prompt {
        if !matches!(pr.as_str(), "none" | "login" | "consent" | "select_account") {
            return Err(fail(OAuthError::invalid_request(format!(
                "unsupported prompt value {pr:?}"
            ))));
        }
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(fail(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        )));
    }
    let acr_values = words("acr_values");
    if acr_values.len() > MAX_ACR_VALUES {
        return Err(fail(OAuthError::invalid_request("too many acr_values")));
    }
    let max_age = match get("max_age") {
        None => None,
        Some(m) => Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            fail(OAuthError::invalid_request(
                "max_age must be a non-negative integer",
            ))
        })?),
    };
    if resources.len() > MAX_RESOURCES
        || resources
            .iter()
            .any(|r| r.len() > MAX_PARAM || url::Url::parse(r).is_err() || r.contains('#'))
    {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidTarget,
            "each resource must be an absolute URI without fragment (RFC 8707)",
        )));
    }
    let mut resource_list: Vec<String> = Vec::new();
    for r in resources {
        if !resource_list.contains(r) {
            resource_list.push(r.clone());
        }
    }
    let authorization_details = match get("authorization_details") {
        None => Vec::new(),
        Some(d) => agents::parse_details(d).ok_or_else(|| {
            fail(OAuthError::new(
                ErrorCode::InvalidAuthorizationDetails,
                "authorization_details must be a JSON array of objects with a type (RFC 9396)",
            ))
        })?,
    };
    if !t.tenant.settings.details_allowed(&authorization_details) {
        return Err(fail(unsupported_details_type()));
    }
    let req = AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.clone(),
        nonce: get("nonce").map(str::to_string),
        code_challenge: code_challenge.to_string(),
        prompt,
        max_age,
        login_hint: get("login_hint").map(str::to_string),
        ui_locales: get("ui_locales").map(str::to_string),
        id_token_hint: get("id_token_hint").map(str::to_string),
        acr_values,
        resources: resource_list,
        authorization_details,
    };
    Ok((client, req))
}

/// What the user agent must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Sign in with one of these login methods (their ids, first factors).
    Login {
        methods: Vec<&'static str>,
    },
    /// Signed in with a first factor; one of these methods must follow.
    SecondFactor {
        methods: Vec<&'static str>,
    },
    /// Signed in with a first factor, a second is required and the person has none: enrol one
    /// of these now (it then counts as the second factor of this sign-in).
    EnrolSecondFactor {
        methods: Vec<&'static str>,
    },
    /// Signed in, but the request asks for more assurance: authenticate again with one of
    /// `methods` (those on offer that reach `acr`, of any factor).
    StepUp {
        acr: String,
        methods: Vec<&'static str>,
    },
    /// The risk decision owed this session a passkey and the person has none: the step it owes
    /// becomes a second factor (to be recorded with `reason`, `no_passkey`, so the operator sees
    /// it), proven with one of `methods` (their own, else the code by e-mail).
    RiskFallback {
        reason: &'static str,
        methods: Vec<&'static str>,
    },
    /// The risk decision owed this session a step nothing the person has can give (no passkey,
    /// no second factor, no verified address): refused, to be recorded with `reason`
    /// (`no_passkey`, `no_second_factor`). Enrolling a factor there and then never meets it.
    RiskRefused {
        error: OAuthError,
        reason: &'static str,
    },
    Consent,
    Issue,
    Fail(OAuthError),
}

/// Facts the decision depends on besides the request.
#[derive(Debug, Clone, Default)]
pub struct Situation<'a> {
    pub session: Option<&'a Session>,
    pub consent: Option<&'a Consent>,
    /// The user authenticated within this very interaction.
    pub logged_in_now: bool,
    /// `sub` of a valid `id_token_hint`, if one was sent.
    pub hint_sub: Option<&'a str>,
    /// The client is a registered agent: approving creates a mandate, so consent is asked
    /// every time and never remembered.
    pub agent: bool,
    /// The login methods on offer: with a session, those its person can use
    /// (`login::second_factor::Enrolment::methods`); without, the tenant's
    /// (`login::offered`).
    pub methods: &'a [&'a dyn LoginMethod],
    /// This sign-in must prove a second factor (the tenant's policy, the client, or the person
    /// enrolled one: `login::second_factor::required`).
    pub second_factor_required: bool,
    /// The second factors a person who has none may enrol during the sign-in
    /// (`login::second_factor::enrolable`): for the tenant's or the client's requirement only,
    /// never for a step the risk decision owes.
    pub enrol: &'a [&'a dyn LoginMethod],
    /// What may meet a step the risk decision owes when the person has no second factor of
    /// their own (`login::second_factor::risk_fallback`: the code to their verified address).
    pub risk_fallback: &'a [&'a dyn LoginMethod],
    pub now: i64,
}

/// Decide the next step (OIDC Core §3.1.2.3, prompt, max_age and acr_values semantics): log in,
/// step up to a requested `acr`, add a second factor, consent, or issue.
pub fn next_step(req: &AuthorizeRequest, s: &Situation<'_>) -> Next {
    let none = req.prompt.iter().any(|p| p == "none");
    let must_log_in = || {
        if none {
            Next::Fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user must log in",
            ))
        } else {
            Next::Login {
                methods: sign_in_ids(s.methods),
            }
        }
    };
    let sess = match s.session {
        None => return must_log_in(),
        Some(sess) => sess,
    };
    let stale = !s.logged_in_now
        && (req.prompt.iter().any(|p| p == "login")
            || req.max_age.is_some_and(|m| s.now - sess.auth_time > m)
            || s.hint_sub.is_some_and(|h| h != sess.user_id));
    if stale {
        return must_log_in();
    }
    // `acr_values`: the first one some method reaches, unless the session already satisfies
    // one; a value no method reaches is voluntary and ignored.
    let satisfied = req.acr_values.is_empty()
        || req
            .acr_values
            .iter()
            .any(|want| acr_satisfies(&sess.acr, want));
    if !satisfied
        && let Some(acr) = req
            .acr_values
            .iter()
            .find(|want| s.methods.iter().any(|m| acr_satisfies(m.acr(), want)))
    {
        return if none {
            Next::Fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "the request asks for a stronger authentication",
            ))
        } else {
            // Any factor may do: the person is signed in, so a second factor can add what
            // is missing.
            let methods = s
                .methods
                .iter()
                .filter(|m| acr_satisfies(m.acr(), acr))
                .map(|m| m.id())
                .collect();
            Next::StepUp {
                acr: acr.clone(),
                methods,
            }
        };
    }
    // Risk at sign-in (`crate::risk`) may owe this session a stronger `acr`: a passkey (a
    // step-up to `phr`), else (the person has none) a second factor; a second factor is one of
    // the person's own, else the code to their verified address; never one enrolled now
    // (whoever typed a stolen password would enrol their own), else refused.
    let owed = sess
        .risk_acr
        .as_deref()
        .filter(|owed| !acr_satisfies(&sess.acr, owed));
    if let Some(owed) = owed {
        let mfa = crate::settings::ACR_MFA;
        if owed != mfa {
            let methods: Vec<&'static str> = s
                .methods
                .iter()
                .filter(|m| acr_satisfies(m.acr(), owed))
                .map(|m| m.id())
                .collect();
            if !methods.is_empty() {
                return if none {
                    Next::Fail(OAuthError::new(
                        ErrorCode::LoginRequired,
                        "this sign-in must be phishing-resistant",
                    ))
                } else {
                    Next::StepUp {
                        acr: owed.to_string(),
                        methods,
                    }
                };
            }
        }
        let own = second_factor_ids(s.methods);
        let methods = if own.is_empty() {
            second_factor_ids(s.risk_fallback)
        } else {
            own
        };
        let reason = if owed == mfa {
            "no_second_factor"
        } else {
            "no_passkey"
        };
        return if methods.is_empty() {
            Next::RiskRefused {
                error: OAuthError::new(
                    ErrorCode::UnmetAuthenticationRequirements,
                    "this sign-in needs a stronger authentication and none is available",
                ),
                reason,
            }
        } else if none {
            Next::Fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "this sign-in needs a stronger authentication",
            ))
        } else if owed == mfa {
            Next::SecondFactor { methods }
        } else {
            Next::RiskFallback { reason, methods }
        };
    }
    if s.second_factor_required
        && let Some(step) = second_factor_step(&sess.amr, s.methods, s.enrol)
    {
        return match step {
            SecondFactorStep::Unavailable => Next::Fail(OAuthError::new(
                ErrorCode::UnmetAuthenticationRequirements,
                "a second factor is required and none is available",
            )),
            SecondFactorStep::Verify(_) if none => Next::Fail(OAuthError::new(
                ErrorCode::LoginRequired,
                "a second factor is required",
            )),
            // Enrolling is an interaction, not an authentication (OIDC Core §3.1.2.6).
            SecondFactorStep::Enrol(_) if none => Next::Fail(OAuthError::new(
                ErrorCode::InteractionRequired,
                "a second factor must be set up",
            )),
            SecondFactorStep::Verify(methods) => Next::SecondFactor { methods },
            SecondFactorStep::Enrol(methods) => Next::EnrolSecondFactor { methods },
        };
    }
    let consented = !s.agent && s.consent.is_some_and(|c| req.scope.is_subset(&c.scope));
    if !consented || req.prompt.iter().any(|p| p == "consent") {
        return if none {
            Next::Fail(OAuthError::new(
                ErrorCode::ConsentRequired,
                "the user must consent",
            ))
        } else {
            Next::Consent
        };
    }
    Next::Issue
}

/// Record a refused authorization request: who asked (the `client_id` as sent, truncated: it
/// is not trusted) and why. One failure policy: when the record cannot be written, the caller
/// answers with that error instead.
pub async fn record_refusal<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    meta: &RequestMeta,
    client_id: Option<&str>,
    e: &OAuthError,
) -> Result<(), StoreError> {
    let mut ev = AuditEvent::new(
        t.id(),
        EventKind::AuthorizationFailed,
        Outcome::Failure,
        Principal::Anonymous,
        meta,
    )
    .reason(e.code.as_str());
    ev.client_id = client_id.map(|c| c.chars().take(256).collect());
    ev.detail = json!({"error_description": e.description});
    p.store.record(&ev).await
}

/// The person denied consent: recorded, and the `access_denied` the client is sent.
pub async fn deny_consent<S: AuditSink + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    req: &AuthorizeRequest,
    session: &Session,
    meta: &RequestMeta,
) -> Result<OAuthError, StoreError> {
    let person = Principal::User {
        id: session.user_id.clone(),
    };
    let ev = AuditEvent::new(
        t.id(),
        EventKind::AuthorizationFailed,
        Outcome::Failure,
        person.clone(),
        meta,
    )
    .subject(person)
    .client(req.client_id.clone())
    .reason("consent denied");
    p.store.record(&ev).await?;
    Ok(OAuthError::new(
        ErrorCode::AccessDenied,
        "the user denied the request",
    ))
}

/// Issue a code for the request and return the redirect URL that carries it. The code keeps
/// the request's RFC 8707 resources (the token endpoint may only narrow them) and, for an
/// agent, the `mandate` the person just approved (its tokens stay inside it).
pub async fn issue_code<S: AuditSink + GrantStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    req: &AuthorizeRequest,
    session: &Session,
    mandate: Option<&Mandate>,
    meta: &RequestMeta,
) -> Result<String, OAuthError> {
    let now = p.now();
    let grant = Grant {
        id: random_token(16),
        tenant_id: t.id().to_string(),
        client_id: req.client_id.clone(),
        user_id: session.user_id.clone(),
        sid: Some(session.sid.clone()),
        created_at: now,
        revoked_at: None,
    };
    p.store.create_grant(&grant).await?;
    let code = random_token(32);
    let rec = AuthCode {
        digest: keyed_digest(&t.tenant.secret_key, &code),
        tenant_id: t.id().to_string(),
        grant_id: grant.id.clone(),
        client_id: req.client_id.clone(),
        user_id: session.user_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        code_challenge: req.code_challenge.clone(),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        sid: Some(session.sid.clone()),
        auth_time: session.auth_time,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        expires_at: now + p.settings.code_ttl,
        resources: req.resources.clone(),
        mandate_id: mandate.map(|m| m.id.clone()),
    };
    p.store.insert_code(&rec).await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::CodeIssued,
        Outcome::Success,
        Principal::User {
            id: session.user_id.clone(),
        },
        meta,
    )
    .subject(Principal::User {
        id: session.user_id.clone(),
    })
    .client(req.client_id.clone())
    .detail(json!({
        "scope": req.scope.to_string(),
        "grant_id": grant.id,
        "resources": req.resources,
        "mandate_id": mandate.map(|m| m.id.as_str()),
    }));
    p.store.record(&ev).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", &t.issuer));
    Ok(append_query(&req.redirect_uri, &params))
}

/// The redirect that reports an error to the client (with `state` and RFC 9207 `iss`).
pub fn error_redirect(
    t: &TenantCtx,
    redirect_uri: &str,
    state: Option<&str>,
    e: &OAuthError,
) -> String {
    let mut params = vec![("error", e.code.as_str())];
    if let Some(d) = &e.description {
        params.push(("error_description", d));
    }
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", &t.issuer));
    append_query(redirect_uri, &params)
}

fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_string();
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    out.push(if uri.contains('?') { '&' } else { '?' });
    out.push_str(&ser.finish());
    out
}

/// An authorization request in flight between pages, protected by a MAC so the login and
/// consent forms can carry it without server-side state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interaction {
    pub req: AuthorizeRequest,
    /// Expiry of this interaction.
    pub exp: i64,
    /// Set once the user authenticated within this interaction: the session it created.
    pub sid: Option<String>,
}

impl Interaction {
    pub fn new<S: ?Sized>(p: &Provider<S>, req: AuthorizeRequest) -> Self {
        Interaction {
            req,
            exp: p.now() + 1800,
            sid: None,
        }
    }

    /// Serialize and MAC under the tenant's key.
    pub fn seal(&self, t: &TenantCtx) -> String {
        let body = b64(&serde_json::to_vec(self).expect("serialize"));
        let mac = keyed_digest(&t.tenant.secret_key, &format!("interaction.{body}"));
        format!("{body}.{}", b64(&mac))
    }

    /// Check the MAC and expiry.
    pub fn open<S: ?Sized>(p: &Provider<S>, t: &TenantCtx, sealed: &str) -> Option<Interaction> {
        if sealed.len() > 64 * 1024 {
            return None;
        }
        let (body, mac) = sealed.split_once('.')?;
        let want = keyed_digest(&t.tenant.secret_key, &format!("interaction.{body}"));
        if !ct_eq(&b64_decode(mac)?, &want) {
            return None;
        }
        let i: Interaction = serde_json::from_slice(&b64_decode(body)?).ok()?;
        (i.exp > p.now()).then_some(i)
    }
}

/// Record consent (merged with what the user granted before) and audit it.
pub async fn give_consent<S: AuditSink + ConsentStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    req: &AuthorizeRequest,
    user_id: &str,
    meta: &RequestMeta,
) -> Result<(), OAuthError> {
    let previous = p.store.consent(t.id(), user_id, &req.client_id).await?;
    let mut scope: Vec<String> = req.scope.iter().map(str::to_string).collect();
    if let Some(prev) = previous {
        scope.extend(prev.scope.iter().map(str::to_string));
    }
    let consent = Consent {
        tenant_id: t.id().to_string(),
        user_id: user_id.to_string(),
        client_id: req.client_id.clone(),
        scope: Scope::from_iter(scope),
        granted_at: p.now(),
    };
    p.store.put_consent(&consent).await?;
    let ev = AuditEvent::new(
        t.id(),
        EventKind::ConsentGiven,
        Outcome::Success,
        Principal::User {
            id: user_id.to_string(),
        },
        meta,
    )
    .subject(Principal::User {
        id: user_id.to_string(),
    })
    .client(req.client_id.clone())
    .detail(json!({"scope": consent.scope.to_string()}));
    p.store.record(&ev).await?;
    Ok(())
}

/// How long a mandate given on the consent page runs (seconds).
pub const CONSENT_MANDATE_SECONDS: i64 = 3600;
/// The longest lifetime of one token under a mandate given on the consent page (seconds).
pub const CONSENT_MAX_TOKEN_LIFETIME: i64 = 300;
/// Scopes about the person's identity (OpenID Connect): granted to the agent's own sign-in,
/// never delegated through a mandate.
pub const OIDC_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// The registered agent behind a client, if the client is one. An agent that is suspended or
/// deleted may not ask anyone for anything: `unauthorized_client`.
pub async fn agent_client<S: AgentStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    client_id: &str,
) -> Result<Option<Agent>, OAuthError> {
    match p.store.agent(t.id(), client_id).await? {
        Some(a) if a.status != AgentStatus::Active => Err(OAuthError::unauthorized_client(
            format!("the agent is {}", a.status.as_str()),
        )),
        other => Ok(other),
    }
}

/// What approving an agent's request delegates: the requested scopes minus the OpenID Connect
/// ones, the resources and authorization details, for [`CONSENT_MANDATE_SECONDS`], tokens of at
/// most [`CONSENT_MAX_TOKEN_LIFETIME`], no sub-delegation. `None` when nothing is left to
/// delegate (the agent only asked who the person is).
pub fn consent_mandate_terms(req: &AuthorizeRequest, agent: &Agent) -> Option<MandateTerms> {
    let scopes: Vec<String> = req
        .scope
        .iter()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .map(str::to_string)
        .collect();
    if scopes.is_empty() && req.authorization_details.is_empty() {
        return None;
    }
    Some(MandateTerms {
        agent_id: agent.id.clone(),
        scopes,
        authorization_details: req.authorization_details.clone(),
        resources: req.resources.clone(),
        expires_in: CONSENT_MANDATE_SECONDS,
        max_token_lifetime: CONSENT_MAX_TOKEN_LIFETIME,
        max_delegation_depth: 0,
        approval_required: Vec::new(),
        allow_refresh: false,
    })
}

/// The person approved an agent's authorization request on the consent page: record the
/// mandate ([`consent_mandate_terms`], origin `consent`, actor the person; `mandate_created` is
/// audited). Nothing is remembered as consent: the next request asks again.
pub async fn approve_agent<S: AgentStore + AuditSink + MandateStore + UserStore + ?Sized>(
    p: &Provider<S>,
    t: &TenantCtx,
    req: &AuthorizeRequest,
    user_id: &str,
    meta: &RequestMeta,
) -> Result<Option<Mandate>, OAuthError> {
    let agent = agent_client(p, t, &req.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("the client is not an agent"))?;
    let Some(terms) = consent_mandate_terms(req, &agent) else {
        return Ok(None);
    };
    crate::agents::grant_mandate(
        p.store.as_ref(),
        t.id(),
        user_id,
        terms,
        MandateOrigin::Consent,
        Principal::User {
            id: user_id.to_string(),
        },
        meta,
    )
    .await
    .map(Some)
    .map_err(|e| match e {
        crate::error::AdminError::Invalid(why) => OAuthError::invalid_request(why),
        crate::error::AdminError::NotFound(what) => {
            OAuthError::invalid_request(format!("{what} not found"))
        }
        other => OAuthError::server_error(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::login::method::Factor;

    fn req(prompt: &[&str], max_age: Option<i64>) -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "c".into(),
            redirect_uri: "https://a/cb".into(),
            scope: Scope::parse("openid email").unwrap(),
            state: None,
            nonce: None,
            code_challenge: "x".into(),
            prompt: prompt.iter().map(|s| s.to_string()).collect(),
            max_age,
            login_hint: None,
            ui_locales: None,
            id_token_hint: None,
            acr_values: vec![],
            resources: vec![],
            authorization_details: vec![],
        }
    }

    /// A login method as the decision sees it.
    #[derive(Debug)]
    struct Method(&'static str, &'static str, Factor);

    impl LoginMethod for Method {
        fn id(&self) -> &'static str {
            self.0
        }
        fn amr(&self) -> &'static str {
            self.0
        }
        fn acr(&self) -> &'static str {
            self.1
        }
        fn factor(&self) -> Factor {
            self.2
        }
    }

    const PWD: Method = Method("pwd", crate::settings::ACR_PASSWORD, Factor::First);
    const OTP: Method = Method("otp", "urn:test:mfa", Factor::Second);
    const HWK: Method = Method("hwk", "urn:test:phr", Factor::Both);

    fn session(auth_time: i64) -> Session {
        Session {
            digest: vec![],
            tenant_id: "t".into(),
            sid: "s".into(),
            user_id: "u".into(),
            auth_time,
            amr: vec![],
            acr: String::new(),
            expires_at: i64::MAX,
            created_at: 0,
            user_agent: None,
            ip: None,
            risk_acr: None,
        }
    }

    #[test]
    fn prompt_and_max_age_rules() {
        let sess = session(100);
        let consent = Consent {
            tenant_id: "t".into(),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("openid email profile").unwrap(),
            granted_at: 0,
        };
        let base = Situation {
            session: Some(&sess),
            consent: Some(&consent),
            logged_in_now: false,
            hint_sub: None,
            agent: false,
            methods: &[&PWD],
            second_factor_required: false,
            enrol: &[],
            risk_fallback: &[],
            now: 110,
        };
        let login = Next::Login {
            methods: vec!["pwd"],
        };
        assert_eq!(next_step(&req(&[], None), &base), Next::Issue);
        assert_eq!(next_step(&req(&["login"], None), &base), login);
        assert_eq!(
            next_step(
                &req(&["login"], None),
                &Situation {
                    logged_in_now: true,
                    ..base.clone()
                }
            ),
            Next::Issue
        );
        assert_eq!(next_step(&req(&[], Some(5)), &base), login);
        assert_eq!(next_step(&req(&[], Some(50)), &base), Next::Issue);
        assert_eq!(next_step(&req(&["consent"], None), &base), Next::Consent);
        assert!(
            matches!(next_step(&req(&["none"], None), &Situation { session: None, ..base.clone() }), Next::Fail(e) if e.code == ErrorCode::LoginRequired)
        );
        assert!(
            matches!(next_step(&req(&["none"], None), &Situation { consent: None, ..base.clone() }), Next::Fail(e) if e.code == ErrorCode::ConsentRequired)
        );
        assert!(
            matches!(next_step(&req(&["none"], None), &Situation { hint_sub: Some("other"), ..base.clone() }), Next::Fail(e) if e.code == ErrorCode::LoginRequired)
        );
    }

    #[test]
    fn step_up_and_second_factor() {
        let mut sess = session(100);
        sess.acr = crate::settings::ACR_PASSWORD.into();
        sess.amr = vec!["pwd".into()];
        let consent = Consent {
            tenant_id: "t".into(),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("openid email profile").unwrap(),
            granted_at: 0,
        };
        let all: [&dyn LoginMethod; 3] = [&PWD, &OTP, &HWK];
        let base = Situation {
            session: Some(&sess),
            consent: Some(&consent),
            methods: &all,
            now: 110,
            ..Situation::default()
        };
        let asking = |acr: &[&str], prompt: &[&str]| {
            let mut r = req(prompt, None);
            r.acr_values = acr.iter().map(|a| a.to_string()).collect();
            r
        };
        // Signing in offers first factors only (a passkey is both).
        assert_eq!(
            next_step(
                &req(&[], None),
                &Situation {
                    session: None,
                    ..base.clone()
                }
            ),
            Next::Login {
                methods: vec!["pwd", "hwk"]
            }
        );
        // A requested acr the session lacks and a method reaches: step up to the first one.
        assert_eq!(
            next_step(&asking(&["urn:unknown", "urn:test:phr"], &[]), &base),
            Next::StepUp {
                acr: "urn:test:phr".into(),
                methods: vec!["hwk"],
            }
        );
        assert!(matches!(
            next_step(&asking(&["urn:test:phr"], &["none"]), &base),
            Next::Fail(e) if e.code == ErrorCode::LoginRequired
        ));
        // Already satisfied, or voluntary and out of reach: go on.
        assert_eq!(
            next_step(
                &asking(&[crate::settings::ACR_PASSWORD, "urn:test:phr"], &[]),
                &base
            ),
            Next::Issue
        );
        assert_eq!(
            next_step(&asking(&["urn:unknown"], &[]), &base),
            Next::Issue
        );
        // A required second factor: asked after a password, not after a passkey.
        let strict = Situation {
            second_factor_required: true,
            ..base.clone()
        };
        assert_eq!(
            next_step(&req(&[], None), &strict),
            Next::SecondFactor {
                methods: vec!["otp", "hwk"]
            }
        );
        let mut with_key = sess.clone();
        with_key.amr = vec!["hwk".into()];
        assert_eq!(
            next_step(
                &req(&[], None),
                &Situation {
                    session: Some(&with_key),
                    ..strict.clone()
                }
            ),
            Next::Issue
        );
        // None on offer: the requirement cannot be met.
        let only_pwd: [&dyn LoginMethod; 1] = [&PWD];
        assert!(matches!(
            next_step(&req(&[], None), &Situation { methods: &only_pwd, ..strict.clone() }),
            Next::Fail(e) if e.code == ErrorCode::UnmetAuthenticationRequirements
        ));
        // ... unless the person can enrol one right away; never without a page.
        let enrol: [&dyn LoginMethod; 1] = [&OTP];
        let enrolling = Situation {
            methods: &only_pwd,
            enrol: &enrol,
            ..strict.clone()
        };
        assert_eq!(
            next_step(&req(&[], None), &enrolling),
            Next::EnrolSecondFactor {
                methods: vec!["otp"]
            }
        );
        assert!(matches!(
            next_step(&req(&["none"], None), &enrolling),
            Next::Fail(e) if e.code == ErrorCode::InteractionRequired
        ));
        // Enrolled and used: it counts.
        let mut with_otp = sess.clone();
        with_otp.amr = vec!["pwd".into(), "otp".into()];
        assert_eq!(
            next_step(
                &req(&[], None),
                &Situation {
                    session: Some(&with_otp),
                    ..strict.clone()
                }
            ),
            Next::Issue
        );
    }

    #[test]
    fn risk_owes_a_stronger_sign_in() {
        use crate::settings::{ACR_MFA, ACR_PHR};
        const KEY: Method = Method("key", ACR_PHR, Factor::Both);
        const CODE: Method = Method("code", ACR_MFA, Factor::Second);
        const MAIL: Method = Method("mail", ACR_MFA, Factor::Second);
        let all: [&dyn LoginMethod; 3] = [&PWD, &CODE, &KEY];
        let pwd_code: [&dyn LoginMethod; 2] = [&PWD, &CODE];
        let only_pwd: [&dyn LoginMethod; 1] = [&PWD];
        let mail: [&dyn LoginMethod; 1] = [&MAIL];
        let totp: [&dyn LoginMethod; 1] = [&OTP];
        let consent = Consent {
            tenant_id: "t".into(),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("openid email profile").unwrap(),
            granted_at: 0,
        };
        let owing = |owed: Option<&str>, acr: &str, amr: &[&str]| {
            let mut s = session(100);
            s.acr = acr.into();
            s.amr = amr.iter().map(|a| a.to_string()).collect();
            s.risk_acr = owed.map(str::to_string);
            s
        };
        // The decision for a session, the person's methods, whether the tenant requires a
        // second factor (and so would let a person with none enrol one), the fallback.
        let decide = |sess: &Session,
                      prompt: &[&str],
                      methods: &[&dyn LoginMethod],
                      required: bool,
                      fallback: &[&dyn LoginMethod]| {
            next_step(
                &req(prompt, None),
                &Situation {
                    session: Some(sess),
                    consent: Some(&consent),
                    methods,
                    second_factor_required: required,
                    enrol: &totp,
                    risk_fallback: fallback,
                    now: 110,
                    ..Situation::default()
                },
            )
        };
        let step = |sess: &Session, prompt: &[&str], methods: &[&dyn LoginMethod]| {
            decide(sess, prompt, methods, false, &[])
        };
        let unmet = |n: &Next, why: &str| {
            matches!(n, Next::RiskRefused { error, reason }
                if error.code == ErrorCode::UnmetAuthenticationRequirements && *reason == why)
        };
        let pwd = crate::settings::ACR_PASSWORD;

        // The table: (owed, the person's methods, tenant requires, fallback) → next.
        // A passkey owed, and they have one: a step-up to phr, with the methods that reach it.
        let s = owing(Some(ACR_PHR), pwd, &["pwd"]);
        assert_eq!(
            step(&s, &[], &all),
            Next::StepUp {
                acr: ACR_PHR.into(),
                methods: vec!["key"]
            }
        );
        assert!(
            matches!(step(&s, &["none"], &all), Next::Fail(e) if e.code == ErrorCode::LoginRequired)
        );
        // No passkey: their own second factor instead, recorded as `no_passkey`.
        assert_eq!(
            step(&s, &[], &pwd_code),
            Next::RiskFallback {
                reason: "no_passkey",
                methods: vec!["code"]
            }
        );
        // No passkey and no second factor: the code by e-mail, never enrolment.
        assert_eq!(
            decide(&s, &[], &only_pwd, true, &mail),
            Next::RiskFallback {
                reason: "no_passkey",
                methods: vec!["mail"]
            }
        );
        // Nothing at all: refused, whatever the tenant would let them enrol.
        assert!(unmet(&step(&s, &[], &only_pwd), "no_passkey"));
        assert!(unmet(&decide(&s, &[], &only_pwd, true, &[]), "no_passkey"));
        assert!(unmet(&step(&s, &["none"], &only_pwd), "no_passkey"));
        // Met once the session reaches it.
        assert_eq!(
            step(&owing(Some(ACR_PHR), ACR_PHR, &["pwd", "hwk"]), &[], &all),
            Next::Issue
        );

        // A second factor owed: the second-factor step, whatever the tenant's policy.
        let s = owing(Some(ACR_MFA), pwd, &["pwd"]);
        assert_eq!(
            step(&s, &[], &all),
            Next::SecondFactor {
                methods: vec!["code", "key"]
            }
        );
        // Their own factors come first: the e-mail fallback is not offered beside them.
        assert_eq!(
            decide(&s, &[], &pwd_code, false, &mail),
            Next::SecondFactor {
                methods: vec!["code"]
            }
        );
        // None of their own: the code by e-mail, even where the tenant requires a second
        // factor and would let them enrol one (enrolling never meets a risk-owed step).
        for required in [false, true] {
            assert_eq!(
                decide(&s, &[], &only_pwd, required, &mail),
                Next::SecondFactor {
                    methods: vec!["mail"]
                }
            );
            assert!(unmet(
                &decide(&s, &[], &only_pwd, required, &[]),
                "no_second_factor"
            ));
        }
        assert!(
            matches!(decide(&s, &["none"], &only_pwd, false, &mail), Next::Fail(e) if e.code == ErrorCode::LoginRequired)
        );
        assert_eq!(
            step(&owing(Some(ACR_MFA), ACR_MFA, &["pwd", "code"]), &[], &all),
            Next::Issue
        );
        assert_eq!(
            step(&owing(Some(ACR_MFA), ACR_PHR, &["hwk"]), &[], &all),
            Next::Issue
        );
        // Met by the e-mailed code, the tenant's own requirement still applies after it (a
        // person with nothing of their own may enrol for that one).
        let met = owing(Some(ACR_MFA), ACR_MFA, &["pwd", "otp"]);
        assert_eq!(
            decide(&met, &[], &only_pwd, true, &mail),
            Next::EnrolSecondFactor {
                methods: vec!["otp"]
            }
        );
        assert_eq!(decide(&met, &[], &only_pwd, false, &mail), Next::Issue);
        // Nothing owed: on.
        assert_eq!(step(&owing(None, pwd, &["pwd"]), &[], &all), Next::Issue);
    }

    #[tokio::test]
    async fn refusals_and_denials_are_on_the_trail() {
        use crate::testing::{Fake, provider};
        let (p, t) = provider(Fake::default());
        let e = OAuthError::invalid_request("no");
        let long = "c".repeat(1_000);
        record_refusal(&p, &t, &RequestMeta::default(), Some(&long), &e)
            .await
            .unwrap();
        let r = req(&[], None);
        let denied = deny_consent(&p, &t, &r, &session(1), &RequestMeta::default())
            .await
            .unwrap();
        assert_eq!(denied.code, ErrorCode::AccessDenied);
        let trail = p.store.recorded(EventKind::AuthorizationFailed);
        assert_eq!(trail.len(), 2);
        assert_eq!(trail[0].client_id.as_ref().map(String::len), Some(256));
        assert_eq!(trail[0].reason.as_deref(), Some("invalid_request"));
        assert_eq!(trail[1].reason.as_deref(), Some("consent denied"));
        assert_eq!(trail[1].subject, Some(Principal::User { id: "u".into() }));
    }

    #[test]
    fn agents_are_asked_every_time() {
        let sess = session(100);
        let consent = Consent {
            tenant_id: "t".into(),
            user_id: "u".into(),
            client_id: "c".into(),
            scope: Scope::parse("openid email profile").unwrap(),
            granted_at: 0,
        };
        let s = Situation {
            session: Some(&sess),
            consent: Some(&consent),
            agent: true,
            now: 110,
            ..Situation::default()
        };
        assert_eq!(next_step(&req(&[], None), &s), Next::Consent);
        assert!(
            matches!(next_step(&req(&["none"], None), &s), Next::Fail(e) if e.code == ErrorCode::ConsentRequired)
        );
    }

    #[test]
    fn consent_mandates_drop_identity_scopes() {
        let agent = Agent {
            tenant_id: "t".into(),
            id: "a".into(),
            name: "A".into(),
            owner_user_id: None,
            provider: None,
            model: None,
            version: None,
            scope_ceiling: Scope::parse("calendar.read").unwrap(),
            require_dpop: false,
            status: AgentStatus::Active,
            status_reason: None,
            created_at: 0,
            updated_at: 0,
        };
        let mut r = req(&[], None);
        assert!(
            consent_mandate_terms(&r, &agent).is_none(),
            "openid email only"
        );
        r.scope = Scope::parse("openid calendar.read").unwrap();
        r.resources = vec!["https://cal.example".into()];
        let terms = consent_mandate_terms(&r, &agent).unwrap();
        assert_eq!(terms.scopes, vec!["calendar.read"]);
        assert_eq!(terms.resources, vec!["https://cal.example"]);
        assert_eq!(terms.expires_in, 3600);
        assert_eq!(terms.max_token_lifetime, 300);
        assert_eq!(terms.max_delegation_depth, 0);
    }

    proptest::proptest! {
        /// The interaction decision, whatever the request and situation: `prompt=none` never
        /// shows a page; no session (or a stale one when asked) means logging in; an agent's
        /// request never skips consent; a code is issued only with a fresh-enough session of the
        /// hinted person, remembered consent covering the scope, a requested `acr` reached when
        /// a method on offer reaches it, and a required second factor proven; pages name only
        /// methods on offer; enrolling a second factor is asked only of a person who must have
        /// one and has none.
        #[test]
        fn the_interaction_decision(
            prompt in proptest::collection::vec(
                proptest::sample::select(vec!["none", "login", "consent", "select_account"]), 0..3),
            max_age in proptest::option::of(0i64..1_000),
            auth_age in 0i64..2_000,
            has_session in proptest::bool::ANY,
            logged_in_now in proptest::bool::ANY,
            consent_mask in proptest::option::of(0u8..8),
            asked_mask in 0u8..8,
            hint in proptest::option::of(proptest::sample::select(vec!["u", "u2", ""])),
            agent in proptest::bool::ANY,
            offered_mask in 0u8..8,
            session_amr in 0u8..8,
            acr_mask in 0u8..8,
            second_factor_required in proptest::bool::ANY,
            enrol_mask in 0u8..8,
            risk_owed in proptest::option::of(proptest::sample::select(
                vec![crate::settings::ACR_MFA, "urn:test:phr"])),
            mail_fallback in proptest::bool::ANY,
        ) {
            const MAIL: Method = Method("mail", crate::settings::ACR_MFA, Factor::Second);
            let fallback: Vec<&dyn LoginMethod> = if mail_fallback { vec![&MAIL] } else { vec![] };
            let catalogue: [&dyn LoginMethod; 3] = [&PWD, &OTP, &HWK];
            let offered: Vec<&dyn LoginMethod> = catalogue.iter().enumerate()
                .filter(|(i, _)| offered_mask & (1 << i) != 0).map(|(_, m)| *m).collect();
            let enrol: Vec<&dyn LoginMethod> = catalogue.iter().enumerate()
                .filter(|(i, _)| enrol_mask & (1 << i) != 0).map(|(_, m)| *m).collect();
            let chosen = |mask: u8| catalogue.iter().enumerate()
                .filter(move |(i, _)| mask & (1 << i) != 0).map(|(_, m)| *m);
            let pick = |m: u8| -> Scope {
                ["openid", "email", "read"].iter().enumerate()
                    .filter(|(i, _)| m & (1 << i) != 0).map(|(_, s)| *s).collect()
            };
            let now = 10_000;
            let mut req = req(&prompt, max_age);
            req.scope = pick(asked_mask);
            let mut session = session(now - auth_age);
            session.amr = chosen(session_amr).map(|m| m.amr().to_string()).collect();
            session.acr = chosen(session_amr).next_back().map(|m| m.acr().to_string()).unwrap_or_default();
            req.acr_values = chosen(acr_mask).map(|m| m.acr().to_string()).collect();
            session.risk_acr = risk_owed.map(str::to_string);
            let owes = risk_owed.is_some_and(|o| !acr_satisfies(&session.acr, o));
            let consent = consent_mask.map(|m| Consent {
                tenant_id: "t".into(),
                user_id: "u".into(),
                client_id: "c".into(),
                scope: pick(m),
                granted_at: 0,
            });
            let situation = Situation {
                session: has_session.then_some(&session),
                consent: consent.as_ref(),
                logged_in_now: has_session && logged_in_now,
                hint_sub: hint,
                agent,
                methods: &offered,
                second_factor_required,
                enrol: &enrol,
                risk_fallback: &fallback,
                now,
            };
            let next = next_step(&req, &situation);
            let none = prompt.contains(&"none");
            if none {
                let no_page = matches!(next, Next::Issue | Next::Fail(_) | Next::RiskRefused { .. });
                proptest::prop_assert!(no_page);
            }
            // A step the risk decision owes is never met by enrolling, and holds up the code.
            if has_session && owes {
                let held = !matches!(next, Next::EnrolSecondFactor { .. } | Next::Issue | Next::Consent);
                proptest::prop_assert!(held);
            }
            if !has_session {
                let logs_in = matches!(next, Next::Login { .. } | Next::Fail(_));
                proptest::prop_assert!(logs_in);
            }
            if agent {
                proptest::prop_assert!(!matches!(next, Next::Issue));
            }
            if let Next::Issue = next {
                let fresh = situation.logged_in_now
                    || (!prompt.contains(&"login")
                        && max_age.is_none_or(|m| auth_age <= m)
                        && hint.is_none_or(|h| h == "u"));
                proptest::prop_assert!(has_session && fresh);
                proptest::prop_assert!(!prompt.contains(&"consent"));
                proptest::prop_assert!(consent.as_ref().is_some_and(|c| req.scope.is_subset(&c.scope)));
                // A requested acr that a method on offer reaches is reached, and a required
                // second factor was proven by a method on offer.
                let reachable = req.acr_values.iter().any(|w| offered.iter().any(|m| acr_satisfies(m.acr(), w)));
                proptest::prop_assert!(!reachable || req.acr_values.iter().any(|w| acr_satisfies(&session.acr, w)));
                proptest::prop_assert!(!second_factor_required || offered.iter().any(|m| m.factor() != Factor::First && session.amr.iter().any(|a| a == m.amr())));
            }
            // Whatever is asked, only methods on offer and of the right factor are named.
            match &next {
                Next::Login { methods } => proptest::prop_assert!(methods.iter().all(|id|
                    offered.iter().any(|m| m.id() == *id && m.factor() != Factor::Second))),
                Next::SecondFactor { methods } | Next::RiskFallback { methods, .. } => {
                    proptest::prop_assert!((second_factor_required || owes) && !methods.is_empty());
                    proptest::prop_assert!(methods.iter().all(|id|
                        offered.iter().chain(fallback.iter()).any(|m| m.id() == *id && m.factor() != Factor::First)));
                    // The fallback only for a risk-owed step, and only when they have none.
                    if methods.contains(&"mail") {
                        proptest::prop_assert!(owes && offered.iter().all(|m| m.factor() == Factor::First));
                    }
                }
                // Refused only when nothing of theirs nor the fallback could meet it.
                Next::RiskRefused { .. } => {
                    let nothing = owes
                        && offered.iter().all(|m| m.factor() == Factor::First)
                        && fallback.is_empty();
                    proptest::prop_assert!(nothing);
                }
                // Enrolling only when a second factor is required and the person has none.
                Next::EnrolSecondFactor { methods } => {
                    proptest::prop_assert!(second_factor_required && !methods.is_empty());
                    proptest::prop_assert!(offered.iter().all(|m| m.factor() == Factor::First));
                    proptest::prop_assert!(methods.iter().all(|id|
                        enrol.iter().any(|m| m.id() == *id && m.factor() != Factor::First)));
                }
                Next::StepUp { acr, methods } => proptest::prop_assert!((req.acr_values.contains(acr) || risk_owed == Some(acr.as_str()))
                    && offered.iter().any(|m| acr_satisfies(m.acr(), acr))
                    && !acr_satisfies(&session.acr, acr)
                    && !methods.is_empty()
                    && methods.iter().all(|id| offered.iter().any(|m| m.id() == *id && acr_satisfies(m.acr(), acr)))),
                _ => {}
            }
            if let Next::Fail(e) = &next {
                proptest::prop_assert!(none || e.code == ErrorCode::UnmetAuthenticationRequirements);
                proptest::prop_assert!(matches!(e.code, ErrorCode::LoginRequired | ErrorCode::ConsentRequired | ErrorCode::InteractionRequired | ErrorCode::UnmetAuthenticationRequirements));
                // Unmet only when nothing could be proven or enrolled.
                if e.code == ErrorCode::UnmetAuthenticationRequirements {
                    proptest::prop_assert!(second_factor_required
                        && offered.iter().all(|m| m.factor() == Factor::First)
                        && enrol.iter().all(|m| m.factor() == Factor::First));
                }
            }
        }
    }
}
