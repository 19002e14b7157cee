//! The audit trail, appended with group commit: concurrent `record` calls are queued to one
//! writer task that inserts everything waiting in a single statement, and each caller returns
//! only after the statement holding its event has committed. Durability per event, at a cost of
//! one commit per batch rather than per event.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::audit::{AuditEvent, Outcome};
use mandate_core::store::{AuditSink, StoreResult};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::connect::SqlStore;
use crate::error::backend;

/// Most events one insert carries (14 parameters each, well under both databases' limits).
const MAX_BATCH: usize = 256;
const COLUMNS: usize = 14;

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Start the writer on the current runtime; it ends when every handle is dropped.
    pub(crate) fn spawn(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        AuditWriter { tx }
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let result = insert(&pool, &batch).await.map_err(|e| e.to_string());
        for p in batch.drain(..) {
            let _ = p.done.send(result.clone());
        }
    }
}

fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding audit event: {e}"))
}

fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    }
}

/// One multi-row INSERT: atomic, one commit.
async fn insert(pool: &AnyPool, batch: &[Pending]) -> StoreResult<()> {
    let mut sql = String::from(
        "INSERT INTO audit_events (time, tenant_id, kind, outcome, actor, subject, act_chain, \
         client_id, mandate_id, ip, user_agent, request_id, reason, detail) VALUES ",
    );
    for i in 0..batch.len() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for c in 0..COLUMNS {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", i * COLUMNS + c + 1));
        }
        sql.push(')');
    }
    let mut q = sqlx::query(&sql);
    for p in batch {
        let e = &p.event;
        let actor = serde_json::to_string(&e.actor).map_err(encoding)?;
        let subject = e
            .subject
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(encoding)?;
        let act_chain = serde_json::to_string(&e.act_chain).map_err(encoding)?;
        q = q
            .bind(e.time)
            .bind(e.tenant_id.clone())
            .bind(e.kind.as_str())
            .bind(outcome(e.outcome))
            .bind(actor)
            .bind(subject)
            .bind(act_chain)
            .bind(e.client_id.clone())
            .bind(e.mandate_id.clone())
            .bind(e.ip.clone())
            .bind(e.user_agent.clone())
            .bind(e.request_id.clone())
            .bind(e.reason.clone())
            .bind(e.detail.to_string());
    }
    q.execute(pool).await.map_err(backend)?;
    Ok(())
}

#[async_trait]
impl AuditSink for SqlStore {
    async fn record(&self, e: &AuditEvent) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        let gone = || StoreError::Backend("audit writer stopped".into());
        self.audit
            .tx
            .send(Pending {
                event: e.clone(),
                done,
            })
            .await
            .map_err(|_| gone())?;
        wait.await.map_err(|_| gone())?.map_err(StoreError::Backend)
    }
}
