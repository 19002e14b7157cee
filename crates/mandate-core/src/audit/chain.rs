//! The tamper-evident hash chain over a tenant's audit log.
//!
//! Every record of a tenant carries a sequence number (1, 2, 3… without gaps), the hash of the
//! record before it (`prev_hash`; 32 zero bytes for record 1) and its own hash:
//!
//! ```text
//! hash = SHA-256(prev_hash || canonical(seq, event, personal_commitment))
//! ```
//!
//! [`canonical`] is a length-prefixed binary encoding of every stored field (see its doc), so a
//! change to any field, a deleted, inserted or moved record, all change a hash or break a link.
//!
//! Personal data ([`Personal`]: IP, user agent, username, e-mail) is not in the chained
//! content. It is stored apart with a random 32-byte salt, and the chain holds only
//! `personal_commitment = HMAC-SHA-256(salt, personal)`: the commitment pins the data (a change
//! is detected while the salt exists) yet reveals nothing once salt and data are erased, and
//! erasure leaves every hash intact.
//! The writer (`mandate-store`) and [`Verifier`] share these functions. A chain can be rewritten
//! wholesale by someone able to write the database; a [`Checkpoint`] kept elsewhere detects that.

use std::fmt;

use aws_lc_rs::{digest, hmac, rand};

use super::store::AuditLog;
pub use super::store::{ChainRecord, Checkpoint};
use super::{AuditEvent, Personal, Principal};
use crate::error::StoreResult;

/// Length of a record hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// The `prev_hash` of record 1, and the hash of the empty chain (head at seq 0).
pub const GENESIS: [u8; HASH_LEN] = [0; HASH_LEN];

/// Version tag at the start of every canonical serialization.
const DOMAIN: &str = "mandate.audit.v1";

/// Version tag of the personal-data commitment.
const PERSONAL_DOMAIN: &str = "mandate.audit.personal.v1";

/// Length of the per-record salt that keys the personal-data commitment.
pub const SALT_LEN: usize = 32;

/// Rows fetched per page while verifying.
pub const VERIFY_PAGE: u32 = 2_000;

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_principal(out: &mut Vec<u8>, p: &Principal) {
    let (tag, id) = p.parts();
    put_str(out, tag);
    put_opt_str(out, id);
}

/// JSON with object keys sorted by their UTF-8 bytes, no whitespace, serde_json's string
/// escaping and number formatting. Independent of serde_json's `preserve_order` feature.
pub fn canonical_json(v: &serde_json::Value, out: &mut String) {
    let mut bytes = Vec::new();
    canonical_json_bytes(v, &mut bytes);
    // Only serde_json's own (valid UTF-8) output and ASCII punctuation were written.
    out.push_str(std::str::from_utf8(&bytes).expect("JSON output is UTF-8"));
}

/// [`canonical_json`] appended to a byte buffer, without intermediate strings (the verifier
/// runs this once per record).
fn canonical_json_bytes(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    // Writing to a Vec cannot fail, and strings and numbers always serialize.
    fn string(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(out, s).expect("a string serializes");
    }
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => serde_json::to_writer(&mut *out, n).expect("a number serializes"),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json_bytes(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, k);
                out.push(b':');
                canonical_json_bytes(v, out);
            }
            out.push(b'}');
        }
    }
}

/// The canonical serialization of a record: the bytes its hash covers (after `prev_hash`).
///
/// In order: the tag `mandate.audit.v1` (as a string), `seq` and `time` as 8-byte big-endian
/// signed integers, then `tenant_id`, `kind` (wire name), `outcome` (`success`/`failure`),
/// `reason`?, `actor`, `subject`?, `act_chain` (8-byte count, then each principal),
/// `client_id`?, `mandate_id`?, `request_id`?, `detail` as a string holding its
/// [`canonical_json`], and `personal_commitment`? (32 bytes). A string is an 8-byte big-endian
/// byte length and its UTF-8 bytes; an optional field (`?`) is `0x00` when absent, else `0x01`
/// and the value; a principal is its type (`user`, `client`, `agent`, `admin`, `anonymous`) as
/// a string and its id as an optional string. `event.personal` is not read: the commitment
/// stands for it.
pub fn canonical(seq: i64, e: &AuditEvent, personal_commitment: Option<&[u8]>) -> Vec<u8> {
    canonical_with(seq, e, Detail::Value(&e.detail), personal_commitment)
}

/// Where [`canonical_with`] takes the detail's canonical JSON from.
#[derive(Clone, Copy)]
enum Detail<'a> {
    /// Serialize this value.
    Value(&'a serde_json::Value),
    /// These bytes, taken to be the canonical JSON already (as the writer stores it).
    Text(&'a [u8]),
}

/// [`canonical`], with the detail given apart from the event.
fn canonical_with(
    seq: i64,
    e: &AuditEvent,
    detail: Detail<'_>,
    personal_commitment: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put_str(&mut out, DOMAIN);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&e.time.to_be_bytes());
    put_str(&mut out, &e.tenant_id);
    put_str(&mut out, e.kind.as_str());
    put_str(&mut out, e.outcome.as_str());
    put_opt_str(&mut out, e.reason.as_deref());
    put_principal(&mut out, &e.actor);
    match &e.subject {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            put_principal(&mut out, p);
        }
    }
    put_len(&mut out, e.act_chain.len());
    for p in &e.act_chain {
        put_principal(&mut out, p);
    }
    put_opt_str(&mut out, e.client_id.as_deref());
    put_opt_str(&mut out, e.mandate_id.as_deref());
    put_opt_str(&mut out, e.request_id.as_deref());
    // The detail's length prefix is filled in once its canonical JSON is written.
    let at = out.len();
    put_len(&mut out, 0);
    match detail {
        Detail::Value(v) => canonical_json_bytes(v, &mut out),
        Detail::Text(t) => out.extend_from_slice(t),
    }
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_be_bytes());
    match personal_commitment {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            put_len(&mut out, c.len());
            out.extend_from_slice(c);
        }
    }
    out
}

/// The hash of record `seq` holding `event` (with its personal data committed to as
/// `personal_commitment`), chained after `prev` (the previous record's hash).
pub fn record_hash(
    prev: &[u8],
    event: &AuditEvent,
    seq: i64,
    personal_commitment: Option<&[u8]>,
) -> [u8; HASH_LEN] {
    hash_with(
        prev,
        event,
        seq,
        Detail::Value(&event.detail),
        personal_commitment,
    )
}

/// [`record_hash`], with the detail given apart from the event.
fn hash_with(
    prev: &[u8],
    event: &AuditEvent,
    seq: i64,
    detail: Detail<'_>,
    personal_commitment: Option<&[u8]>,
) -> [u8; HASH_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(&canonical_with(seq, event, detail, personal_commitment));
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What the writer stores for one record besides its fields.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// Salt and commitment of the personal data; `None` when the record has none.
    pub personal: Option<([u8; SALT_LEN], [u8; HASH_LEN])>,
    pub hash: [u8; HASH_LEN],
}

/// Seal record `seq` after `prev`: commit to its personal data under a fresh salt, then hash.
pub fn seal(prev: &[u8], event: &AuditEvent, seq: i64) -> Sealed {
    let personal = (!event.personal.is_empty()).then(|| {
        let salt = new_salt();
        let c = personal_commitment(&salt, &event.personal).unwrap_or_default();
        (salt, c)
    });
    let hash = record_hash(prev, event, seq, personal.as_ref().map(|(_, c)| &c[..]));
    Sealed { personal, hash }
}

/// A fresh random salt for one record's personal data.
pub fn new_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    // The system RNG failing is not recoverable; aws-lc aborts in that case anyway.
    rand::fill(&mut salt).expect("system random number generator");
    salt
}

/// The keyed commitment to a record's personal data: HMAC-SHA-256 keyed by the record's salt
/// over `mandate.audit.personal.v1`, `ip`?, `user_agent`?, `username`?, `email`? (encoded as in
/// [`canonical`]). `None` when there is no personal data.
pub fn personal_commitment(salt: &[u8], p: &Personal) -> Option<[u8; HASH_LEN]> {
    if p.is_empty() {
        return None;
    }
    let mut msg = Vec::with_capacity(128);
    put_str(&mut msg, PERSONAL_DOMAIN);
    put_opt_str(&mut msg, p.ip.as_deref());
    put_opt_str(&mut msg, p.user_agent.as_deref());
    put_opt_str(&mut msg, p.username.as_deref());
    put_opt_str(&mut msg, p.email.as_deref());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), &msg);
    let mut out = [0u8; HASH_LEN];
    out.copy_from_slice(tag.as_ref());
    Some(out)
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, hex(&self.hash))
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid checkpoint {s:?}: expected SEQ:HASH (64 hex digits)");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        let hash = unhex(&hash.to_ascii_lowercase()).ok_or_else(bad)?;
        if seq < 0 || hash.len() != HASH_LEN {
            return Err(bad());
        }
        Ok(Checkpoint { seq, hash })
    }
}

impl ChainRecord {
    /// The stored event with its detail, parsed from [`ChainRecord::stored_detail`] when the
    /// store handed it over as text.
    pub fn full_event(&self) -> Result<AuditEvent, String> {
        let mut event = self.event.clone()?;
        if let Some(text) = &self.stored_detail {
            event.detail = serde_json::from_str(text).map_err(|e| format!("detail: {e}"))?;
        }
        Ok(event)
    }
}

/// The first record where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for ChainBreak {}

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records walked.
    pub records: u64,
    /// The last record (seq 0 and [`GENESIS`] for an empty log).
    pub head: Checkpoint,
}

/// The checks of one record that need no other record: its fields decode, its hash matches
/// its content chained after its own stored `prev_hash`, and its personal data matches its
/// commitment (or was erased with its salt). [`Verifier`] checks the link (that `prev_hash` is
/// the previous record's hash) before using this, so hashing with the stored `prev_hash` is
/// the same as hashing with the previous record's; being independent of other records, it can
/// run for many records in parallel. `Err` is the reason the record breaks the chain.
pub fn check_content(r: &ChainRecord) -> Result<(), String> {
    let event = match &r.event {
        Ok(e) => e,
        Err(why) => return Err(format!("stored fields cannot be decoded: {why}")),
    };
    let commitment = r.personal_commitment.as_deref();
    let hash = |detail| hash_with(&r.prev_hash, event, r.seq, detail, commitment);
    let matches = match r.stored_detail.as_deref() {
        None => hash(Detail::Value(&event.detail))[..] == r.hash[..],
        // The text hashes to the record's hash only if it is the canonical JSON the writer
        // hashed (SHA-256 is collision resistant), so it needs no parsing.
        Some(text) if hash(Detail::Text(text.as_bytes()))[..] == r.hash[..] => true,
        Some(text) => {
            let detail: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| format!("stored fields cannot be decoded: detail: {e}"))?;
            hash(Detail::Value(&detail))[..] == r.hash[..]
        }
    };
    if !matches {
        return Err("content does not match its hash (record changed)".into());
    }
    match (&r.personal_salt, commitment) {
        (Some(salt), Some(c)) => {
            if personal_commitment(salt, &event.personal)
                .as_ref()
                .map(|x| &x[..])
                != Some(c)
            {
                return Err("personal data does not match its commitment (record changed)".into());
            }
        }
        // Erased: nothing personal may be left without its salt.
        (None, Some(_)) if event.personal.is_empty() => {}
        (None, None) if event.personal.is_empty() => {}
        _ => {
            return Err(
                "personal data present that the record does not commit to (record changed)".into(),
            );
        }
    }
    Ok(())
}

/// Walks a chain record by record (in `seq` order, as [`AuditLog::audit_chain`] returns them),
/// so that a long log is verified page by page in constant memory.
#[derive(Debug)]
pub struct Verifier {
    next: i64,
    prev: Vec<u8>,
    checkpoint: Option<Checkpoint>,
}

impl Verifier {
    /// Start at the genesis; `checkpoint` is a head exported earlier that the chain must contain.
    pub fn new(checkpoint: Option<Checkpoint>) -> Self {
        Verifier {
            next: 1,
            prev: GENESIS.to_vec(),
            checkpoint,
        }
    }

    fn fail(seq: i64, reason: impl Into<String>) -> Result<(), ChainBreak> {
        Err(ChainBreak {
            seq,
            reason: reason.into(),
        })
    }

    /// Check the next record.
    pub fn push(&mut self, r: &ChainRecord) -> Result<(), ChainBreak> {
        self.push_checked(r, check_content(r))
    }

    /// Check the next record, whose [`check_content`] result is `content` (computed
    /// beforehand, possibly on another thread). Same result as [`Verifier::push`].
    pub fn push_checked(
        &mut self,
        r: &ChainRecord,
        content: Result<(), String>,
    ) -> Result<(), ChainBreak> {
        let expected = self.next;
        if r.seq < expected {
            return Self::fail(
                r.seq,
                format!(
                    "unexpected record with sequence number {} after record {} (record inserted)",
                    r.seq,
                    expected - 1
                ),
            );
        }
        if r.seq > expected {
            return Self::fail(
                expected,
                format!("missing: the next record is {} (record deleted)", r.seq),
            );
        }
        if r.prev_hash != self.prev {
            return Self::fail(
                r.seq,
                format!(
                    "prev_hash does not match the hash of record {} (record inserted, deleted or moved)",
                    r.seq - 1
                ),
            );
        }
        if let Err(reason) = content {
            return Self::fail(r.seq, reason);
        }
        if let Some(cp) = &self.checkpoint
            && cp.seq == r.seq
            && cp.hash != r.hash
        {
            return Self::fail(
                r.seq,
                format!("hash differs from the checkpoint {cp} (history rewritten)"),
            );
        }
        self.prev = r.hash.clone();
        self.next += 1;
        Ok(())
    }

    /// End of the records: compare the last one with the stored head (`audit_heads`) and the
    /// checkpoint.
    pub fn finish(self, stored_head: Option<&Checkpoint>) -> Result<VerifyReport, ChainBreak> {
        let last = Checkpoint {
            seq: self.next - 1,
            hash: self.prev,
        };
        let fail = |seq, reason: String| Err(ChainBreak { seq, reason });
        if let Some(cp) = &self.checkpoint {
            if cp.seq > last.seq {
                return fail(
                    last.seq + 1,
                    format!(
                        "missing: the chain ends at {} but the checkpoint is at {} (tail truncated)",
                        last.seq, cp.seq
                    ),
                );
            }
            if cp.seq == 0 && cp.hash != GENESIS {
                return fail(0, format!("checkpoint {cp} is not the genesis"));
            }
        }
        match stored_head {
            None if last.seq > 0 => {
                return fail(
                    last.seq,
                    "the chain has no stored head (audit_heads row deleted)".into(),
                );
            }
            None => {}
            Some(h) if h.seq > last.seq => {
                return fail(
                    last.seq + 1,
                    format!(
                        "missing: the chain ends at {} but its stored head is at {} (tail truncated)",
                        last.seq, h.seq
                    ),
                );
            }
            Some(h) if h.seq < last.seq => {
                return fail(
                    h.seq + 1,
                    format!(
                        "beyond the stored head at {} (record appended outside the writer)",
                        h.seq
                    ),
                );
            }
            Some(h) if h.hash != last.hash => {
                return fail(last.seq, "hash differs from the stored head".into());
            }
            Some(_) => {}
        }
        Ok(VerifyReport {
            records: last.seq as u64,
            head: last,
        })
    }
}

/// Verify a whole chain held in memory.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a ChainRecord>,
    stored_head: Option<&Checkpoint>,
    checkpoint: Option<Checkpoint>,
) -> Result<VerifyReport, ChainBreak> {
    let mut v = Verifier::new(checkpoint);
    for r in records {
        v.push(r)?;
    }
    v.finish(stored_head)
}

/// Verify a tenant's chain in storage, reading it in pages of `page` records. The outer error
/// is a storage failure; the inner one the first bad record.
///
/// Pipelined: up to the head read at the start, the log is read as spans of `page` sequence
/// numbers, [`READ_AHEAD`] spans at once (a span needs no previous page), while the page before
/// them is checked ([`check_content`] on a blocking thread: hashing is most of the CPU work).
/// Links and order are then checked in sequence, as [`Verifier::push`]. A span holding more
/// records than sequence numbers is cut at one more than it can rightly hold: the verifier
/// stops at a duplicate or stray record by then. Records past the head (appended meanwhile, or
/// outside the writer) are read after the spans, page by page.
pub async fn verify_stored(
    log: &dyn AuditLog,
    tenant_id: &str,
    checkpoint: Option<Checkpoint>,
    page: u32,
) -> StoreResult<Result<VerifyReport, ChainBreak>> {
    use futures_util::stream::{self, StreamExt};

    // Read the head first: records appended while we walk then only extend the chain past it.
    let head = log.audit_head(tenant_id).await?;
    let spans = spans(head.as_ref().map_or(0, |h| h.seq), i64::from(page));
    let mut after = match spans.last() {
        Some(&(_, hi)) => (hi, i64::MAX),
        None => (i64::MIN, i64::MIN),
    };
    // Reading and checking run as two loops in one task, joined by a channel, so that reads
    // go on (and keep a core busy) while a page is checked.
    let (pages, arrived) = tokio::sync::mpsc::channel(READ_AHEAD);
    let read = async move {
        let mut reads = stream::iter(spans)
            .map(|seqs| log.audit_chain_span(tenant_id, seqs, page.saturating_add(1)))
            .buffered(READ_AHEAD);
        while let Some(rows) = reads.next().await {
            let failed = rows.is_err();
            // The checker stopped (a break, or a storage error): nothing more to read.
            if pages.send(rows).await.is_err() || failed {
                return;
            }
        }
    };
    let check = async {
        // Moved in, so that it is dropped when checking ends.
        let mut arrived = arrived;
        let mut v = Verifier::new(checkpoint);
        while let Some(rows) = arrived.recv().await {
            v = match check_page(v, rows?, head.clone()).await? {
                Step::Go(v) => v,
                done => return Ok(done),
            };
        }
        Ok(Step::Go(v))
    };
    // `check` owns the receiver: when it ends, the reader's next send fails and it stops.
    let (_, checked) = tokio::join!(read, check);
    let mut v = match checked? {
        Step::Go(v) => v,
        Step::Done(result) => return Ok(result),
    };
    // Past the head: normally nothing, or what was appended since the head was read.
    loop {
        let rows = log.audit_chain(tenant_id, after, page).await?;
        let full = rows.len() as u32 == page;
        if let Some(r) = rows.last() {
            after = (r.seq, r.row_id);
        }
        v = match check_page(v, rows, head.clone()).await? {
            Step::Go(v) => v,
            Step::Done(result) => return Ok(result),
        };
        if !full {
            return Ok(v.finish(head.as_ref()));
        }
    }
}

/// How many spans [`verify_stored`] reads at once.
const READ_AHEAD: usize = 4;

/// The spans `(lo, hi]` of `page` sequence numbers that cover `1..=head` (the first one open
/// below, so that stray records with impossible numbers are read too).
fn spans(head: i64, page: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    if head <= 0 {
        return out;
    }
    let (mut lo, mut hi) = (i64::MIN, page.max(1));
    loop {
        let top = hi.min(head);
        out.push((lo, top));
        if top >= head {
            return out;
        }
        (lo, hi) = (top, top.saturating_add(page.max(1)));
    }
}

/// What checking a page leaves: the verifier to go on with, or the final result.
enum Step {
    Go(Verifier),
    Done(Result<VerifyReport, ChainBreak>),
}

/// Check one page on a blocking thread (hashing is CPU work), dropping its records there.
async fn check_page(
    mut v: Verifier,
    rows: Vec<ChainRecord>,
    head: Option<Checkpoint>,
) -> StoreResult<Step> {
    let checking = tokio::task::spawn_blocking(move || {
        let checks: Vec<_> = rows.iter().map(check_content).collect();
        for (r, content) in rows.iter().zip(checks) {
            // Records committed after the head was read are not part of this verification.
            if let Some(h) = &head
                && r.seq > h.seq
                && r.seq == v.next
            {
                return Step::Done(v.finish(Some(h)));
            }
            if let Err(b) = v.push_checked(r, content) {
                return Step::Done(Err(b));
            }
        }
        Step::Go(v)
    });
    match checking.await {
        Ok(step) => Ok(step),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(crate::StoreError::Backend(format!("verifier task: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_every_sequence_number_once() {
        assert!(spans(0, 10).is_empty());
        assert_eq!(spans(5, 10), vec![(i64::MIN, 5)]);
        assert_eq!(spans(10, 10), vec![(i64::MIN, 10)]);
        assert_eq!(spans(25, 10), vec![(i64::MIN, 10), (10, 20), (20, 25)]);
    }
    use crate::audit::{EventKind, Outcome};
    use serde_json::json;

    /// A commitment value for hashing tests.
    const C: [u8; 32] = [7; 32];

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            time: 1_700_000_000 + n,
            tenant_id: "t1".into(),
            kind: EventKind::TokenIssued,
            outcome: Outcome::Success,
            reason: None,
            actor: Principal::Client { id: "svc".into() },
            subject: Some(Principal::User { id: "u1".into() }),
            act_chain: vec![Principal::Agent { id: "a1".into() }],
            client_id: Some("svc".into()),
            mandate_id: None,
            request_id: Some(format!("req-{n}")),
            detail: json!({"scope": "api.read", "jti": format!("j{n}"), "exp": 300}),
            personal: Personal {
                ip: Some("192.0.2.1".into()),
                user_agent: Some("ua".into()),
                ..Personal::default()
            },
        }
    }

    /// A valid chain of `n` records, as the writer stores it.
    fn chain(n: i64) -> Vec<ChainRecord> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let e = event(seq);
                let sealed = seal(&prev, &e, seq);
                let hash = sealed.hash.to_vec();
                let (salt, commitment) = sealed.personal.unwrap();
                let r = ChainRecord {
                    row_id: seq,
                    seq,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    event: Ok(e),
                    personal_commitment: Some(commitment.to_vec()),
                    personal_salt: Some(salt.to_vec()),
                    stored_detail: None,
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn head(records: &[ChainRecord]) -> Checkpoint {
        records.last().map_or(
            Checkpoint {
                seq: 0,
                hash: GENESIS.to_vec(),
            },
            |r| Checkpoint {
                seq: r.seq,
                hash: r.hash.clone(),
            },
        )
    }

    fn broken_at(records: &[ChainRecord], h: &Checkpoint, cp: Option<Checkpoint>) -> i64 {
        verify(records, Some(h), cp)
            .expect_err("chain must break")
            .seq
    }

    /// Recompute every hash from `from` on, as someone with write access could.
    fn rehash(records: &mut [ChainRecord]) {
        let mut prev = GENESIS.to_vec();
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
            r.prev_hash = prev.clone();
            r.hash = record_hash(
                &prev,
                r.event.as_ref().unwrap(),
                r.seq,
                r.personal_commitment.as_deref(),
            )
            .to_vec();
            prev = r.hash.clone();
        }
    }

    #[test]
    fn hash_is_stable_and_covers_prev_seq_and_commitment() {
        let e = event(1);
        let h = record_hash(&GENESIS, &e, 1, Some(&C));
        assert_eq!(h, record_hash(&GENESIS, &e.clone(), 1, Some(&C)));
        assert_ne!(h, record_hash(&GENESIS, &e, 2, Some(&C)));
        assert_ne!(h, record_hash(&[1; 32], &e, 1, Some(&C)));
        assert_ne!(h, record_hash(&GENESIS, &e, 1, Some(&[8; 32])));
        assert_ne!(h, record_hash(&GENESIS, &e, 1, None));
        // Personal data is not hashed directly: the commitment stands for it.
        let mut other = e.clone();
        other.personal = Personal::default();
        assert_eq!(h, record_hash(&GENESIS, &other, 1, Some(&C)));
        // A pinned value: changing the canonical form is a format change (bump the tag).
        assert_eq!(
            hex(&record_hash(&GENESIS, &event(0), 0, Some(&C))),
            "51e45479d92db1e9144bab25c1c009a4e271d797149c47b19088c74921b7a31e"
        );
    }

    #[test]
    fn every_field_is_covered() {
        let base = event(1);
        let h = record_hash(&GENESIS, &base, 1, Some(&C));
        let variants: Vec<fn(&mut AuditEvent)> = vec![
            |e| e.time += 1,
            |e| e.tenant_id = "t2".into(),
            |e| e.kind = EventKind::TokenRefreshed,
            |e| e.outcome = Outcome::Failure,
            |e| e.reason = Some(String::new()),
            |e| e.actor = Principal::User { id: "svc".into() },
            |e| e.actor = Principal::Anonymous,
            |e| e.subject = None,
            |e| e.act_chain.clear(),
            |e| e.act_chain.push(Principal::Anonymous),
            |e| e.client_id = None,
            |e| e.mandate_id = Some("m".into()),
            |e| e.request_id = Some("req-2".into()),
            |e| e.detail["exp"] = json!(301),
            |e| e.detail = serde_json::Value::Null,
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = base.clone();
            change(&mut e);
            assert_ne!(record_hash(&GENESIS, &e, 1, Some(&C)), h, "variant {i}");
        }
    }

    #[test]
    fn encoding_is_unambiguous() {
        // Moving bytes between adjacent fields changes the hash.
        let mut a = event(1);
        a.client_id = Some("ab".into());
        a.mandate_id = Some("c".into());
        let mut b = a.clone();
        b.client_id = Some("a".into());
        b.mandate_id = Some("bc".into());
        assert_ne!(canonical(1, &a, None), canonical(1, &b, None));
        // Absent and empty differ.
        let mut c = a.clone();
        c.reason = Some(String::new());
        assert_ne!(canonical(1, &a, None), canonical(1, &c, None));
    }

    #[test]
    fn detail_is_canonical_json_with_sorted_keys() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"z": 1, "a": [true, null, "x\"y"], "m": {"b": 1.5, "a": -2}}"#,
        )
        .unwrap();
        let mut s = String::new();
        canonical_json(&v, &mut s);
        assert_eq!(s, r#"{"a":[true,null,"x\"y"],"m":{"a":-2,"b":1.5},"z":1}"#);
        // Round trip through the stored text gives the same hash.
        let mut e = event(1);
        e.detail = v.clone();
        let mut back = e.clone();
        back.detail = serde_json::from_str(&v.to_string()).unwrap();
        assert_eq!(
            record_hash(&GENESIS, &e, 1, Some(&C)),
            record_hash(&GENESIS, &back, 1, Some(&C))
        );
    }

    #[test]
    fn checkpoint_text_round_trips() {
        let cp = Checkpoint {
            seq: 42,
            hash: (0..32).collect(),
        };
        let s = cp.to_string();
        assert_eq!(
            s,
            "42:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(s.parse::<Checkpoint>().unwrap(), cp);
        assert_eq!(s.to_uppercase().parse::<Checkpoint>().unwrap(), cp);
        for bad in ["", "42", "x:00", "42:00", "-1:00", &format!("{s}0")] {
            assert!(bad.parse::<Checkpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_valid_chain_verifies() {
        let c = chain(10);
        let report = verify(&c, Some(&head(&c)), None).unwrap();
        assert_eq!(report.records, 10);
        assert_eq!(report.head, head(&c));
        let cp = Checkpoint {
            seq: 4,
            hash: c[3].hash.clone(),
        };
        assert!(verify(&c, Some(&head(&c)), Some(cp)).is_ok());
        assert!(verify(&c, Some(&head(&c)), Some(head(&c))).is_ok());
        // Empty logs, with or without a head row.
        let empty = head(&[]);
        assert_eq!(verify(&[], None, None).unwrap().records, 0);
        assert_eq!(
            verify(&[], Some(&empty), Some(empty.clone())).unwrap().head,
            empty
        );
    }

    #[test]
    fn changed_field_is_detected() {
        let mut c = chain(10);
        let h = head(&c);
        c[4].event.as_mut().unwrap().client_id = Some("evil".into());
        assert_eq!(broken_at(&c, &h, None), 5);
        let mut c = chain(10);
        c[6].hash[0] ^= 1;
        assert_eq!(broken_at(&c, &h, None), 7);
        let mut c = chain(10);
        c[2].event = Err("bad actor".into());
        assert_eq!(broken_at(&c, &h, None), 3);
    }

    #[test]
    fn deleted_record_is_detected() {
        let mut c = chain(10);
        let h = head(&c);
        c.remove(3);
        let b = verify(&c, Some(&h), None).unwrap_err();
        assert_eq!(b.seq, 4);
        assert!(b.reason.contains("missing"), "{b}");
        // The first record too.
        let mut c = chain(3);
        c.remove(0);
        assert_eq!(broken_at(&c, &h, None), 1);
    }

    #[test]
    fn inserted_record_is_detected() {
        // A duplicate sequence number.
        let mut c = chain(10);
        let h = head(&c);
        let mut dup = c[5].clone();
        dup.row_id = 99;
        c.insert(6, dup);
        assert_eq!(broken_at(&c, &h, None), 6);
        // A well-formed record linked after 5, later ones renumbered: 7 no longer links.
        let mut c = chain(10);
        let forged_event = event(77);
        let forged = ChainRecord {
            row_id: 77,
            seq: 6,
            prev_hash: c[4].hash.clone(),
            hash: record_hash(&c[4].hash, &forged_event, 6, None).to_vec(),
            event: Ok(AuditEvent {
                personal: Personal::default(),
                ..forged_event
            }),
            personal_commitment: None,
            personal_salt: None,
            stored_detail: None,
        };
        for r in &mut c[5..] {
            r.seq += 1;
        }
        c.insert(5, forged);
        assert_eq!(broken_at(&c, &h, None), 7);
        // Appended past the stored head.
        let c = chain(11);
        assert_eq!(broken_at(&c, &h, None), 11);
        // A record at seq 0.
        let mut c = chain(3);
        let mut zero = c[0].clone();
        zero.seq = 0;
        c.insert(0, zero);
        assert_eq!(broken_at(&c, &head(&chain(3)), None), 0);
    }

    #[test]
    fn reordering_is_detected() {
        let mut c = chain(10);
        let h = head(&c);
        c.swap(2, 3);
        let (a, b) = (c[2].seq, c[3].seq);
        c[2].seq = b;
        c[3].seq = a;
        assert_eq!(broken_at(&c, &h, None), 3);
    }

    #[test]
    fn truncated_tail_is_detected() {
        let c = chain(10);
        let h = head(&c);
        // Naive: the stored head still says 10.
        assert_eq!(broken_at(&c[..7], &h, None), 8);
        // Careful: the head rewritten too; only the checkpoint tells.
        let short = &c[..7];
        assert!(verify(short, Some(&head(short)), None).is_ok());
        assert_eq!(broken_at(short, &head(short), Some(h.clone())), 8);
        let cp9 = Checkpoint {
            seq: 9,
            hash: c[8].hash.clone(),
        };
        assert_eq!(broken_at(short, &head(short), Some(cp9)), 8);
        // Everything deleted, head row too.
        assert_eq!(verify(&[], None, Some(h)).unwrap_err().seq, 1);
        // Head row deleted, records kept.
        assert_eq!(verify(&c, None, None).unwrap_err().seq, 10);
    }

    #[test]
    fn rewritten_history_is_detected_by_a_checkpoint() {
        let mut c = chain(10);
        let cp = Checkpoint {
            seq: 6,
            hash: c[5].hash.clone(),
        };
        c[2].event.as_mut().unwrap().outcome = Outcome::Failure;
        rehash(&mut c);
        let h = head(&c);
        assert!(
            verify(&c, Some(&h), None).is_ok(),
            "undetectable without a witness"
        );
        let b = verify(&c, Some(&h), Some(cp)).unwrap_err();
        assert_eq!(b.seq, 6);
        assert!(b.reason.contains("checkpoint"), "{b}");
    }

    #[test]
    fn personal_data_is_committed_and_erasable() {
        let c = chain(5);
        let h = head(&c);
        // Changed personal data is detected while its salt exists.
        let mut changed = c.clone();
        changed[1].event.as_mut().unwrap().personal.ip = Some("198.51.100.9".into());
        let b = verify(&changed, Some(&h), None).unwrap_err();
        assert_eq!(b.seq, 2);
        assert!(b.reason.contains("personal data"), "{b}");
        // Erasure (salt and data deleted) keeps the chain valid.
        let mut erased = c.clone();
        for r in &mut erased[1..3] {
            r.personal_salt = None;
            r.event.as_mut().unwrap().personal = Personal::default();
        }
        assert!(verify(&erased, Some(&h), None).is_ok());
        // Data without its salt is not an erasure.
        let mut orphan = c.clone();
        orphan[3].personal_salt = None;
        assert_eq!(broken_at(&orphan, &h, None), 4);
        // The commitment depends on salt and on every personal field.
        let p = event(1).personal;
        let base = personal_commitment(&[1; 32], &p).unwrap();
        assert_ne!(personal_commitment(&[2; 32], &p).unwrap(), base);
        for f in [
            |p: &mut Personal| p.ip = None,
            |p: &mut Personal| p.user_agent = Some("ub".into()),
            |p: &mut Personal| p.username = Some("alice".into()),
            |p: &mut Personal| p.email = Some("a@example.com".into()),
        ] {
            let mut q = p.clone();
            f(&mut q);
            assert_ne!(personal_commitment(&[1; 32], &q).unwrap(), base);
        }
        assert_eq!(personal_commitment(&[1; 32], &Personal::default()), None);
    }

    #[test]
    fn stored_detail_text_is_hashed_as_is_or_parsed() {
        let c = chain(3);
        let h = head(&c);
        // As the store hands it over: the detail as text, the event's own left empty.
        let with_text = |c: &[ChainRecord], text: &dyn Fn(&AuditEvent) -> String| {
            c.iter()
                .map(|r| {
                    let mut r = r.clone();
                    let e = r.event.as_mut().unwrap();
                    r.stored_detail = Some(text(e));
                    e.detail = serde_json::Value::Null;
                    r
                })
                .collect::<Vec<_>>()
        };
        let canonical_text = |e: &AuditEvent| {
            let mut s = String::new();
            canonical_json(&e.detail, &mut s);
            s
        };
        assert!(verify(&with_text(&c, &canonical_text), Some(&h), None).is_ok());
        // Another spelling of the same JSON (older records) is parsed and still verifies.
        let pretty = |e: &AuditEvent| serde_json::to_string_pretty(&e.detail).unwrap();
        assert!(verify(&with_text(&c, &pretty), Some(&h), None).is_ok());
        // A changed detail does not, nor does text that is not JSON.
        let mut changed = with_text(&c, &canonical_text);
        changed[1].stored_detail = Some(r#"{"exp":300,"jti":"j2","scope":"admin"}"#.into());
        assert_eq!(broken_at(&changed, &h, None), 2);
        let mut garbled = with_text(&c, &canonical_text);
        garbled[2].stored_detail = Some("{not json".into());
        let b = verify(&garbled, Some(&h), None).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.reason.contains("cannot be decoded: detail"), "{b}");
    }
}
