//! AuthZEN Authorization API 1.0 under each issuer: `/access/v1/evaluation(s)`, the search
//! endpoints and `/.well-known/authzen-configuration`. Callers (policy enforcement points)
//! authenticate with an access token carrying `mandate:authz`; the rules are in
//! `mandate_authz::authzen`. Every decision is audited.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mandate_authz::authzen::{self, Entity, Evaluation, EvaluationError};
use mandate_authz::{
    AuthzError, ListObjectsRequest, ListUsersRequest, PdpError, Tuple, UserFilter,
};
use mandate_core::access::AUTHZ_SCOPE;
use mandate_core::oauth::introspect::access_token_claims;
use mandate_core::{ErrorCode, OAuthError, TenantCtx};
use serde_json::{Map, Value, json};

use crate::admin::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tenant::Tenant;

/// Routes under `{issuer}`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/authzen-configuration", get(configuration))
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/subject", post(search_subject))
        .route("/access/v1/search/resource", post(search_resource))
        .route("/access/v1/search/action", post(search_action))
}

async fn configuration(Tenant(t): Tenant) -> Json<Value> {
    Json(json!({
        "policy_decision_point": t.issuer,
        "access_evaluation_endpoint": t.url("/access/v1/evaluation"),
        "access_evaluations_endpoint": t.url("/access/v1/evaluations"),
        "search_subject_endpoint": t.url("/access/v1/search/subject"),
        "search_resource_endpoint": t.url("/access/v1/search/resource"),
        "search_action_endpoint": t.url("/access/v1/search/action"),
    }))
}

/// An authenticated enforcement point: a token with `mandate:authz`.
struct Pep(Admin);

impl FromRequestParts<AppState> for Pep {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        Admin::for_scope(parts, s, AUTHZ_SCOPE).await.map(Pep)
    }
}

impl std::ops::Deref for Pep {
    type Target = Admin;
    fn deref(&self) -> &Admin {
        &self.0
    }
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::from(OAuthError::invalid_request(msg))
}

fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    let json_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim() == "application/json");
    if !json_type {
        return Err(ApiError {
            error: OAuthError::invalid_request("Content-Type must be application/json"),
            challenge: None,
            status: Some(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE),
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("the body must be a JSON object")),
    }
}

fn entity(v: Option<&Value>, id_key: &str) -> Entity {
    let o = v.and_then(Value::as_object);
    let get = |k: &str| {
        o.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Entity {
        kind: get("type"),
        id: get(id_key),
        properties: o
            .and_then(|o| o.get("properties"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

/// A refused authorization request: an OAuth-style error, or the engine's own refusal, which
/// is answered 400 `invalid_request` with OpenFGA's error code in `openfga_code` (2002 when the
/// request is too complex: its work budget or resolve depth was spent).
pub(crate) enum Refusal {
    Api(ApiError),
    Authz(AuthzError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Refusal::Api(ApiError::from(e))
    }
}

impl From<PdpError> for Refusal {
    fn from(e: PdpError) -> Self {
        match e {
            PdpError::Authz(a) => Refusal::Authz(a),
            PdpError::Store(s) => Refusal::Api(ApiError::from(OAuthError::from(s))),
            PdpError::NoModel => Refusal::Api(ApiError::from(OAuthError::new(
                ErrorCode::InvalidRequest,
                "the tenant has no authorization model yet",
            ))),
            other => Refusal::Api(invalid(other.to_string())),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Authz(a) => {
                let mut r = (
                    axum::http::StatusCode::BAD_REQUEST,
                    Json(json!({
                        "error": "invalid_request",
                        "error_description": a.to_string(),
                        "openfga_code": a.openfga_code(),
                    })),
                )
                    .into_response();
                r.headers_mut().insert(
                    axum::http::header::CACHE_CONTROL,
                    axum::http::HeaderValue::from_static("no-store"),
                );
                r
            }
        }
    }
}

fn pdp_error(e: PdpError) -> Refusal {
    Refusal::from(e)
}

/// `context.contextual_tuples` and `context.revision` of a search body (as for evaluations).
fn search_context(req: &Map<String, Value>) -> Result<(Vec<Tuple>, Option<i64>), ApiError> {
    let ctx = req.get("context").and_then(Value::as_object);
    let tuples = match ctx.and_then(|c| c.get("contextual_tuples")) {
        None => vec![],
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|x| invalid(format!("contextual_tuples: {x}")))?,
    };
    Ok((
        tuples,
        ctx.and_then(|c| c.get("revision")).and_then(Value::as_i64),
    ))
}

/// Build one evaluation from a request object and decide it (audited in the decision point).
async fn decide_one(
    s: &AppState,
    t: &TenantCtx,
    pep: &Pep,
    req: &Map<String, Value>,
) -> Result<Value, Refusal> {
    let subject = entity(req.get("subject"), "id");
    let token = if subject.kind == "access_token" {
        let claims = access_token_claims(&s.provider, t, &subject.id)
            .await?
            .ok_or_else(|| invalid("the subject access token is invalid, expired or revoked"))?;
        Some(claims)
    } else {
        None
    };
    let e = Evaluation {
        subject,
        action: entity(req.get("action"), "name"),
        resource: entity(req.get("resource"), "id"),
        context: req
            .get("context")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        token,
    };
    let asker = authzen::Asker {
        client_id: &pep.caller.client_id,
        meta: &pep.meta.0,
    };
    let now = s.provider.now();
    let d =
        match authzen::evaluate_audited(&s.pdp, s.provider.store.as_ref(), t.id(), asker, &e, now)
            .await
        {
            Ok(d) => d,
            Err(EvaluationError::Invalid(m)) => return Err(invalid(m).into()),
            Err(EvaluationError::Pdp(p)) => return Err(pdp_error(p)),
            Err(EvaluationError::Audit(x)) => {
                return Err(ApiError::from(OAuthError::from(x)).into());
            }
        };
    Ok(authzen::response(&d))
}

async fn evaluation(
    State(s): State<AppState>,
    pep: Pep,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let req = body_json(&headers, &body)?;
    let t = pep.tenant.0.clone();
    Ok(Json(decide_one(&s, &t, &pep, &req).await?).into_response())
}

/// Batch evaluation: top-level `subject`, `action`, `resource` and `context` are defaults each
/// item may override; `options.evaluations_semantic` is `execute_all` (default),
/// `deny_on_first_deny` or `permit_on_first_permit`.
async fn evaluations(
    State(s): State<AppState>,
    pep: Pep,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let req = body_json(&headers, &body)?;
    let t = pep.tenant.0.clone();
    let items = match req.get("evaluations") {
        None => return Ok(Json(decide_one(&s, &t, &pep, &req).await?).into_response()),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(invalid("evaluations must be an array").into()),
    };
    if items.len() > 1000 {
        return Err(invalid("at most 1000 evaluations per request").into());
    }
    let semantic = req
        .get("options")
        .and_then(|o| o.get("evaluations_semantic"))
        .and_then(Value::as_str)
        .unwrap_or("execute_all");
    if !matches!(
        semantic,
        "execute_all" | "deny_on_first_deny" | "permit_on_first_permit"
    ) {
        return Err(invalid(format!("unknown evaluations_semantic {semantic:?}")).into());
    }
    let mut out = Vec::new();
    for item in items {
        let Value::Object(item) = item else {
            return Err(invalid("each evaluation must be an object").into());
        };
        let mut merged = Map::new();
        for k in ["subject", "action", "resource", "context"] {
            if let Some(v) = item.get(k).or_else(|| req.get(k)) {
                merged.insert(k.into(), v.clone());
            }
        }
        let r = decide_one(&s, &t, &pep, &merged).await?;
        let decision = r["decision"].as_bool().unwrap_or(false);
        out.push(r);
        if (semantic == "deny_on_first_deny" && !decision)
            || (semantic == "permit_on_first_permit" && decision)
        {
            break;
        }
    }
    Ok(Json(json!({ "evaluations": out })).into_response())
}

fn results(items: Vec<String>) -> Value {
    let list: Vec<Value> = items
        .iter()
        .map(|s| match s.split_once(':') {
            Some((t, id)) => json!({"type": t, "id": id}),
            None => json!({"id": s}),
        })
        .collect();
    json!({"results": list, "page": {"next_token": ""}})
}

/// Subject, action and resource of a search body; `required` names the fields that must be set
/// (`subject.type`, `subject.id`, `action.name`, `resource.type`, `resource.id`).
fn search_parts(
    headers: &HeaderMap,
    body: &Bytes,
    required: &[&str],
) -> Result<(Entity, Entity, Entity, Map<String, Value>), ApiError> {
    let req = body_json(headers, body)?;
    let (subject, action, resource) = (
        entity(req.get("subject"), "id"),
        entity(req.get("action"), "name"),
        entity(req.get("resource"), "id"),
    );
    let missing = required.iter().any(|f| match *f {
        "subject.type" => subject.kind.is_empty(),
        "subject.id" => subject.id.is_empty(),
        "action.name" => action.id.is_empty(),
        "resource.type" => resource.kind.is_empty(),
        "resource.id" => resource.id.is_empty(),
        _ => false,
    });
    if missing {
        return Err(invalid(format!("{} are required", required.join(", "))));
    }
    Ok((subject, action, resource, req))
}

/// Subject search: who (of `subject.type`) may do `action` on `resource` (graph: ListUsers).
async fn search_subject(
    State(s): State<AppState>,
    pep: Pep,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (subject, action, resource, req) = search_parts(
        &headers,
        &body,
        &[
            "subject.type",
            "action.name",
            "resource.type",
            "resource.id",
        ],
    )?;
    let (contextual_tuples, revision) = search_context(&req)?;
    let users = s
        .pdp
        .list_users(
            pep.tenant.0.id(),
            &ListUsersRequest {
                object: format!("{}:{}", resource.kind, resource.id),
                relation: action.id,
                user_filters: vec![UserFilter::parse(&subject.kind)],
                contextual_tuples,
            },
            revision,
        )
        .await
        .map_err(pdp_error)?;
    Ok(Json(results(users)).into_response())
}

/// Resource search: which resources of `resource.type` `subject` may `action` (ListObjects).
async fn search_resource(
    State(s): State<AppState>,
    pep: Pep,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (subject, action, resource, req) = search_parts(
        &headers,
        &body,
        &["subject.type", "subject.id", "action.name", "resource.type"],
    )?;
    let (contextual_tuples, revision) = search_context(&req)?;
    let objects = s
        .pdp
        .list_objects(
            pep.tenant.0.id(),
            &ListObjectsRequest {
                object_type: resource.kind,
                relation: action.id,
                user: format!("{}:{}", subject.kind, subject.id),
                contextual_tuples,
            },
            revision,
        )
        .await
        .map_err(pdp_error)?;
    Ok(Json(results(objects)).into_response())
}

/// Action search: which relations of the resource's type `subject` has on it.
async fn search_action(
    State(s): State<AppState>,
    pep: Pep,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (subject, _, resource, req) = search_parts(
        &headers,
        &body,
        &["subject.type", "subject.id", "resource.type", "resource.id"],
    )?;
    let (contextual_tuples, revision) = search_context(&req)?;
    let tid = pep.tenant.0.id();
    let mut names = Vec::new();
    for rel in s
        .pdp
        .relations(tid, &resource.kind)
        .await
        .map_err(pdp_error)?
    {
        let check = mandate_authz::CheckRequest::new(
            format!("{}:{}", resource.kind, resource.id),
            rel.clone(),
            format!("{}:{}", subject.kind, subject.id),
        )
        .with_contextual_tuples(contextual_tuples.clone());
        match s.pdp.check(tid, &check, revision, None).await {
            Ok(true) => names.push(json!({"name": rel})),
            // Too complex is an answer the caller must see, not "no such action".
            Err(PdpError::Authz(a)) if a.is_resource_limit() => return Err(Refusal::Authz(a)),
            Err(PdpError::Store(e)) => return Err(ApiError::from(e).into()),
            _ => {}
        }
    }
    Ok(Json(json!({"results": names, "page": {"next_token": ""}})).into_response())
}
