//! Migration 0011 moves each audit record's personal data from `audit_personal` into the
//! record's row. A log written under migration 0010 (personal data in its own table) must come
//! through it with every record, its personal data and a chain that still verifies, on both
//! backends (`MANDATE_TEST_POSTGRES` overrides `postgres://postgres@127.0.0.1:5432/test`).

use std::path::Path;

use mandate_core::audit::chain::{self, GENESIS, verify_stored};
use mandate_core::audit::{AuditEvent, EventKind, Outcome, Personal, Principal};
use mandate_core::store::AuditLog;
use mandate_store::SqlStore;
use serde_json::json;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

/// The last migration before personal data moved.
const BEFORE: i64 = 10;

fn event(n: i64, personal: Personal) -> AuditEvent {
    AuditEvent {
        time: 1_800_000_000 + n,
        tenant_id: "t1".into(),
        kind: EventKind::LoginSucceeded,
        outcome: Outcome::Success,
        reason: None,
        actor: Principal::User { id: "u1".into() },
        subject: Some(Principal::User { id: "u1".into() }),
        act_chain: vec![],
        client_id: Some("web".into()),
        mandate_id: None,
        request_id: Some(format!("r{n}")),
        detail: json!({"n": n}),
        personal,
    }
}

/// Bring `pool` to migration [`BEFORE`], then write `events` as that schema held them.
async fn old_log(pool: &AnyPool, dir: &str, events: &[AuditEvent]) {
    let all = Migrator::new(Path::new(&format!(
        "{}/migrations/{dir}",
        env!("CARGO_MANIFEST_DIR")
    )))
    .await
    .unwrap();
    let mut old = Migrator::new(Path::new(&format!(
        "{}/migrations/{dir}",
        env!("CARGO_MANIFEST_DIR")
    )))
    .await
    .unwrap();
    old.migrations = all
        .migrations
        .iter()
        .filter(|m| m.version <= BEFORE)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    old.run(pool).await.unwrap();
    let mut prev = GENESIS.to_vec();
    for (i, e) in events.iter().enumerate() {
        let seq = i as i64 + 1;
        let sealed = chain::seal(&prev, e, seq);
        let (actor_type, actor_id) = e.actor.parts();
        let (subject_type, subject_id) = e.subject.as_ref().unwrap().parts();
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, seq, time, kind, outcome, actor_type, \
             actor_id, subject_type, subject_id, act_chain, client_id, mandate_id, request_id, \
             reason, detail, personal_commitment, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '[]', $10, NULL, $11, NULL, $12, $13, \
             $14, $15)",
        )
        .bind(&e.tenant_id)
        .bind(seq)
        .bind(e.time)
        .bind(e.kind.as_str())
        .bind(e.outcome.as_str())
        .bind(actor_type)
        .bind(actor_id)
        .bind(subject_type)
        .bind(subject_id)
        .bind(e.client_id.as_deref())
        .bind(e.request_id.as_deref())
        // As the writer stored it then: not the canonical form.
        .bind(serde_json::to_string_pretty(&e.detail).unwrap())
        .bind(sealed.personal.map(|(_, c)| c.to_vec()))
        .bind(prev.clone())
        .bind(sealed.hash.to_vec())
        .execute(pool)
        .await
        .unwrap();
        if let Some((salt, _)) = sealed.personal {
            sqlx::query(
                "INSERT INTO audit_personal (tenant_id, seq, salt, data_subject, ip, \
                 user_agent, username, email) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&e.tenant_id)
            .bind(seq)
            .bind(salt.to_vec())
            .bind(e.data_subject())
            .bind(e.personal.ip.as_deref())
            .bind(e.personal.user_agent.as_deref())
            .bind(e.personal.username.as_deref())
            .bind(e.personal.email.as_deref())
            .execute(pool)
            .await
            .unwrap();
        }
        prev = sealed.hash.to_vec();
    }
    sqlx::query("INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ('t1', $1, $2)")
        .bind(events.len() as i64)
        .bind(prev)
        .execute(pool)
        .await
        .unwrap();
}

/// Write an old log at `url` (through `pool`), open the store there (which migrates), and check.
async fn check(pool: AnyPool, dir: &str, url: &str) {
    let events = vec![
        event(
            1,
            Personal {
                ip: Some("192.0.2.7".into()),
                user_agent: Some("ua/1".into()),
                username: Some("ada".into()),
                email: Some("ada@example.com".into()),
            },
        ),
        event(2, Personal::default()),
        event(
            3,
            Personal {
                ip: Some("192.0.2.8".into()),
                ..Personal::default()
            },
        ),
    ];
    old_log(&pool, dir, &events).await;
    pool.close().await;

    let store = SqlStore::connect(url).await.unwrap();
    let report = verify_stored(&store, "t1", None, 2).await.unwrap().unwrap();
    assert_eq!(report.records, 3);
    let back = store
        .audit_chain("t1", (i64::MIN, i64::MIN), 10)
        .await
        .unwrap();
    for (r, e) in back.iter().zip(&events) {
        assert_eq!(r.full_event().unwrap(), *e, "record {}", r.seq);
        assert_eq!(r.personal_salt.is_some(), !e.personal.is_empty());
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_log_keeps_its_personal_data() {
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(format!("mandate-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("mandate.db").display());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    check(pool, "sqlite", &url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_log_keeps_its_personal_data() {
    sqlx::any::install_default_drivers();
    let base = std::env::var("MANDATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("mandate_migration_{}", std::process::id());
    let set_path = format!("SET search_path TO \"{schema}\"");
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap();
    admin
        .execute(format!("CREATE SCHEMA \"{schema}\"").as_str())
        .await
        .unwrap();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            let set_path = set_path.clone();
            Box::pin(async move { conn.execute(set_path.as_str()).await.map(|_| ()) })
        })
        .connect(&base)
        .await
        .unwrap();
    check(pool, "postgres", &format!("{base}?schema={schema}")).await;
    admin
        .execute(format!("DROP SCHEMA \"{schema}\" CASCADE").as_str())
        .await
        .unwrap();
}
