//! The audit trail: one appended row per event, committed before `record` returns.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::audit::{AuditEvent, Outcome};
use mandate_core::store::{AuditSink, StoreResult};

use crate::connect::SqlStore;
use crate::error::backend;

fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding audit event: {e}"))
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
}

#[async_trait]
impl AuditSink for SqlStore {
    async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
        let actor = serde_json::to_string(&e.actor).map_err(encoding)?;
        let subject = (e.subject.as_ref())
            .map(serde_json::to_string)
            .transpose()
            .map_err(encoding)?;
        let act_chain = serde_json::to_string(&e.act_chain).map_err(encoding)?;
        sqlx::query(
            "INSERT INTO audit_events (time, tenant_id, kind, outcome, actor, subject, act_chain, \
             client_id, mandate_id, ip, user_agent, request_id, reason, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(e.time)
        .bind(&e.tenant_id)
        .bind(e.kind.as_str())
        .bind(outcome(e.outcome))
        .bind(actor)
        .bind(subject)
        .bind(act_chain)
        .bind(e.client_id.as_deref())
        .bind(e.mandate_id.as_deref())
        .bind(e.ip.as_deref())
        .bind(e.user_agent.as_deref())
        .bind(e.request_id.as_deref())
        .bind(e.reason.as_deref())
        .bind(e.detail.to_string())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}
