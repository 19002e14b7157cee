//! Shared Signals transmitter storage: streams, the per-tenant audit cursor and the outbox.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::ssf::SsfStore;
use mandate_core::ssf::store::{Backlog, ClaimedSet, QueuedSet};
use mandate_core::ssf::stream::{Delivery, Stream, StreamStatus};
use mandate_core::store::StoreResult;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{col, corrupt, json_list, list};

const STREAM_COLUMNS: &str = "tenant_id, id, client_id, aud, events_requested, method, \
     endpoint_url, authorization_header, description, status, status_reason, start_seq, \
     created_at, updated_at, excluded_subjects";

fn stream(row: &AnyRow) -> Result<Stream, StoreError> {
    let method: String = col(row, "method")?;
    let delivery = match method.as_str() {
        "push" => Delivery::Push {
            endpoint_url: col::<Option<String>>(row, "endpoint_url")?
                .ok_or_else(|| corrupt("endpoint_url", "missing for push"))?,
            authorization_header: col(row, "authorization_header")?,
        },
        "poll" => Delivery::Poll,
        other => return Err(corrupt("method", other)),
    };
    let status: String = col(row, "status")?;
    Ok(Stream {
        tenant_id: col(row, "tenant_id")?,
        id: col(row, "id")?,
        client_id: col(row, "client_id")?,
        aud: list(row, "aud")?,
        events_requested: list(row, "events_requested")?,
        delivery,
        description: col(row, "description")?,
        status: StreamStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        status_reason: col(row, "status_reason")?,
        start_seq: col(row, "start_seq")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
        excluded_subjects: serde_json::from_str(&col::<String>(row, "excluded_subjects")?)
            .map_err(|e| corrupt("excluded_subjects", &e.to_string()))?,
    })
}

/// The stored form of a delivery: method name, endpoint, authorization header.
fn delivery_parts(d: &Delivery) -> (&'static str, Option<&str>, Option<&str>) {
    match d {
        Delivery::Push {
            endpoint_url,
            authorization_header,
        } => ("push", Some(endpoint_url), authorization_header.as_deref()),
        Delivery::Poll => ("poll", None, None),
    }
}

/// The stored form of a stream's excluded subjects.
fn excluded(s: &Stream) -> Result<String, StoreError> {
    serde_json::to_string(&s.excluded_subjects).map_err(|e| StoreError::Backend(e.to_string()))
}

fn queued(row: &AnyRow) -> Result<QueuedSet, StoreError> {
    Ok(QueuedSet {
        tenant_id: col(row, "tenant_id")?,
        stream_id: col(row, "stream_id")?,
        jti: col(row, "jti")?,
        set: col(row, "set_jwt")?,
        created_at: col(row, "created_at")?,
    })
}

#[async_trait]
impl SsfStore for SqlStore {
    fn signals(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.ssf_wake.clone()
    }

    async fn create_stream(&self, s: &Stream) -> StoreResult<()> {
        let (method, url, auth) = delivery_parts(&s.delivery);
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(&format!(
            "INSERT INTO ssf_streams ({STREAM_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&s.tenant_id)
        .bind(&s.id)
        .bind(&s.client_id)
        .bind(json_list(s.aud.iter().map(String::as_str)))
        .bind(json_list(s.events_requested.iter().map(String::as_str)))
        .bind(method)
        .bind(url)
        .bind(auth)
        .bind(s.description.as_deref())
        .bind(s.status.as_str())
        .bind(s.status_reason.as_deref())
        .bind(s.start_seq)
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(excluded(s)?)
        .execute(&mut *tx)
        .await
        .map_err(on_insert("stream"))?;
        sqlx::query(
            "INSERT INTO ssf_cursors (tenant_id, seq) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(&s.tenant_id)
        .bind(s.start_seq)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn stream(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Stream>> {
        sqlx::query(&format!(
            "SELECT {STREAM_COLUMNS} FROM ssf_streams WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(stream)
        .transpose()
    }

    async fn streams(&self, tenant_id: &str) -> StoreResult<Vec<Stream>> {
        sqlx::query(&format!(
            "SELECT {STREAM_COLUMNS} FROM ssf_streams WHERE tenant_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(stream)
        .collect()
    }

    async fn update_stream(&self, s: &Stream) -> StoreResult<bool> {
        let (method, url, auth) = delivery_parts(&s.delivery);
        let done = sqlx::query(
            "UPDATE ssf_streams SET aud = $3, events_requested = $4, method = $5, \
             endpoint_url = $6, authorization_header = $7, description = $8, status = $9, \
             status_reason = $10, updated_at = $11, excluded_subjects = $12 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&s.tenant_id)
        .bind(&s.id)
        .bind(json_list(s.aud.iter().map(String::as_str)))
        .bind(json_list(s.events_requested.iter().map(String::as_str)))
        .bind(method)
        .bind(url)
        .bind(auth)
        .bind(s.description.as_deref())
        .bind(s.status.as_str())
        .bind(s.status_reason.as_deref())
        .bind(s.updated_at)
        .bind(excluded(s)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_stream(&self, tenant_id: &str, id: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM ssf_outbox WHERE tenant_id = $1 AND stream_id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query("DELETE FROM ssf_streams WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn ssf_backlog(&self) -> StoreResult<Vec<Backlog>> {
        let rows = sqlx::query(
            "SELECT c.tenant_id, t.name, c.seq AS cursor_seq, h.seq AS head_seq \
             FROM ssf_cursors c JOIN audit_heads h ON h.tenant_id = c.tenant_id \
             JOIN tenants t ON t.id = c.tenant_id WHERE h.seq > c.seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Backlog {
                    tenant_id: col(r, "tenant_id")?,
                    tenant_name: col(r, "name")?,
                    cursor: col(r, "cursor_seq")?,
                    head: col(r, "head_seq")?,
                })
            })
            .collect()
    }

    async fn ssf_enqueue(
        &self,
        tenant_id: &str,
        cursor: Option<(i64, i64)>,
        sets: &[QueuedSet],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let Some((from, to)) = cursor {
            let moved =
                sqlx::query("UPDATE ssf_cursors SET seq = $2 WHERE tenant_id = $1 AND seq = $3")
                    .bind(tenant_id)
                    .bind(to)
                    .bind(from)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            if moved.rows_affected() == 0 {
                tx.rollback().await.map_err(backend)?;
                return Ok(false);
            }
        }
        for s in sets {
            sqlx::query(
                "INSERT INTO ssf_outbox (tenant_id, stream_id, jti, set_jwt, attempts, \
                 next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $5)",
            )
            .bind(&s.tenant_id)
            .bind(&s.stream_id)
            .bind(&s.jti)
            .bind(&s.set)
            .bind(s.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn ssf_claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedSet>> {
        // The outer `next_attempt_at <= $2` makes a row that another node claimed meanwhile
        // drop out (PostgreSQL re-checks it on the locked row).
        let rows = sqlx::query(&format!(
            "UPDATE ssf_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE next_attempt_at <= $2 AND id IN (SELECT o.id FROM ssf_outbox o \
             JOIN ssf_streams s ON s.tenant_id = o.tenant_id AND s.id = o.stream_id \
             WHERE s.method = 'push' AND s.status = 'enabled' AND o.next_attempt_at <= $2 \
             ORDER BY o.id LIMIT {limit}) \
             RETURNING id, tenant_id, stream_id, jti, set_jwt, attempts"
        ))
        .bind(lease_until)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut targets: std::collections::HashMap<(String, String), Option<Stream>> =
            std::collections::HashMap::new();
        for r in &rows {
            let tenant_id: String = col(r, "tenant_id")?;
            let stream_id: String = col(r, "stream_id")?;
            let key = (tenant_id.clone(), stream_id.clone());
            if !targets.contains_key(&key) {
                let s = self.stream(&tenant_id, &stream_id).await?;
                targets.insert(key.clone(), s);
            }
            let Some(Some(Stream {
                delivery:
                    Delivery::Push {
                        endpoint_url,
                        authorization_header,
                    },
                ..
            })) = targets.get(&key)
            else {
                continue;
            };
            out.push(ClaimedSet {
                id: col(r, "id")?,
                tenant_id,
                stream_id,
                jti: col(r, "jti")?,
                set: col(r, "set_jwt")?,
                attempts: col(r, "attempts")?,
                endpoint_url: endpoint_url.clone(),
                authorization_header: authorization_header.clone(),
            });
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    async fn ssf_delivered(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM ssf_outbox WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn ssf_retry(&self, id: i64, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE ssf_outbox SET next_attempt_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn ssf_queued(
        &self,
        tenant_id: &str,
        stream_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<QueuedSet>> {
        sqlx::query(&format!(
            "SELECT tenant_id, stream_id, jti, set_jwt, created_at FROM ssf_outbox \
             WHERE tenant_id = $1 AND stream_id = $2 ORDER BY id LIMIT {limit}"
        ))
        .bind(tenant_id)
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(queued)
        .collect()
    }

    async fn ssf_ack(&self, tenant_id: &str, stream_id: &str, jtis: &[String]) -> StoreResult<u64> {
        let mut total = 0;
        for chunk in jtis.chunks(200) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "DELETE FROM ssf_outbox WHERE tenant_id = $1 AND stream_id = $2 \
                 AND jti IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(tenant_id).bind(stream_id);
            for j in chunk {
                q = q.bind(j);
            }
            total += q
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
        }
        Ok(total)
    }
}
