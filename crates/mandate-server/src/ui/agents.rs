//! The signed-in person's "agents acting for you" page and self-service API. Rules (ownership,
//! who may call, what a mandate may hold) are in `mandate_core::account`.
//!
//! - `GET {issuer}/account/agents`: the page (session cookie), with the CIBA requests waiting
//!   for the person (decided on `ui::ciba`'s page); `POST …/agents/revoke`
//!   (`mandate_id`) and `POST …/agents/revoke-all` (CSRF-checked forms).
//! - `GET|POST {issuer}/account/v1/mandates`, `DELETE {issuer}/account/v1/mandates/{id}`: JSON,
//!   with the person's own access token (Bearer or DPoP).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mandate_core::account::{self, AgentMandate, MandateRequest};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;
use serde_json::{Value, json};

use super::pages;
use super::person::Person;
use super::signin::sign_in_first;
use super::words::{agent_context, detail_words, scope_words, tenant_words, when};
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::session::account_session;
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

fn row(s: &AppState, t: &TenantCtx, lang: &str, am: &AgentMandate) -> minijinja::Value {
    let m = &am.mandate;
    let agent = am.agent.as_ref().map(|a| {
        let owner = match &a.owner_user_id {
            Some(id) => am.owner_username.clone().unwrap_or_else(|| id.clone()),
            None => tenant_words(s, t, lang),
        };
        agent_context(a, owner)
    });
    let scopes: Vec<String> = m
        .scope
        .iter()
        .map(|sc| scope_words(s, t, lang, sc))
        .collect();
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
    let session = match account_session(&s, &t, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return sign_in_first(&t, "/account/agents"),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let mandates = match account::mandates(&s.provider, &t, &session.user_id).await {
        Ok(m) => m,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let waiting = match mandate_core::ciba::pending(&s.provider, &t, &session.user_id).await {
        Ok(w) => w,
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let lang = pages::locale(&s, &headers, None);
    let rows: Vec<minijinja::Value> = mandates.iter().map(|m| row(&s, &t, &lang, m)).collect();
    let pending: Vec<minijinja::Value> = waiting
        .iter()
        .map(|pr| {
            context! {
                agent => pr.agent.as_ref().map_or(pr.request.client_id.as_str(), |a| a.name.as_str()),
                binding_message => pr.request.binding_message,
                asks => super::words::asks(&s, &t, &lang, pr),
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
    let Some(session) = account_session(&s, &t, &headers).await.ok().flatten() else {
        return sign_in_first(&t, "/account/agents");
    };
    let id = form.get("mandate_id").unwrap_or_default();
    match account::revoke(&s.provider, &t, &session.user_id, id, &meta).await {
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
    let Some(session) = account_session(&s, &t, &headers).await.ok().flatten() else {
        return sign_in_first(&t, "/account/agents");
    };
    match account::revoke_all(&s.provider, &t, &session.user_id, &meta).await {
        Ok(_) => pages::see_other(&t.url("/account/agents")),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET {issuer}/account/v1/mandates`: the caller's mandates in force.
pub async fn api_list(State(s): State<AppState>, person: Person) -> Result<Response, ApiError> {
    let all = account::mandates(&s.provider, &person.tenant, &person.caller.user_id).await?;
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
    let m = account::create(&s.provider, t, &person.caller.user_id, req, &person.meta.0).await?;
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
    if account::revoke(&s.provider, t, &person.caller.user_id, id, &person.meta.0).await? {
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
