//! `GET /admin/v1/tenants/{tenant}/audit/events`: the audit log with filters and cursor
//! pagination (see docs/audit.md).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use mandate_core::OAuthError;
use mandate_core::access;
use mandate_core::audit::query_from_params;
use mandate_core::store::AuditRecord;
use serde_json::json;

use super::AuditReader;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn events(
    State(s): State<AppState>,
    AuditReader(admin): AuditReader,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let raw = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let q = query_from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| OAuthError::invalid_request(e.0))?;
    let (records, next) = access::query_audit(
        &s.provider,
        &admin.tenant.0,
        &admin.caller,
        &q,
        &admin.meta.0,
    )
    .await?;
    let events: Vec<_> = records.iter().map(AuditRecord::to_json).collect();
    Ok(Json(json!({
        "events": events,
        "next_cursor": next.map(|c| c.to_string()),
    }))
    .into_response())
}
