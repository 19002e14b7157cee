//! The signed-in person's "agents acting for you" page and self-service API. Rules (ownership,
//! who may call, what a mandate may hold) are in `mandate_core::self_service`.
//!
//! - `GET {issuer}/account/agents`: the page (session cookie), with the CIBA requests waiting
//!   for the person (decided on `ui::ciba`'s page); `POST …/agents/revoke`
//!   (`mandate_id`) and `POST …/agents/revoke-all` (CSRF-checked forms).
//! - `GET|POST {issuer}/account/v1/mandates`, `DELETE {issuer}/account/v1/mandates/{id}`: JSON,
//!   with the person's own access token (Bearer or DPoP).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, OriginalUri, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mandate_core::agents::Agent;
use mandate_core::self_service::{self, AgentMandate, Caller, MandateRequest};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;
use serde_json::{Value, json};

use super::pages;
use crate::bearer::{PresentedToken, public_uri};
use crate::client_ip::Meta;
use crate::error::{ApiError, resource_error};
use crate::oauth::authorize::current_session;
use crate::state::AppState;
use crate::tenant::Tenant;

/// Routes under `{issuer}`; merged into the tenant router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/agents", get(page))
        .route("/account/agents/revoke", post(revoke))
        .route("/account/agents/revoke-all", post(revoke_all))
        .route("/account/v1/mandates", get(api_list).post(api_create))
        .route(
            "/account/v1/mandates/{id}",
            axum::routing::delete(api_revoke),
        )
}

/// A scope in plain words (`scope_{name}` in the catalogue, else `scope_other`).
pub(crate) fn scope_words(s: &AppState, lang: &str, scope: &str) -> String {
    let key = format!("scope_{scope}");
    let m = s.templates.message(lang, &key);
    if m == key {
        s.templates
            .message(lang, "scope_other")
            .replace("{scope}", scope)
    } else {
        m
    }
}

fn string_list(v: Option<&Value>) -> Option<String> {
    let items: Vec<String> = match v? {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    (!items.is_empty()).then(|| items.join(", "))
}

/// An RFC 9396 authorization detail in plain words: its type, actions and locations.
pub(crate) fn detail_words(s: &AppState, lang: &str, d: &Value) -> String {
    let kind = d.get("type").and_then(Value::as_str).unwrap_or_default();
    let mut out = match string_list(d.get("actions")) {
        Some(actions) => s
            .templates
            .message(lang, "detail_actions")
            .replace("{type}", kind)
            .replace("{actions}", &actions),
        None => s
            .templates
            .message(lang, "detail_type")
            .replace("{type}", kind),
    };
    if let Some(locations) = string_list(d.get("locations")) {
        out.push(' ');
        out.push_str(
            &s.templates
                .message(lang, "detail_locations")
                .replace("{locations}", &locations),
        );
    }
    out
}

/// The agent as people see it: name, provider, model, version and owner.
pub(crate) async fn agent_view(
    s: &AppState,
    t: &TenantCtx,
    lang: &str,
    a: &Agent,
) -> Result<minijinja::Value, OAuthError> {
    let owner = match &a.owner_user_id {
        Some(id) => s
            .provider
            .store
            .user(t.id(), id)
            .await?
            .map(|u| u.username)
            .unwrap_or_else(|| id.clone()),
        None => s.templates.message(lang, "agent_owner_tenant"),
    };
    Ok(agent_context(a, owner))
}

fn agent_context(a: &Agent, owner: String) -> minijinja::Value {
    context! {
        id => a.id,
        name => a.name,
        provider => a.provider,
        model => a.model,
        version => a.version,
        owner,
        status => a.status.as_str(),
    }
}

/// A point in time for people (UTC).
pub(crate) fn when(secs: i64) -> String {
    mandate_core::time::format_instant(secs)
        .replacen('T', " ", 1)
        .replace('Z', " UTC")
}

fn row(s: &AppState, lang: &str, am: &AgentMandate) -> minijinja::Value {
    let m = &am.mandate;
    let agent = am.agent.as_ref().map(|a| {
        let owner = match &a.owner_user_id {
            Some(id) => am.owner_username.clone().unwrap_or_else(|| id.clone()),
            None => s.templates.message(lang, "agent_owner_tenant"),
        };
        agent_context(a, owner)
    });
    let scopes: Vec<String> = m.scope.iter().map(|sc| scope_words(s, lang, sc)).collect();
    let details: Vec<String> = m
        .authorization_details
        .iter()
        .map(|d| detail_words(s, lang, d))
        .collect();
    context! {
        id => m.id,
        agent_id => m.agent_id,
        agent,
        scopes,
        details,
        resources => m.resources,
        until => when(m.expires_at),
        last_acted => am.last_acted.map(when),
        sub_delegation => m.max_delegation_depth > 0,
        origin => m.origin.as_str(),
    }
}

/// `GET {issuer}/account/agents`: every mandate in force the signed-in person gave.
pub async fn page(State(s): State<AppState>, Tenant(t): Tenant, headers: HeaderMap) -> Response {
    let Ok(Some(session)) = current_session(&s, &t, &headers).await else {
        return pages::message_page(
            &s,
            &headers,
            StatusCode::UNAUTHORIZED,
            "agents_title",
            "not_signed_in",
        );
    };
    let mandates = match self_service::mandates(&s.provider, &t, &session.user_id).await {
        Ok(m) => m,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let waiting = match mandate_core::ciba::pending(&s.provider, &t, &session.user_id).await {
        Ok(w) => w,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let lang = pages::locale(&s, &headers, None);
    let rows: Vec<minijinja::Value> = mandates.iter().map(|m| row(&s, &lang, m)).collect();
    let pending: Vec<minijinja::Value> = waiting
        .iter()
        .map(|pr| {
            context! {
                agent => pr.agent.as_ref().map_or(pr.request.client_id.as_str(), |a| a.name.as_str()),
                binding_message => pr.request.binding_message,
                asks => super::ciba::asks(&s, &lang, pr),
                url => mandate_core::ciba::approval_url(&t, &pr.request.id),
            }
        })
        .collect();
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let page = pages::render(
        &s,
        StatusCode::OK,
        "agents.html",
        &lang,
        context! {
            mandates => rows,
            pending,
            csrf,
            revoke_action => t.url("/account/agents/revoke"),
            revoke_all_action => t.url("/account/agents/revoke-all"),
            consents_url => t.url("/account/consents"),
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/account/agents/revoke` (`mandate_id`): revoke one of the person's mandates.
pub async fn revoke(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let Some(session) = current_session(&s, &t, &headers).await.ok().flatten() else {
        return pages::form_expired(&s, &headers);
    };
    let id = form.get("mandate_id").unwrap_or_default();
    match self_service::revoke(&s.provider, &t, &session.user_id, id, &meta).await {
        Ok(_) => pages::see_other(&t.url("/account/agents")),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

/// `POST {issuer}/account/agents/revoke-all`: revoke every mandate the person gave.
pub async fn revoke_all(
    State(s): State<AppState>,
    Tenant(t): Tenant,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if pages::checked_form(&s, &headers, &body).is_none() {
        return pages::form_expired(&s, &headers);
    }
    let Some(session) = current_session(&s, &t, &headers).await.ok().flatten() else {
        return pages::form_expired(&s, &headers);
    };
    match self_service::revoke_all(&s.provider, &t, &session.user_id, &meta).await {
        Ok(_) => pages::see_other(&t.url("/account/agents")),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

/// A self-service API caller: the person behind a valid, non-delegated access token of the
/// tenant named in the path.
pub struct Person {
    pub(crate) tenant: std::sync::Arc<TenantCtx>,
    pub(crate) caller: Caller,
    pub(crate) meta: Meta,
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Path(path): Path<HashMap<String, String>> = Path::from_request_parts(parts, s)
            .await
            .map_err(IntoResponse::into_response)?;
        let name = path.get("tenant").map(String::as_str).unwrap_or_default();
        let tenant = match s.provider.tenant(name).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(crate::error::not_found().await),
            Err(e) => return Err(ApiError::from(OAuthError::from(e)).into_response()),
        };
        let Ok(meta) = Meta::from_request_parts(parts, s).await;
        let token =
            PresentedToken::from_headers(&parts.headers).map_err(IntoResponse::into_response)?;
        let Ok(OriginalUri(original)) = OriginalUri::from_request_parts(parts, s).await;
        let uri = public_uri(&s.config.public_url, &original);
        let method = parts.method.as_str().to_string();
        let presented = token.as_ref().map(|t| t.presented(&method, &uri));
        let caller = self_service::authenticate(&s.provider, &tenant, presented.as_ref(), &meta.0)
            .await
            .map_err(|e| {
                let mut err = resource_error(e, token.as_ref().map(|t| t.scheme));
                if token.is_none() {
                    // RFC 6750 §3.1: no error code when no credentials were sent.
                    err.challenge = Some("Bearer".into());
                }
                err.into_response()
            })?;
        Ok(Person {
            tenant,
            caller,
            meta,
        })
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET {issuer}/account/v1/mandates`: the caller's mandates in force.
pub async fn api_list(State(s): State<AppState>, person: Person) -> Result<Response, ApiError> {
    let all = self_service::mandates(&s.provider, &person.tenant, &person.caller.user_id).await?;
    let list: Vec<Value> = all.iter().map(AgentMandate::to_json).collect();
    Ok(no_store(
        axum::Json(json!({ "mandates": list })).into_response(),
    ))
}

/// `POST {issuer}/account/v1/mandates` (JSON): grant a mandate to an agent.
pub async fn api_create(
    State(s): State<AppState>,
    person: Person,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_body {
        return Err(ApiError {
            error: OAuthError::invalid_request("Content-Type must be application/json"),
            challenge: None,
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        });
    }
    let req: MandateRequest = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::invalid_request(format!("invalid request body: {e}")))?;
    let t = &person.tenant;
    let m =
        self_service::create(&s.provider, t, &person.caller.user_id, req, &person.meta.0).await?;
    let agent = s.provider.store.agent(t.id(), &m.agent_id).await?;
    let location = t.url(&format!("/account/v1/mandates/{}", m.id));
    let view = AgentMandate {
        mandate: m,
        agent,
        owner_username: None,
        last_acted: None,
    };
    let mut r = (StatusCode::CREATED, axum::Json(view.to_json())).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(no_store(r))
}

/// `DELETE {issuer}/account/v1/mandates/{id}`: revoke one of the caller's mandates (204);
/// anything else, including someone else's mandate, is 404.
pub async fn api_revoke(
    State(s): State<AppState>,
    person: Person,
    Path(path): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id = path.get("id").map(String::as_str).unwrap_or_default();
    let t = &person.tenant;
    if self_service::revoke(&s.provider, t, &person.caller.user_id, id, &person.meta.0).await? {
        Ok(no_store(StatusCode::NO_CONTENT.into_response()))
    } else {
        Ok(no_store(
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({
                    "error": "not_found",
                    "error_description": "no mandate of yours in force with this id",
                })),
            )
                .into_response(),
        ))
    }
}
