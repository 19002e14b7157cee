//! The page where a signed-in person approves or denies an agent's CIBA request:
//! `GET {issuer}/account/ciba/{id}` shows the agent, its binding message and what it asks for in
//! plain words; `POST` the same URL (CSRF-checked, `decision=approve|deny`) decides. Only the
//! person the request names sees it; anyone else gets the same "not found" page. Rules are in
//! `mandate_core::ciba`.
//!
//! The same through the self-service API (the person's own `mandate:self` token, as for
//! `/account/v1/mandates`): `GET {issuer}/account/v1/ciba-requests` lists the pending requests,
//! `POST {issuer}/account/v1/ciba-requests/{id}` with `{"decision": "approve"|"deny"}` decides.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mandate_core::ciba::{self, CIBA_MANDATE_SECONDS};
use mandate_core::{OAuthError, TenantCtx};
use minijinja::context;

use super::pages;
use super::person::Person;
use super::signin::sign_in_first;
use super::words::{agent_view, asks};
use crate::client_ip::Meta;
use crate::error::ApiError;
use crate::notify;
use crate::session::account_session;
use crate::state::AppState;

/// Routes under `{issuer}`; merged into the tenant router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account/ciba/{id}", get(page).post(decide))
        .route("/account/v1/ciba-requests", get(api_list))
        .route(
            "/account/v1/ciba-requests/{id}",
            axum::routing::post(api_decide),
        )
}

/// The tenant and request id of `/t/{tenant}/account/ciba/{id}`.
async fn target(
    s: &AppState,
    path: &HashMap<String, String>,
) -> Result<(Arc<TenantCtx>, String), Response> {
    let name = path.get("tenant").map(String::as_str).unwrap_or_default();
    let t = match s.provider.tenant(name).await {
        Ok(Some(t)) => t,
        Ok(None) => return Err(crate::error::not_found().await),
        Err(e) => return Err(ApiError::from(OAuthError::from(e)).into_response()),
    };
    Ok((t, path.get("id").cloned().unwrap_or_default()))
}

fn not_found(s: &AppState, headers: &HeaderMap) -> Response {
    pages::message_page(
        s,
        headers,
        StatusCode::NOT_FOUND,
        "ciba_title",
        "ciba_not_found",
    )
}

/// `GET {issuer}/account/ciba/{id}`.
pub async fn page(
    State(s): State<AppState>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (t, id) = match target(&s, &path).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let session = match account_session(&s, &t, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return sign_in_first(&t, &format!("/account/ciba/{id}")),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let pr = match ciba::pending_one(&s.provider, &t, &session.user_id, &id).await {
        Ok(Some(pr)) => pr,
        Ok(None) => return not_found(&s, &headers),
        Err(e) => return pages::error_page(&s, &headers, &e),
    };
    let lang = pages::locale(&s, &headers, None);
    let agent = match &pr.agent {
        Some(a) => match agent_view(&s, &t, &lang, a).await {
            Ok(v) => Some(v),
            Err(e) => return pages::error_page(&s, &headers, &e),
        },
        None => None,
    };
    let username = match s.provider.store.user(t.id(), &session.user_id).await {
        Ok(u) => u.map(|u| u.username).unwrap_or_default(),
        Err(e) => return pages::error_page(&s, &headers, &e.into()),
    };
    let (csrf, set) = pages::csrf_token(&s, &headers);
    let r = &pr.request;
    let page = pages::render(
        &s,
        StatusCode::OK,
        "ciba.html",
        &lang,
        context! {
            agent,
            agent_id => r.client_id,
            binding_message => r.binding_message,
            asks => asks(&s, &t, &lang, &pr),
            resources => r.resources,
            minutes => CIBA_MANDATE_SECONDS / 60,
            expires => super::words::when(r.expires_at),
            username,
            csrf,
            action => ciba::approval_url(&t, &r.id),
        },
    );
    pages::with_cookies(page, set)
}

/// `POST {issuer}/account/ciba/{id}` (`csrf`, `decision`): approve or deny, then back to the
/// agents page.
pub async fn decide(
    State(s): State<AppState>,
    Path(path): Path<HashMap<String, String>>,
    Meta(meta): Meta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (t, id) = match target(&s, &path).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(form) = pages::checked_form(&s, &headers, &body) else {
        return pages::form_expired(&s, &headers);
    };
    let Some(session) = account_session(&s, &t, &headers).await.ok().flatten() else {
        return sign_in_first(&t, &format!("/account/ciba/{id}"));
    };
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return pages::error_page(
                &s,
                &headers,
                &OAuthError::invalid_request("decision must be approve or deny"),
            );
        }
    };
    let who = ciba::Approver::from(&session);
    match ciba::decide(&s.provider, &t, &who, &id, approve, &meta).await {
        Ok(Some(decided)) => {
            if let Some(ping) = decided.ping {
                notify::ciba_ping(s.provider.clone(), t.clone(), ping);
            }
            pages::see_other(&t.url("/account/agents"))
        }
        Ok(None) => not_found(&s, &headers),
        Err(e) => pages::error_page(&s, &headers, &e),
    }
}

fn json_no_store(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `GET {issuer}/account/v1/ciba-requests`: the caller's pending requests, newest first.
pub async fn api_list(State(s): State<AppState>, person: Person) -> Result<Response, ApiError> {
    let t = &person.tenant;
    let list: Vec<serde_json::Value> = ciba::pending(&s.provider, t, &person.caller.user_id)
        .await?
        .iter()
        .map(|pr| pr.to_json(t))
        .collect();
    Ok(json_no_store(
        StatusCode::OK,
        serde_json::json!({ "ciba_requests": list }),
    ))
}

/// `POST {issuer}/account/v1/ciba-requests/{id}` (`{"decision": "approve"|"deny"}`): decide one
/// of the caller's pending requests; anything else, someone else's included, is 404.
pub async fn api_decide(
    State(s): State<AppState>,
    person: Person,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let json_body = headers
        .get(axum::http::header::CONTENT_TYPE)
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
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| OAuthError::invalid_request(format!("invalid request body: {e}")))?;
    let approve = match v.get("decision").and_then(serde_json::Value::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(OAuthError::invalid_request("decision must be approve or deny").into());
        }
    };
    let t = &person.tenant;
    let id = path.get("id").map(String::as_str).unwrap_or_default();
    let who = ciba::Approver::from(&person.caller);
    match ciba::decide(&s.provider, t, &who, id, approve, &person.meta.0).await? {
        Some(decided) => {
            if let Some(ping) = decided.ping {
                notify::ciba_ping(s.provider.clone(), t.clone(), ping);
            }
            Ok(json_no_store(
                StatusCode::OK,
                serde_json::json!({
                    "id": id,
                    "decision": if decided.approved { "approved" } else { "denied" },
                    "mandate_id": decided.mandate_id,
                }),
            ))
        }
        None => Ok(json_no_store(
            StatusCode::NOT_FOUND,
            serde_json::json!({
                "error": "not_found",
                "error_description": "no request of yours is pending with this id",
            }),
        )),
    }
}
