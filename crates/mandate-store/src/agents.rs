//! The agent registry and mandates.

use async_trait::async_trait;
use mandate_core::StoreError;
use mandate_core::domain::agents::{Agent, AgentStatus, Mandate, MandateOrigin};
use mandate_core::store::{AgentStore, ExchangeLookup, MandateSelector, MandateStore, StoreResult};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{col, corrupt, flag, json_list, list, scope};

const AGENT_COLUMNS: &str = "tenant_id, id, name, owner_user_id, provider, model, version, \
     scope_ceiling, require_dpop, status, created_at, updated_at, status_reason";

const MANDATE_COLUMNS: &str = "tenant_id, id, user_id, agent_id, scope, authorization_details, \
     resources, expires_at, max_token_lifetime, max_delegation_depth, approval_required, origin, \
     created_at, revoked_at, allow_refresh";

fn agent(row: &AnyRow) -> Result<Agent, StoreError> {
    let status: String = col(row, "status")?;
    Ok(Agent {
        tenant_id: col(row, "tenant_id")?,
        id: col(row, "id")?,
        name: col(row, "name")?,
        owner_user_id: col(row, "owner_user_id")?,
        provider: col(row, "provider")?,
        model: col(row, "model")?,
        version: col(row, "version")?,
        scope_ceiling: scope(row, "scope_ceiling")?,
        require_dpop: col::<i64>(row, "require_dpop")? != 0,
        status: AgentStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        status_reason: col(row, "status_reason")?,
        created_at: col(row, "created_at")?,
        updated_at: col(row, "updated_at")?,
    })
}

fn mandate(row: &AnyRow) -> Result<Mandate, StoreError> {
    let origin: String = col(row, "origin")?;
    let details: String = col(row, "authorization_details")?;
    let details: Value = serde_json::from_str(&details)
        .map_err(|e| StoreError::Corrupt(format!("authorization_details: {e}")))?;
    Ok(Mandate {
        tenant_id: col(row, "tenant_id")?,
        id: col(row, "id")?,
        user_id: col(row, "user_id")?,
        agent_id: col(row, "agent_id")?,
        scope: scope(row, "scope")?,
        authorization_details: details.as_array().cloned().unwrap_or_default(),
        resources: list(row, "resources")?,
        expires_at: col(row, "expires_at")?,
        max_token_lifetime: col(row, "max_token_lifetime")?,
        max_delegation_depth: u32::try_from(col::<i64>(row, "max_delegation_depth")?)
            .map_err(|_| corrupt("max_delegation_depth", "out of range"))?,
        approval_required: list(row, "approval_required")?,
        origin: MandateOrigin::parse(&origin).ok_or_else(|| corrupt("origin", &origin))?,
        created_at: col(row, "created_at")?,
        revoked_at: col(row, "revoked_at")?,
        allow_refresh: col::<i64>(row, "allow_refresh")? != 0,
    })
}

#[async_trait]
impl AgentStore for SqlStore {
    async fn create_agent(&self, a: &Agent) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO agents ({AGENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&a.tenant_id)
        .bind(&a.id)
        .bind(&a.name)
        .bind(a.owner_user_id.as_deref())
        .bind(a.provider.as_deref())
        .bind(a.model.as_deref())
        .bind(a.version.as_deref())
        .bind(a.scope_ceiling.to_string())
        .bind(flag(a.require_dpop))
        .bind(a.status.as_str())
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.status_reason.as_deref())
        .execute(&self.pool)
        .await
        .map_err(on_insert("agent"))?;
        Ok(())
    }

    async fn agent(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Agent>> {
        sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(agent)
        .transpose()
    }

    async fn list_agents(&self, tenant_id: &str) -> StoreResult<Vec<Agent>> {
        sqlx::query(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY created_at, id"
        ))
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(agent)
        .collect()
    }

    async fn set_agent_status(
        &self,
        tenant_id: &str,
        id: &str,
        status: AgentStatus,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let done = sqlx::query(
            "UPDATE agents SET status = $3, status_reason = NULL, updated_at = $4 \
             WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() > 0 && status != AgentStatus::Active {
            // What the agent holds as a client of its own (authorization code flow): its
            // grants, with their access and refresh tokens, end too (resuming does not
            // bring them back).
            sqlx::query(
                "UPDATE grants SET revoked_at = $3 \
                 WHERE tenant_id = $1 AND client_id = $2 AND revoked_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl MandateStore for SqlStore {
    async fn create_mandate(&self, m: &Mandate) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO mandates ({MANDATE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&m.tenant_id)
        .bind(&m.id)
        .bind(&m.user_id)
        .bind(&m.agent_id)
        .bind(m.scope.to_string())
        .bind(Value::from(m.authorization_details.clone()).to_string())
        .bind(json_list(m.resources.iter().map(String::as_str)))
        .bind(m.expires_at)
        .bind(m.max_token_lifetime)
        .bind(i64::from(m.max_delegation_depth))
        .bind(json_list(m.approval_required.iter().map(String::as_str)))
        .bind(m.origin.as_str())
        .bind(m.created_at)
        .bind(m.revoked_at)
        .bind(i64::from(m.allow_refresh))
        .execute(&self.pool)
        .await
        .map_err(on_insert("mandate"))?;
        Ok(())
    }

    async fn mandate(&self, tenant_id: &str, id: &str) -> StoreResult<Option<Mandate>> {
        sqlx::query(&format!(
            "SELECT {MANDATE_COLUMNS} FROM mandates WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(mandate)
        .transpose()
    }

    async fn user_mandates(&self, tenant_id: &str, user_id: &str) -> StoreResult<Vec<Mandate>> {
        sqlx::query(&format!(
            "SELECT {MANDATE_COLUMNS} FROM mandates WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY created_at DESC, id"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(mandate)
        .collect()
    }

    async fn revoke_mandates(
        &self,
        tenant_id: &str,
        which: MandateSelector<'_>,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let (column, key) = match which {
            MandateSelector::One(id) => ("id", id),
            MandateSelector::Agent(a) => ("agent_id", a),
            MandateSelector::User(u) => ("user_id", u),
        };
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let rows = sqlx::query(&format!(
            "UPDATE mandates SET revoked_at = $3 WHERE tenant_id = $1 AND {column} = $2 \
             AND revoked_at IS NULL RETURNING id"
        ))
        .bind(tenant_id)
        .bind(key)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>("id").map_err(backend))
            .collect::<StoreResult<Vec<String>>>()?;
        // A mandate given on the consent page came with the agent's own code-flow grant for
        // the person: it ends with the mandate (the grant does not name the mandate, so every
        // grant of that person to that agent ends).
        sqlx::query(&format!(
            "UPDATE grants SET revoked_at = $3 WHERE tenant_id = $1 AND revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM mandates m WHERE m.tenant_id = $1 AND m.{column} = $2 \
             AND m.revoked_at = $3 AND m.origin = 'consent' \
             AND m.user_id = grants.user_id AND m.agent_id = grants.client_id)"
        ))
        .bind(tenant_id)
        .bind(key)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ids)
    }

    async fn delegation_inactive(
        &self,
        tenant_id: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        if agents.is_empty() && mandate.is_none() {
            return Ok(false);
        }
        self.any_dead(tenant_id, None, agents, mandate, now).await
    }

    async fn access_token_inactive(
        &self,
        tenant_id: &str,
        jti: &str,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        self.any_dead(tenant_id, Some(jti), agents, mandate, now)
            .await
    }

    async fn exchange_context(
        &self,
        tenant_id: &str,
        q: ExchangeLookup<'_>,
        now: i64,
    ) -> StoreResult<(bool, Vec<Mandate>)> {
        let mut binds = Vec::new();
        let dead = dead_branches(&mut binds, Some(q.jti), q.agents, q.subject_mandate, now)
            .unwrap_or_else(|| "SELECT 1 AS dead WHERE 1 = 0".into());
        let filter = match q.subject_mandate {
            Some(m) => format!("m.id = {}", push(&mut binds, Bind::Text(m))),
            None => {
                let u = push(&mut binds, Bind::Text(q.user_id));
                let a = push(&mut binds, Bind::Text(q.agent_id));
                let t = push(&mut binds, Bind::Int(now));
                format!(
                    "m.user_id = {u} AND m.agent_id = {a} AND m.revoked_at IS NULL \
                     AND m.expires_at > {t} \
                     AND EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = $1 AND u.id = {u})"
                )
            }
        };
        let columns: Vec<String> = MANDATE_COLUMNS
            .split(',')
            .map(|c| format!("m.{}", c.trim()))
            .collect();
        let sql = format!(
            "SELECT CAST(CASE WHEN EXISTS ({dead}) THEN 1 ELSE 0 END AS BIGINT) AS dead_token, \
             {} FROM (SELECT 1 AS one) d LEFT JOIN mandates m ON m.tenant_id = $1 AND {filter} \
             ORDER BY m.created_at DESC, m.id",
            columns.join(", ")
        );
        let rows = bind_all(sqlx::query(&sql).bind(tenant_id), &binds)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let dead = match rows.first() {
            Some(r) => col::<i64>(r, "dead_token")? != 0,
            None => {
                return Err(StoreError::Backend(
                    "exchange lookup returned nothing".into(),
                ));
            }
        };
        let mut mandates = Vec::new();
        for r in &rows {
            if col::<Option<String>>(r, "id")?.is_some() {
                mandates.push(mandate(r)?);
            }
        }
        Ok((dead, mandates))
    }
}

/// A bound value of a query assembled piece by piece.
enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

/// Append a value and name its parameter (`$1` is always the tenant).
fn push<'a>(binds: &mut Vec<Bind<'a>>, b: Bind<'a>) -> String {
    binds.push(b);
    format!("${}", binds.len() + 1)
}

/// The `UNION ALL` of every reason a token can be dead (each branch a primary-key or indexed
/// lookup): the token revoked, or its grant; an agent of its chain not active; its mandate
/// revoked, expired or unknown. `$1` is the tenant; the other values are appended to `binds`
/// and numbered after what is there. `None` when there is nothing to ask.
fn dead_branches<'a>(
    binds: &mut Vec<Bind<'a>>,
    jti: Option<&'a str>,
    agents: &'a [String],
    mandate: Option<&'a str>,
    now: i64,
) -> Option<String> {
    let next = push;
    let mut branches = Vec::new();
    if let Some(j) = jti {
        let n = next(binds, Bind::Text(j));
        branches.push(format!(
            "SELECT 1 AS dead FROM revoked_access_tokens WHERE tenant_id = $1 AND jti = {n}"
        ));
        branches.push(format!(
            "SELECT 1 AS dead FROM access_tokens a JOIN grants g \
             ON g.tenant_id = a.tenant_id AND g.id = a.grant_id \
             WHERE a.tenant_id = $1 AND a.jti = {n} AND g.revoked_at IS NOT NULL"
        ));
    }
    if !agents.is_empty() {
        let list: Vec<String> = agents.iter().map(|a| next(binds, Bind::Text(a))).collect();
        branches.push(format!(
            "SELECT 1 AS dead FROM agents WHERE tenant_id = $1 AND id IN ({}) \
             AND status <> 'active'",
            list.join(", ")
        ));
    }
    if let Some(m) = mandate {
        let (m, t) = (next(binds, Bind::Text(m)), next(binds, Bind::Int(now)));
        branches.push(format!(
            "SELECT 1 AS dead FROM mandates WHERE tenant_id = $1 AND id = {m} \
             AND (revoked_at IS NOT NULL OR expires_at <= {t})"
        ));
        // A token naming a mandate that does not exist is dead too.
        branches.push(format!(
            "SELECT 1 AS dead WHERE NOT EXISTS (SELECT 1 FROM mandates \
             WHERE tenant_id = $1 AND id = {m})"
        ));
    }
    (!branches.is_empty()).then(|| branches.join(" UNION ALL "))
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &[Bind<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(*t),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

impl SqlStore {
    /// Is any reason for a token to be dead true ([`dead_branches`])? One query.
    pub(crate) async fn any_dead(
        &self,
        tenant_id: &str,
        jti: Option<&str>,
        agents: &[String],
        mandate: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut binds = Vec::new();
        let Some(branches) = dead_branches(&mut binds, jti, agents, mandate, now) else {
            return Ok(false);
        };
        let sql = format!("{branches} LIMIT 1");
        let q = bind_all(sqlx::query(&sql).bind(tenant_id), &binds);
        Ok(q.fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .is_some())
    }
}
