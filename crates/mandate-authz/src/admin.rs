//! Administering a tenant's fine-grained authorization (CLI and admin API share these): write a
//! model (OpenFGA DSL or JSON), write or delete tuples, set the Cedar policy. Every change is
//! audited with its actor.

use serde_json::{Value, json};

use mandate_core::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use mandate_core::crypto::secret::random_token;
use mandate_core::store::Store;

use crate::model::AuthorizationModel;
use crate::pdp::{Pdp, PdpError};
use crate::tuple::Tuple;

async fn record(
    store: &dyn Store,
    tenant_id: &str,
    kind: EventKind,
    actor: &Principal,
    detail: Value,
) -> Result<(), PdpError> {
    let ev = AuditEvent::new(
        tenant_id,
        kind,
        Outcome::Success,
        actor.clone(),
        &RequestMeta::default(),
    )
    .detail(detail);
    store.record(&ev).await?;
    Ok(())
}

/// Parse a model from the OpenFGA DSL, or its JSON form when the text starts with `{`.
pub fn parse_model(text: &str) -> Result<AuthorizationModel, PdpError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(trimmed).map_err(|e| {
            PdpError::Model(crate::error::ModelError::Json(format!("not JSON: {e}")))
        })?;
        Ok(AuthorizationModel::from_json(&v)?)
    } else {
        Ok(AuthorizationModel::from_dsl(text)?)
    }
}

/// Validate and store a new model version; returns its id.
pub async fn write_model(
    pdp: &Pdp,
    store: &dyn Store,
    tenant_id: &str,
    text: &str,
    actor: &Principal,
    now: i64,
) -> Result<String, PdpError> {
    let model = parse_model(text)?;
    let id = pdp
        .write_model(tenant_id, &model, random_token(16), now)
        .await?;
    record(
        store,
        tenant_id,
        EventKind::AuthzModelWritten,
        actor,
        json!({"model_id": id}),
    )
    .await?;
    Ok(id)
}

/// Write and delete tuples atomically; returns the revision to read them at.
pub async fn write_tuples(
    pdp: &Pdp,
    store: &dyn Store,
    tenant_id: &str,
    writes: &[Tuple],
    deletes: &[Tuple],
    actor: &Principal,
) -> Result<i64, PdpError> {
    let revision = pdp.write_tuples(tenant_id, writes, deletes).await?;
    record(
        store,
        tenant_id,
        EventKind::AuthzTuplesWritten,
        actor,
        json!({
            "revision": revision,
            "writes": writes.iter().map(Tuple::key).collect::<Vec<_>>(),
            "deletes": deletes.iter().map(Tuple::key).collect::<Vec<_>>(),
        }),
    )
    .await?;
    Ok(revision)
}

/// Validate and store the tenant's Cedar policy set (and schema); returns its version.
pub async fn set_policy(
    pdp: &Pdp,
    store: &dyn Store,
    tenant_id: &str,
    policies: &str,
    schema: Option<&str>,
    actor: &Principal,
    now: i64,
) -> Result<i64, PdpError> {
    let version = pdp.set_policy(tenant_id, policies, schema, now).await?;
    record(
        store,
        tenant_id,
        EventKind::AuthzPolicySet,
        actor,
        json!({"version": version}),
    )
    .await?;
    Ok(version)
}
