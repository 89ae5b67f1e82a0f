//! The audit trail's handle on the database: a pool over the shared schema, write
//! transactions that serialise appends, and whole-transaction retries.

use std::future::Future;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::error::{AuditError, Result};
use crate::event::StoredEvent;
use crate::verify::ChainReader;

/// Attempts of a write transaction, the first included.
const ATTEMPTS: u32 = 8;
/// Wait before the first retry; doubled each time, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Which engine the audit tables live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// MariaDB or MySQL.
    MySql,
    /// SQLite.
    Sqlite,
}

/// The audit trail in its database: appends, checkpoints, verification and reads all go
/// through this handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    pool: AnyPool,
    engine: Engine,
    /// Native connections for verification, which reads the whole chain.
    reader: ChainReader,
}

impl AuditLog {
    /// Connects to `url` (`sqlite://…` or `mysql://…`, one server), applying the shared
    /// migrations first when `migrate` is set.
    pub async fn connect(url: &str, max_connections: u32, migrate: bool) -> Result<Self> {
        sqlx::any::install_default_drivers();
        if migrate {
            let db = blindledger_store::Db::connect(url, 1).await?;
            db.migrate().await?;
            db.close().await;
        }
        let url = url.replacen("mariadb:", "mysql:", 1);
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            Engine::MySql
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets the dashboard read while one writer appends; the busy
                        // timeout turns write contention into waiting.
                        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 10000"] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let reader = ChainReader::connect_lazy(&url, engine)?;
        Ok(Self {
            pool,
            engine,
            reader,
        })
    }

    /// The connection pool, for read queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The verification reader.
    pub(crate) fn reader(&self) -> &ChainReader {
        &self.reader
    }

    /// The engine behind the pool.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Begins a write transaction. SQLite takes its write lock at once (`BEGIN IMMEDIATE`),
    /// so a transaction never fails half-way on a lock upgrade.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Engine::MySql => self.pool.begin().await?,
        })
    }

    /// `FOR UPDATE` on MySQL (row lock until commit); nothing on SQLite, whose write
    /// transaction already excludes every other writer.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.engine {
            Engine::MySql => " FOR UPDATE",
            Engine::Sqlite => "",
        }
    }

    /// Refreshes the query planner's statistics of the audit tables, so it picks the most
    /// selective index for combined filters. SQLite has none until analysed, and its
    /// sampled analysis is too coarse to tell a principal from an outcome, so the analysis
    /// is complete: about 2 s per million rows. InnoDB samples.
    pub async fn refresh_statistics(&self) -> Result<()> {
        let statements: &[&str] = match self.engine {
            Engine::Sqlite => &["PRAGMA analysis_limit = 0", "ANALYZE audit_events"],
            Engine::MySql => &["ANALYZE TABLE audit_events"],
        };
        let mut conn = self.pool.acquire().await?;
        for statement in statements {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
        self.reader.close().await;
    }
}

/// Runs `transaction` again, whole, after a lost race (MySQL 1213/1205/1020, SQLite busy),
/// up to [`ATTEMPTS`] times.
pub(crate) async fn retry<T, F, Fut>(name: &'static str, mut transaction: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(err) if err.is_retryable() && attempt < ATTEMPTS => {
                metrics::counter!("blindledger_audit_retries_total", "transaction" => name)
                    .increment(1);
                tracing::debug!(
                    transaction = name,
                    attempt,
                    "audit transaction conflict, retrying"
                );
                let jitter = rand::random_range(0..=backoff.as_millis() as u64);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Decodes a row of the eight chain columns, in table order.
pub(crate) fn stored_event(row: &AnyRow) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: row.try_get(0)?,
        kind: text(row, 1)?,
        occurred_at: row.try_get(2)?,
        principal: text(row, 3)?,
        subject: text(row, 4)?,
        summary: text(row, 5)?,
        prev_hash: text(row, 6)?,
        hash: text(row, 7)?,
    })
}

/// Reads a text column; MariaDB may report text as bytes to the `Any` driver.
pub(crate) fn text(row: &AnyRow, index: usize) -> Result<String> {
    if let Ok(text) = row.try_get::<String, _>(index) {
        return Ok(text);
    }
    let bytes: Vec<u8> = row.try_get(index)?;
    String::from_utf8(bytes).map_err(|_| AuditError::Corrupt("a text column is not UTF-8".into()))
}

/// Reads a nullable text column.
pub(crate) fn opt_text(row: &AnyRow, index: usize) -> Result<Option<String>> {
    if let Ok(text) = row.try_get::<Option<String>, _>(index) {
        return Ok(text);
    }
    let bytes: Option<Vec<u8>> = row.try_get(index)?;
    bytes
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| AuditError::Corrupt("a text column is not UTF-8".into()))
}

/// `(?, ?, …)` repeated `rows` times, for a multi-row insert of `columns` columns.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}
