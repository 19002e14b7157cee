//! Opening a store: URL handling, per-connection settings and migrations. This is the only
//! place that distinguishes SQLite from PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use mandate_core::StoreError;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::audit::writer::{AuditWriter, ChainDb};
use crate::error::backend;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Settings applied to every SQLite connection. Automatic checkpoints are pushed far out
/// (a safety net only): they run inside the committing writer and stall it, so a background
/// task checkpoints instead (see [`spawn_checkpointer`]). No memory map (`mmap_size = 0`, the
/// default, stated): with writes going on, every checkpoint grows the file and each connection
/// then unmaps and maps it again; the unmapping interrupts every core (TLB shootdown), which
/// cost the non-hashing work of a login a quarter of its speed and AuthZEN evaluations about 10%
/// (docs/benchmarks.md).
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                              PRAGMA wal_autocheckpoint = 20000; PRAGMA mmap_size = 0;";

/// Checkpoint the WAL ten times a second, in small steps, off the request path (PASSIVE: never blocks writers).
fn spawn_checkpointer(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "WAL checkpoint failed");
            }
        }
    });
}

/// The database behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (`sqlite:` URL).
    Sqlite,
    /// A PostgreSQL server (`postgres:` or `postgresql:` URL).
    Postgres,
}

/// Mandate's storage over a SQLite or PostgreSQL connection pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    pub(crate) audit: AuditWriter,
    /// PostgreSQL only: a native pool for reading the audit chain to verify it, in binary
    /// rows. Through `pool` the records would come as text, or as JSON that the server is
    /// slow to build.
    pub(crate) chain_reads: Option<PgPool>,
    /// Woken after this process records an audit event that is a Shared Signals event.
    pub(crate) ssf_wake: Arc<tokio::sync::Notify>,
}

impl SqlStore {
    /// Connect to `sqlite:///abs/path.db`, `sqlite://rel.db` or `postgres://…` and run the
    /// migrations. A missing SQLite file is created. A PostgreSQL URL may carry
    /// `schema=NAME`: that schema is created if missing and used for everything.
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        install_default_drivers();
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => connect_sqlite(&with_create_mode(url)).await,
            "postgres" | "postgresql" => connect_postgres(url).await,
            _ => Err(StoreError::Backend(format!(
                "unsupported database URL scheme `{scheme}` (expected sqlite or postgres)"
            ))),
        }
    }

    /// Open (or create) the SQLite database `mandate.db` inside `dir`, creating `dir` if missing.
    pub async fn open_dir(dir: &Path) -> Result<SqlStore, StoreError> {
        let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", dir.display()));
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let file = std::path::absolute(dir.join(crate::SQLITE_FILE)).map_err(io)?;
        let url = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .to_url_lossy();
        Self::connect(url.as_str()).await
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close every pooled connection, waiting for the ones in use.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(reads) = &self.chain_reads {
            reads.close().await;
        }
    }
}

async fn connect_sqlite(url: &str) -> Result<SqlStore, StoreError> {
    // An embedded SQLite connection cannot go stale: skip sqlx's ping round trip to the
    // connection's worker thread before every query.
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) })
        })
        .connect(url)
        .await
        .map_err(backend)?;
    migrate(&SQLITE_MIGRATIONS, &pool).await?;
    spawn_checkpointer(pool.clone());
    Ok(SqlStore {
        audit: AuditWriter::spawn(ChainDb::Sqlite(pool.clone())),
        chain_reads: None,
        pool,
        backend: Backend::Sqlite,
        ssf_wake: Arc::default(),
    })
}

async fn connect_postgres(url: &str) -> Result<SqlStore, StoreError> {
    let (url, schema) = split_schema(url)?;
    let mut options = AnyPoolOptions::new().max_connections(10);
    // The audit writer's own native pool (array parameters, which the `Any` driver cannot
    // bind). It writes one batch at a time; the second connection is a spare.
    let mut audit_options = PgPoolOptions::new().max_connections(2);
    // Verification reads a few pages at once (connected only when first used).
    let mut read_options = PgPoolOptions::new().max_connections(4);
    if let Some(schema) = schema {
        create_schema(&url, &schema).await?;
        let set_path: Arc<str> = format!("SET search_path TO \"{schema}\"").into();
        let audit_path = set_path.clone();
        options = options.after_connect(move |conn, _| {
            let set_path = set_path.clone();
            Box::pin(async move { conn.execute(&*set_path).await.map(|_| ()) })
        });
        audit_options = native_search_path(audit_options, audit_path.clone());
        read_options = native_search_path(read_options, audit_path);
    }
    let pool = options.connect(&url).await.map_err(backend)?;
    migrate(&POSTGRES_MIGRATIONS, &pool).await?;
    let audit = audit_options.connect_lazy(&url).map_err(backend)?;
    let chain_reads = read_options.connect_lazy(&url).map_err(backend)?;
    Ok(SqlStore {
        audit: AuditWriter::spawn(ChainDb::Postgres(audit)),
        chain_reads: Some(chain_reads),
        pool,
        backend: Backend::Postgres,
        ssf_wake: Arc::default(),
    })
}

/// `options` with every new connection's search path set by `set_path`.
fn native_search_path(options: PgPoolOptions, set_path: Arc<str>) -> PgPoolOptions {
    options.after_connect(move |conn, _| {
        let set_path = set_path.clone();
        Box::pin(async move { conn.execute(&*set_path).await.map(|_| ()) })
    })
}

async fn migrate(migrator: &Migrator, pool: &AnyPool) -> Result<(), StoreError> {
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
}

/// `CREATE SCHEMA IF NOT EXISTS` can still race with a concurrent creator; that is fine.
async fn create_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    let mut conn = AnyConnection::connect(url).await.map_err(backend)?;
    let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
    let result = conn.execute(sql.as_str()).await;
    let _ = conn.close().await;
    match result {
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(()),
        other => other.map(|_| ()).map_err(backend),
    }
}

/// Ask SQLite to create the file unless the URL already says how to open it.
fn with_create_mode(url: &str) -> String {
    match url.split_once('?') {
        Some((_, query)) if query.split('&').any(|p| p.starts_with("mode=")) => url.to_string(),
        Some(_) => format!("{url}&mode=rwc"),
        None => format!("{url}?mode=rwc"),
    }
}

/// Remove the `schema=NAME` query parameter from a PostgreSQL URL and check the name.
fn split_schema(url: &str) -> Result<(String, Option<String>), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None));
    };
    let mut schema = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some(name) => schema = Some(name.to_string()),
            None => rest.push(pair),
        }
    }
    if let Some(name) = schema.as_deref().filter(|n| !valid_schema_name(n)) {
        return Err(StoreError::Backend(format!(
            "invalid schema name `{name}` (letters, digits and _ only)"
        )));
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, schema))
}

fn valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_stripped_and_checked() {
        let (url, schema) = split_schema("postgres://h/db?schema=t_1&sslmode=disable").unwrap();
        assert_eq!(url, "postgres://h/db?sslmode=disable");
        assert_eq!(schema.as_deref(), Some("t_1"));
        let (url, schema) = split_schema("postgres://h/db?schema=abc").unwrap();
        assert_eq!(
            (url.as_str(), schema.as_deref()),
            ("postgres://h/db", Some("abc"))
        );
        assert_eq!(split_schema("postgres://h/db").unwrap().1, None);
        assert!(split_schema("postgres://h/db?schema=a\"b").is_err());
        assert!(split_schema("postgres://h/db?schema=").is_err());
        assert!(split_schema("postgres://h/db?schema=1a").is_err());
    }

    #[test]
    fn sqlite_files_are_created() {
        assert_eq!(with_create_mode("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            with_create_mode("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
    }
}
