//! The Shared Signals Framework 1.0 transmitter's HTTP surface: transmitter metadata at
//! `/.well-known/ssf-configuration/t/{tenant}` (SSF §7.1, path-inserted as in RFC 8414), stream
//! management, status and verification (SSF §8), and RFC 8936 polling. Receivers authenticate
//! with an access token of the tenant carrying `mandate:ssf`. The rules are in
//! `mandate_core::ssf`; [`push`] delivers queued SETs.

pub mod push;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mandate_core::OAuthError;
use mandate_core::ssf::poll::{self, PollRequest};
use mandate_core::ssf::transmitter::{self as tx, SsfError};
use mandate_core::ssf::{POLL_METHOD, PUSH_METHOD, SSF_SCOPE};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::admin::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

/// How long a poll without `returnImmediately` waits for a first SET.
const LONG_POLL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Routes under `{issuer}`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/ssf/streams",
            post(create)
                .get(read)
                .patch(update)
                .put(replace)
                .delete(delete),
        )
        .route("/ssf/status", get(status).post(set_status))
        .route("/ssf/verify", post(verify))
        .route("/ssf/subjects:add", post(add_subject))
        .route("/ssf/subjects:remove", post(remove_subject))
        .route("/ssf/poll/{stream_id}", post(poll_stream))
}

/// SSF transmitter configuration metadata (SSF §7.1).
pub async fn configuration(Tenant(t): Tenant) -> Response {
    let mut resp = Json(json!({
        "spec_version": "1_0",
        "issuer": t.issuer,
        "jwks_uri": t.url("/jwks.json"),
        "delivery_methods_supported": [PUSH_METHOD, POLL_METHOD],
        "configuration_endpoint": t.url("/ssf/streams"),
        "status_endpoint": t.url("/ssf/status"),
        "verification_endpoint": t.url("/ssf/verify"),
        "add_subject_endpoint": t.url("/ssf/subjects:add"),
        "remove_subject_endpoint": t.url("/ssf/subjects:remove"),
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
    }))
    .into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// An authenticated receiver: a token of the tenant with `mandate:ssf`.
pub struct Receiver(Admin);

impl FromRequestParts<AppState> for Receiver {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Admin::for_scope(parts, s, SSF_SCOPE).await.map(Receiver)
    }
}

/// An [`SsfError`] as a response: 400 with RFC 6749-style JSON, 404 for an unknown stream,
/// 409 when the receiver has too many.
fn failure(e: SsfError) -> Response {
    match e {
        SsfError::NotFound => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "not_found", "error_description": "no such stream"})),
        )
            .into_response(),
        SsfError::TooMany => ApiError {
            error: OAuthError::invalid_request(format!(
                "a receiver may hold at most {} streams",
                tx::MAX_STREAMS_PER_RECEIVER
            )),
            challenge: None,
            status: Some(StatusCode::CONFLICT),
        }
        .into_response(),
        other => ApiError::from(OAuthError::from(other)).into_response(),
    }
}

fn invalid(m: &str) -> Response {
    ApiError::from(OAuthError::invalid_request(m)).into_response()
}

/// A JSON object body; 415 for another content type, 400 for anything but an object.
fn body_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !json_type {
        return Err(ApiError {
            error: OAuthError::invalid_request("Content-Type must be application/json"),
            challenge: None,
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(OAuthError::invalid_request("the body must be a JSON object").into()),
    }
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

#[derive(Deserialize)]
struct StreamIdQuery {
    stream_id: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match body_object(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let t = &r.tenant.0;
    match tx::create(&s.provider, t, &r.caller, &r.meta.0, &body).await {
        Ok(stream) => {
            no_store((StatusCode::CREATED, Json(tx::stream_json(t, &stream))).into_response())
        }
        Err(e) => failure(e),
    }
}

async fn read(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    query: Result<Query<StreamIdQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return invalid("invalid query parameters");
    };
    let t = &r.tenant.0;
    let result = match q.stream_id {
        Some(id) => tx::get(&s.provider, t, &r.caller, &id)
            .await
            .map(|st| tx::stream_json(t, &st)),
        None => tx::list(&s.provider, t, &r.caller)
            .await
            .map(|all| Value::Array(all.iter().map(|st| tx::stream_json(t, st)).collect())),
    };
    match result {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => failure(e),
    }
}

async fn change(
    s: &AppState,
    r: &Admin,
    headers: &HeaderMap,
    body: &Bytes,
    replace: bool,
) -> Response {
    let body = match body_object(headers, body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let t = &r.tenant.0;
    match tx::update(&s.provider, t, &r.caller, &r.meta.0, &body, replace).await {
        Ok(stream) => no_store(Json(tx::stream_json(t, &stream)).into_response()),
        Err(e) => failure(e),
    }
}

async fn update(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&s, &r, &headers, &body, false).await
}

async fn replace(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&s, &r, &headers, &body, true).await
}

async fn delete(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    query: Result<Query<StreamIdQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(StreamIdQuery {
        stream_id: Some(id),
    })) = query
    else {
        return invalid("stream_id is required");
    };
    match tx::delete(&s.provider, &r.tenant.0, &r.caller, &r.meta.0, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

async fn status(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    query: Result<Query<StreamIdQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(StreamIdQuery {
        stream_id: Some(id),
    })) = query
    else {
        return invalid("stream_id is required");
    };
    match tx::get(&s.provider, &r.tenant.0, &r.caller, &id).await {
        Ok(st) => no_store(Json(tx::status_json(&st)).into_response()),
        Err(e) => failure(e),
    }
}

async fn set_status(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match body_object(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match tx::set_status(&s.provider, &r.tenant.0, &r.caller, &r.meta.0, &body).await {
        Ok(st) => no_store(Json(tx::status_json(&st)).into_response()),
        Err(e) => failure(e),
    }
}

/// Add a subject back to a stream (SSF §8.1.3.2): 200.
async fn add_subject(s: State<AppState>, r: Receiver, headers: HeaderMap, body: Bytes) -> Response {
    change_subject(s, r, headers, body, true).await
}

/// Remove a subject from a stream (SSF §8.1.3.3): 204.
async fn remove_subject(
    s: State<AppState>,
    r: Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change_subject(s, r, headers, body, false).await
}

async fn change_subject(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
    add: bool,
) -> Response {
    let body = match body_object(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match tx::change_subject(&s.provider, &r.tenant.0, &r.caller, &r.meta.0, &body, add).await {
        Ok(()) if add => no_store(StatusCode::OK.into_response()),
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

async fn verify(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match body_object(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match tx::request_verification(&s.provider, &r.tenant.0, &r.caller, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(e),
    }
}

async fn poll_stream(
    State(s): State<AppState>,
    Receiver(r): Receiver,
    Path((_, stream_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match body_object(&headers, &body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req = match PollRequest::parse(&body) {
        Ok(req) => req,
        Err(e) => return invalid(&e.0),
    };
    match poll::poll(
        &s.provider,
        &r.tenant.0,
        &r.caller,
        &stream_id,
        &req,
        LONG_POLL_WAIT,
    )
    .await
    {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => failure(e),
    }
}
