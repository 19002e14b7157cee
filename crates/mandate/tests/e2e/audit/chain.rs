//! The audit hash chain end to end: a running server (and CLI processes) append token and admin
//! events; then, for each kind of tampering done directly in the database, `mandate audit
//! verify` fails and names the first bad record. On SQLite and PostgreSQL.

use crate::common::*;
use mandate_core::audit::chain::{Checkpoint, record_hash};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Principal, RequestMeta};
use serde_json::{Value, json};
use sqlx::{AnyPool, Row};

/// Tokens requested by each scenario; with tenant_created and client_created the log then
/// holds 2 + TOKENS records.
const TOKENS: usize = 6;
const RECORDS: i64 = 2 + TOKENS as i64;

/// A server whose default tenant has a chain of `RECORDS` records; returns it with the
/// tenant's id.
async fn server_with_log(backend: Backend) -> (Server, String) {
    let s = Server::start(backend).await;
    let svc = s.create_service_client("default");
    let issuer = s.issuer("default");
    for _ in 0..TOKENS {
        let (status, body) = token(&issuer, &svc, &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, 200, "{body}");
    }
    let tenants = s.cli(&["tenant", "list"], None);
    let id = tenants
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, err) = verify(&s, &[]);
    assert!(ok, "an untouched log verifies: {err}");
    assert!(
        out.starts_with(&format!("ok: {RECORDS} records, head {RECORDS} ")),
        "{out}"
    );
    (s, id)
}

/// `mandate audit verify --tenant default …`: (exit ok, stdout, stderr).
fn verify(s: &Server, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["audit", "verify", "--tenant", "default"];
    args.extend_from_slice(extra);
    s.cli_raw(&args, None)
}

/// Verification fails with one line naming record `seq`.
fn assert_broken_at(s: &Server, extra: &[&str], seq: i64) -> String {
    let (ok, out, err) = verify(s, extra);
    assert!(!ok, "tampering must be detected: {out}");
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "{err}");
    assert!(
        line.starts_with(&format!("error: record {seq}: ")),
        "expected record {seq}: {line}"
    );
    line.to_string()
}

async fn exec(db: &AnyPool, sql: &str, tenant: &str) {
    sqlx::query(sql).bind(tenant).execute(db).await.unwrap();
}

async fn hash_at(db: &AnyPool, tenant: &str, seq: i64) -> Vec<u8> {
    sqlx::query("SELECT hash FROM audit_events WHERE tenant_id = $1 AND seq = $2")
        .bind(tenant)
        .bind(seq)
        .fetch_one(db)
        .await
        .unwrap()
        .get("hash")
}

async fn changed_field(backend: Backend) {
    let (mut s, tenant) = server_with_log(backend).await;
    s.kill();
    let db = s.db().await;
    exec(
        &db,
        "UPDATE audit_events SET client_id = 'mallory' WHERE tenant_id = $1 AND seq = 5",
        &tenant,
    )
    .await;
    let line = assert_broken_at(&s, &[], 5);
    assert!(line.contains("record changed"), "{line}");
    // The JSON form says the same.
    let (ok, out, _) = s.cli_raw(&["--json", "audit", "verify", "--tenant", "default"], None);
    assert!(!ok);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["seq"].clone()),
        (json!(false), json!(5))
    );
}

async fn deleted_record(backend: Backend) {
    let (mut s, tenant) = server_with_log(backend).await;
    s.kill();
    let db = s.db().await;
    exec(
        &db,
        "DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 4",
        &tenant,
    )
    .await;
    let line = assert_broken_at(&s, &[], 4);
    assert!(line.contains("missing"), "{line}");
}

/// A well-formed record (correct hash, linked to record 3) slipped in as record 4, the later
/// ones renumbered and the head moved: the old record 4, now 5, no longer links.
async fn inserted_record(backend: Backend) {
    let (mut s, tenant) = server_with_log(backend).await;
    s.kill();
    let db = s.db().await;
    // Two steps so that UNIQUE (tenant_id, seq) holds after every row.
    exec(
        &db,
        "UPDATE audit_events SET seq = seq + 1000000 WHERE tenant_id = $1 AND seq > 3",
        &tenant,
    )
    .await;
    exec(
        &db,
        "UPDATE audit_events SET seq = seq - 999999 WHERE tenant_id = $1 AND seq > 1000000",
        &tenant,
    )
    .await;
    exec(
        &db,
        "UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = $1",
        &tenant,
    )
    .await;
    let prev = hash_at(&db, &tenant, 3).await;
    let forged = AuditEvent::new(
        &tenant,
        EventKind::TokenIssued,
        Outcome::Success,
        Principal::Client {
            id: "mallory".into(),
        },
        &RequestMeta::default(),
    )
    .client("mallory")
    .detail(json!({"scope": "api.write"}));
    assert!(forged.personal.is_empty(), "no personal data to commit to");
    let hash = record_hash(&prev, &forged, 4, None).to_vec();
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
         act_chain, client_id, request_id, detail, prev_hash, hash) \
         VALUES ($1, 4, $2, 'token_issued', 'success', 'client', 'mallory', '[]', 'mallory', \
         NULL, $3, $4, $5)",
    )
    .bind(&tenant)
    .bind(forged.time)
    .bind(forged.detail.to_string())
    .bind(prev)
    .bind(hash)
    .execute(&db)
    .await
    .unwrap();
    let line = assert_broken_at(&s, &[], 5);
    assert!(line.contains("prev_hash"), "{line}");
}

async fn swapped_records(backend: Backend) {
    let (mut s, tenant) = server_with_log(backend).await;
    s.kill();
    let db = s.db().await;
    for sql in [
        "UPDATE audit_events SET seq = -5 WHERE tenant_id = $1 AND seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE tenant_id = $1 AND seq = 6",
        "UPDATE audit_events SET seq = 6 WHERE tenant_id = $1 AND seq = -5",
    ] {
        exec(&db, sql, &tenant).await;
    }
    assert_broken_at(&s, &[], 5);
}

async fn truncated_tail(backend: Backend) {
    let (mut s, tenant) = server_with_log(backend).await;
    let out = s.cli(&["audit", "checkpoint", "--tenant", "default"], None);
    assert_eq!(out["seq"], RECORDS);
    let checkpoint = out["checkpoint"].as_str().unwrap().to_string();
    let parsed: Checkpoint = checkpoint.parse().unwrap();
    assert_eq!(parsed.seq, RECORDS);
    // The text form is the same SEQ:HASH.
    let (ok, text, _) = s.cli_raw(&["audit", "checkpoint", "--tenant", "default"], None);
    assert!(ok);
    assert_eq!(text.trim(), checkpoint);
    assert!(verify(&s, &["--checkpoint", &checkpoint]).0);
    s.kill();

    let db = s.db().await;
    exec(
        &db,
        "DELETE FROM audit_events WHERE tenant_id = $1 AND seq > 6",
        &tenant,
    )
    .await;
    // Naively: the stored head still points further.
    let line = assert_broken_at(&s, &[], 7);
    assert!(line.contains("truncated"), "{line}");
    // Carefully, moving the head back too: only the checkpoint tells.
    let hash6 = hash_at(&db, &tenant, 6).await;
    sqlx::query("UPDATE audit_heads SET seq = 6, hash = $1 WHERE tenant_id = $2")
        .bind(hash6)
        .bind(&tenant)
        .execute(&db)
        .await
        .unwrap();
    let (ok, out, err) = verify(&s, &[]);
    assert!(
        ok && out.starts_with("ok: 6 records, head 6 "),
        "{out}{err}"
    );
    let line = assert_broken_at(&s, &["--checkpoint", &checkpoint], 7);
    assert!(line.contains("checkpoint"), "{line}");
    // A malformed checkpoint is a usage error, not a verdict.
    let (ok, _, err) = verify(&s, &["--checkpoint", "8:abc"]);
    assert!(!ok && err.contains("invalid checkpoint"), "{err}");
}

both_backends!(
    changed_field,
    deleted_record,
    inserted_record,
    swapped_records,
    truncated_tail,
);

/// A second copy of record 4 under the same number, which takes dropping the unique
/// constraint first (PostgreSQL; SQLite cannot drop a table's UNIQUE): whichever copy is read
/// first, record 4 is reported, as a duplicate of the copy before it.
#[tokio::test]
async fn duplicated_record_postgres() {
    let (mut s, tenant) = server_with_log(Backend::Postgres).await;
    s.kill();
    let db = s.db().await;
    sqlx::query("ALTER TABLE audit_events DROP CONSTRAINT audit_events_tenant_id_seq_key")
        .execute(&db)
        .await
        .unwrap();
    exec(
        &db,
        "INSERT INTO audit_events (tenant_id, seq, time, kind, outcome, actor_type, actor_id, \
         subject_type, subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
         personal_commitment, prev_hash, hash, salt, data_subject, ip, user_agent, username, \
         email) SELECT tenant_id, seq, time, kind, outcome, actor_type, actor_id, subject_type, \
         subject_id, act_chain, client_id, mandate_id, request_id, reason, detail, \
         personal_commitment, prev_hash, hash, salt, data_subject, ip, user_agent, username, \
         email FROM audit_events WHERE tenant_id = $1 AND seq = 4",
        &tenant,
    )
    .await;
    let line = assert_broken_at(&s, &[], 4);
    assert!(line.contains("record inserted"), "{line}");
}
