//! Fine-grained authorization data: model versions, tuples with a per-tenant revision and
//! their change log, and Cedar policy versions. A tuple batch locks the tenant's head row
//! (like the audit writer), checks every write is new and every delete exists, applies the
//! batch and appends its changes under the next revision, in one transaction. Model and policy
//! writes take the same lock and count on the head's `config_seq`, which also orders models.

use async_trait::async_trait;
use mandate_authz::{AuthzStore, StoredModel, StoredPolicy, StoredTuple, TupleChange};
use mandate_core::StoreError;
use mandate_core::store::StoreResult;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::col;

fn tuple(row: &AnyRow) -> Result<StoredTuple, StoreError> {
    Ok(StoredTuple {
        object: col(row, "object")?,
        relation: col(row, "relation")?,
        user: col(row, "subject")?,
        condition: col(row, "condition")?,
    })
}

fn model(row: &AnyRow) -> Result<StoredModel, StoreError> {
    let text: String = col(row, "model")?;
    Ok(StoredModel {
        id: col(row, "id")?,
        model: serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("authz model: {e}")))?,
        created_at: col(row, "created_at")?,
    })
}

/// Count a model or policy write on the tenant's head (locking it first); returns the new
/// sequence number, which orders models and tells nodes their snapshot's model is outdated.
async fn bump_config(tx: &mut Transaction<'static, Any>, tenant: &str) -> StoreResult<i64> {
    lock_head(tx, tenant).await?;
    let row = sqlx::query(
        "UPDATE authz_heads SET config_seq = config_seq + 1 WHERE tenant_id = $1 \
         RETURNING config_seq",
    )
    .bind(tenant)
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    row.try_get("config_seq").map_err(backend)
}

/// Lock the tenant's head row (creating it at 0) and return its revision.
async fn lock_head(tx: &mut Transaction<'static, Any>, tenant: &str) -> StoreResult<i64> {
    const LOCK: &str =
        "UPDATE authz_heads SET revision = revision WHERE tenant_id = $1 RETURNING revision";
    let mut row = sqlx::query(LOCK)
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    if row.is_none() {
        sqlx::query(
            "INSERT INTO authz_heads (tenant_id, revision) VALUES ($1, 0) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        row = sqlx::query(LOCK)
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await
            .map_err(backend)?;
    }
    let row = row.ok_or_else(|| StoreError::Backend("authz head vanished".into()))?;
    row.try_get("revision").map_err(backend)
}

fn key(t: &StoredTuple) -> String {
    format!("{}#{}@{}", t.object, t.relation, t.user)
}

#[async_trait]
impl AuthzStore for SqlStore {
    async fn put_model(&self, tenant_id: &str, m: &StoredModel) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let seq = bump_config(&mut tx, tenant_id).await?;
        sqlx::query(
            "INSERT INTO authz_models (tenant_id, id, model, created_at, seq) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant_id)
        .bind(&m.id)
        .bind(m.model.to_string())
        .bind(m.created_at)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(on_insert("authorization model"))?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn model(&self, tenant_id: &str, id: Option<&str>) -> StoreResult<Option<StoredModel>> {
        let q = match id {
            Some(id) => sqlx::query(
                "SELECT id, model, created_at FROM authz_models WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant_id)
            .bind(id.to_string()),
            None => sqlx::query(
                "SELECT id, model, created_at FROM authz_models WHERE tenant_id = $1 \
                 ORDER BY seq DESC, created_at DESC, id DESC LIMIT 1",
            )
            .bind(tenant_id),
        };
        q.fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(model)
            .transpose()
    }

    async fn list_models(&self, tenant_id: &str) -> StoreResult<Vec<StoredModel>> {
        sqlx::query(
            "SELECT id, model, created_at FROM authz_models WHERE tenant_id = $1 \
             ORDER BY seq DESC, created_at DESC, id DESC",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(model)
        .collect()
    }

    async fn write_tuples(
        &self,
        tenant_id: &str,
        writes: &[StoredTuple],
        deletes: &[StoredTuple],
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let revision = lock_head(&mut tx, tenant_id).await? + 1;
        let mut idx = 0i64;
        for t in deletes {
            let gone = sqlx::query(
                "DELETE FROM authz_tuples WHERE tenant_id = $1 AND object = $2 \
                 AND relation = $3 AND subject = $4",
            )
            .bind(tenant_id)
            .bind(&t.object)
            .bind(&t.relation)
            .bind(&t.user)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if gone.rows_affected() == 0 {
                return Err(StoreError::Missing(key(t)));
            }
            change(&mut tx, tenant_id, revision, idx, "delete", t).await?;
            idx += 1;
        }
        for t in writes {
            sqlx::query(
                "INSERT INTO authz_tuples (tenant_id, object, relation, subject, condition, \
                 revision) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(tenant_id)
            .bind(&t.object)
            .bind(&t.relation)
            .bind(&t.user)
            .bind(t.condition.as_deref())
            .bind(revision)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(key(t)),
                _ => backend(e),
            })?;
            change(&mut tx, tenant_id, revision, idx, "write", t).await?;
            idx += 1;
        }
        sqlx::query("UPDATE authz_heads SET revision = $1 WHERE tenant_id = $2")
            .bind(revision)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(revision)
    }

    async fn tuple_revision(&self, tenant_id: &str) -> StoreResult<i64> {
        let row = sqlx::query("SELECT revision FROM authz_heads WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => r.try_get("revision").map_err(backend),
            None => Ok(0),
        }
    }

    async fn authz_head(&self, tenant_id: &str) -> StoreResult<(i64, i64)> {
        let row = sqlx::query("SELECT revision, config_seq FROM authz_heads WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            Some(r) => Ok((
                r.try_get("revision").map_err(backend)?,
                r.try_get("config_seq").map_err(backend)?,
            )),
            None => Ok((0, 0)),
        }
    }

    async fn tuples_snapshot(&self, tenant_id: &str) -> StoreResult<(i64, Vec<StoredTuple>)> {
        // The revision first: tuples read after it reflect it at least.
        let revision = self.tuple_revision(tenant_id).await?;
        let tuples = sqlx::query(
            "SELECT object, relation, subject, condition FROM authz_tuples WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(tuple)
        .collect::<Result<_, _>>()?;
        Ok((revision, tuples))
    }

    async fn tuple_changes(
        &self,
        tenant_id: &str,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<TupleChange>> {
        sqlx::query(
            "SELECT revision, op, object, relation, subject, condition FROM authz_changes \
             WHERE tenant_id = $1 AND revision > $2 ORDER BY revision, idx LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            let op: String = col(r, "op")?;
            Ok(TupleChange {
                revision: col(r, "revision")?,
                delete: op == "delete",
                tuple: tuple(r)?,
            })
        })
        .collect()
    }

    async fn put_policy(
        &self,
        tenant_id: &str,
        policies: &str,
        schema: Option<&str>,
        now: i64,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        bump_config(&mut tx, tenant_id).await?;
        let row = sqlx::query(
            "INSERT INTO authz_policies (tenant_id, version, policies, schema_text, created_at) \
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4 FROM authz_policies \
             WHERE tenant_id = $5 RETURNING version",
        )
        .bind(tenant_id)
        .bind(policies)
        .bind(schema)
        .bind(now)
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(on_insert("policy version"))?;
        let version = row.try_get("version").map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(version)
    }

    async fn policy(&self, tenant_id: &str) -> StoreResult<Option<StoredPolicy>> {
        sqlx::query(
            "SELECT version, policies, schema_text, created_at FROM authz_policies \
             WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .map(|r| {
            Ok(StoredPolicy {
                version: col(&r, "version")?,
                policies: col(&r, "policies")?,
                schema: col(&r, "schema_text")?,
                created_at: col(&r, "created_at")?,
            })
        })
        .transpose()
    }
}

async fn change(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    revision: i64,
    idx: i64,
    op: &str,
    t: &StoredTuple,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authz_changes (tenant_id, revision, idx, op, object, relation, subject, \
         condition) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(revision)
    .bind(idx)
    .bind(op)
    .bind(&t.object)
    .bind(&t.relation)
    .bind(&t.user)
    .bind(t.condition.as_deref())
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}
