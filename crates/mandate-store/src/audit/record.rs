//! An audit record as the writer stores it: the tenant's head, records sealed after it, and
//! the transaction each database implements for the locked path. Below the writer and the
//! per-database code, which both use it.

use mandate_core::StoreError;
use mandate_core::audit::AuditEvent;
use mandate_core::audit::chain::{self, HASH_LEN};
use mandate_core::store::StoreResult;

/// A record that could not be encoded for storage.
pub(super) fn encoding(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding audit event: {e}"))
}

/// A tenant's head: (seq, hash) of its last record.
pub(super) type Head = (i64, [u8; HASH_LEN]);

/// One record sealed for insertion: its place in the chain and what it commits to.
pub(super) struct Record {
    pub(super) seq: i64,
    pub(super) act_chain: String,
    pub(super) sealed: chain::Sealed,
    pub(super) prev: [u8; HASH_LEN],
}

/// Number and seal `events` after the head `from`; returns the records and the new head.
pub(super) fn seal(from: Head, events: &[&AuditEvent]) -> StoreResult<(Vec<Record>, Head)> {
    let (mut seq, mut prev) = from;
    let mut records = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let sealed = chain::seal(&prev, e, seq);
        let hash = sealed.hash;
        records.push(Record {
            seq,
            act_chain: serde_json::to_string(&e.act_chain).map_err(encoding)?,
            sealed,
            prev: std::mem::replace(&mut prev, hash),
        });
    }
    Ok((records, (seq, prev)))
}

/// The head after `records` (the last one), or `from` when there are none.
pub(super) fn head_after(from: Head, records: &[Record]) -> Head {
    records.last().map_or(from, |r| (r.seq, r.sealed.hash))
}

/// A transaction the locked path appends in, one implementation per database.
pub(super) trait ChainTx: Sized {
    /// Lock the tenant's head row (creating it for the first record) and read it.
    async fn lock_head(&mut self, tenant: &str) -> StoreResult<Head>;
    /// Insert `records` and move the head from `from` to their last; whether it moved.
    async fn write(
        &mut self,
        tenant: &str,
        events: &[&AuditEvent],
        records: &[Record],
        from: Head,
    ) -> StoreResult<bool>;
    async fn commit(self) -> StoreResult<()>;
}

/// A record's subject as (type, id) columns.
pub(super) fn subject_parts(e: &AuditEvent) -> (Option<&'static str>, Option<&str>) {
    match &e.subject {
        Some(p) => {
            let (t, id) = p.parts();
            (Some(t), id)
        }
        None => (None, None),
    }
}

/// The `detail` column's text: its canonical JSON, the bytes the record's hash covers, so that
/// the verifier can hash the stored text without parsing it.
pub(super) fn canonical_detail(e: &AuditEvent) -> String {
    let mut s = String::new();
    mandate_core::audit::chain::canonical_json(&e.detail, &mut s);
    s
}
