//! The pass that turns a tenant's new audit records into queued SETs, one per record and
//! stream that asked for its event type. The tenant's cursor moves in the same transaction as
//! the SETs are queued, guarded by its old value: after a crash nothing is lost (the pass runs
//! again from the old cursor), and of two nodes running it at once only one queues.

use std::collections::HashMap;

use super::SsfStore;
use super::events::{SIGNAL_KINDS, signal};
use super::store::{Backlog, QueuedSet};
use super::stream::StreamStatus;
use super::{SET_TYP, jwt_sign};
use crate::audit::EventKind;
use crate::crypto::secret::random_token;
use crate::error::StoreError;
use crate::provider::{LoadError, Provider};
use crate::store::{AgentStore, AuditLog, AuditQuery, KeyStore, TenantStore};

/// Most audit records one pass reads.
pub const TAIL_BATCH: u32 = 500;

/// Why a pass failed (it is retried on the next tick).
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("tenant {0} has no signing key for its access token algorithm")]
    NoKey(String),
}

/// Run one pass for a tenant; returns how many SETs were queued (0 when another node moved
/// the cursor first).
pub async fn tail_tenant<S: AgentStore + AuditLog + KeyStore + SsfStore + TenantStore + ?Sized>(
    p: &Provider<S>,
    b: &Backlog,
) -> Result<usize, TailError> {
    let streams: Vec<_> = p
        .store
        .streams(&b.tenant_id)
        .await?
        .into_iter()
        .filter(|s| s.status != StreamStatus::Disabled)
        .collect();
    let records = if streams.is_empty() {
        Vec::new()
    } else {
        let q = AuditQuery {
            kinds: SIGNAL_KINDS.to_vec(),
            cursor: Some(b.cursor),
            ascending: true,
            limit: TAIL_BATCH,
            ..AuditQuery::default()
        };
        p.store.audit_query(&b.tenant_id, &q).await?
    };
    // A short page means everything up to the head was read (records appended since are
    // after the head read first). Undecodable records, which only tampering leaves and
    // `mandate audit verify` reports, are dropped from a page and could shorten it.
    let last = records.last().map(|r| r.seq).unwrap_or(b.cursor);
    let to = if records.len() as u32 == TAIL_BATCH {
        last
    } else {
        last.max(b.head)
    };
    let mut sets = Vec::new();
    if !records.is_empty() {
        let Some(t) = p.tenant(&b.tenant_name).await? else {
            return Ok(0);
        };
        let key = t
            .keys
            .signer(t.tenant.access_token_alg)
            .ok_or_else(|| TailError::NoKey(b.tenant_name.clone()))?;
        let now = p.now();
        let mut owners: HashMap<String, Option<String>> = HashMap::new();
        for r in &records {
            let e = &r.event;
            let owner = match e.kind {
                EventKind::AgentSuspended | EventKind::AgentDeleted | EventKind::AgentResumed => {
                    let id = e
                        .detail
                        .get("agent_id")
                        .and_then(|v| v.as_str())
                        .or(e.client_id.as_deref())
                        .unwrap_or_default()
                        .to_string();
                    if !owners.contains_key(&id) {
                        let agent = p.store.agent(&b.tenant_id, &id).await?;
                        owners.insert(id.clone(), agent.and_then(|a| a.owner_user_id));
                    }
                    owners[&id].clone()
                }
                _ => None,
            };
            let Some(sig) = signal(r, owner.as_deref()) else {
                continue;
            };
            for s in &streams {
                if r.seq <= s.start_seq || !s.delivers(sig.event_type) || !s.includes(&sig.subject)
                {
                    continue;
                }
                let jti = random_token(16);
                let claims = sig.claims(&t.issuer, &s.audience(), &jti, now, r.seq);
                sets.push(QueuedSet {
                    tenant_id: b.tenant_id.clone(),
                    stream_id: s.id.clone(),
                    jti,
                    set: jwt_sign(key, SET_TYP, &claims),
                    created_at: now,
                });
            }
        }
    }
    let moved = p
        .store
        .ssf_enqueue(&b.tenant_id, Some((b.cursor, to)), &sets)
        .await?;
    Ok(if moved { sets.len() } else { 0 })
}
