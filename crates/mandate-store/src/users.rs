//! User accounts.

use async_trait::async_trait;
use mandate_core::domain::model::User;
use mandate_core::store::{StoreResult, UserStore};

use crate::connect::SqlStore;
use crate::error::{backend, on_insert};
use crate::rows::{self, flag};

macro_rules! select_user {
    ($rest:literal) => {
        concat!(
            "SELECT tenant_id, id, username, email, email_verified, name, password_hash, \
             created_at, updated_at FROM users WHERE tenant_id = $1 AND ",
            $rest
        )
    };
}

impl SqlStore {
    async fn one_user(
        &self,
        sql: &'static str,
        tenant_id: &str,
        key: &str,
    ) -> StoreResult<Option<User>> {
        sqlx::query(sql)
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(rows::user)
            .transpose()
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (tenant_id, id, username, email, email_verified, name, \
             password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&u.tenant_id)
        .bind(&u.id)
        .bind(&u.username)
        .bind(u.email.as_deref())
        .bind(flag(u.email_verified))
        .bind(u.name.as_deref())
        .bind(u.password_hash.as_deref())
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await
        .map_err(on_insert("user"))?;
        Ok(())
    }

    async fn user_by_username(&self, tenant_id: &str, username: &str) -> StoreResult<Option<User>> {
        self.one_user(select_user!("username = $2"), tenant_id, username)
            .await
    }

    async fn user(&self, tenant_id: &str, id: &str) -> StoreResult<Option<User>> {
        self.one_user(select_user!("id = $2"), tenant_id, id).await
    }

    async fn set_password_hash(
        &self,
        tenant_id: &str,
        user_id: &str,
        hash: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .bind(hash)
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn users_by_email(&self, tenant_id: &str, email: &str) -> StoreResult<Vec<User>> {
        sqlx::query(concat!(
            select_user!("email = $2"),
            " ORDER BY created_at, id LIMIT 2"
        ))
        .bind(tenant_id)
        .bind(email)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(rows::user)
        .collect()
    }

    async fn set_email_verified(
        &self,
        tenant_id: &str,
        user_id: &str,
        email: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET email_verified = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4 AND email = $5",
        )
        .bind(flag(true))
        .bind(now)
        .bind(tenant_id)
        .bind(user_id)
        .bind(email)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn erase_user(&self, tenant_id: &str, user: &User, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let by_user = [
            "UPDATE grants SET revoked_at = $3 \
             WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
            "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM auth_codes WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM consents WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM passkeys WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM webauthn_ceremonies WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM totp_credentials WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM account_tokens WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM risk_sign_ins WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM risk_failures WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM risk_agent_requests WHERE tenant_id = $1 AND user_id = $2",
        ];
        for sql in by_user {
            let q = sqlx::query(sql).bind(tenant_id).bind(&user.id);
            let q = if sql.contains("$3") { q.bind(now) } else { q };
            q.execute(&mut *tx).await.map_err(backend)?;
        }
        sqlx::query(
            // A record's data subject is its subject or its actor: the first condition (the
            // second implies it) lets the database find the records by those indexes.
            "UPDATE audit_events SET salt = NULL, data_subject = NULL, ip = NULL, \
             user_agent = NULL, username = NULL, email = NULL WHERE tenant_id = $1 \
             AND (subject_id = $2 OR actor_id = $2 OR username = $3 OR email = $4) \
             AND (data_subject = $2 OR username = $3 OR email = $4)",
        )
        .bind(tenant_id)
        .bind(&user.id)
        .bind(&user.username)
        .bind(user.email.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let gone = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(gone.rows_affected() > 0)
    }
}
