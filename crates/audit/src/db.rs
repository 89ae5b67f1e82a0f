//! The audit trail's handle on the database: a [`Db`] (pools, Galera failover and error
//! classification, shared with every service), write transactions that serialise appends,
//! and whole-transaction retries through [`blindledger_store::retry_transaction`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use blindledger_store::{node_urls, sqlite_file, Db, PoolSettings};
use sqlx::any::AnyRow;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::error::{AuditError, Result};
use crate::event::StoredEvent;

/// Which engine the audit tables live in.
pub use blindledger_store::Backend as Engine;

/// How long an audit statement waits for a pooled connection.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The audit trail in its database: appends, checkpoints, verification and reads all go
/// through this handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: Db,
    /// Native connections for verification, which reads the whole chain.
    reader: ChainReader,
}

impl AuditLog {
    /// Connects to `url` (`sqlite://…`, `mysql://…`, or a Galera host list
    /// `mysql://u:p@db1,db2,db3/blindledger`, whose nodes take over from one another as
    /// the ledger's do), applying the migrations first when `migrate` is set.
    pub async fn connect(url: &str, max_connections: u32, migrate: bool) -> Result<Self> {
        let settings = PoolSettings {
            acquire_timeout: ACQUIRE_TIMEOUT,
            ..PoolSettings::new(max_connections)
        };
        let db = Db::connect_with(url, &settings).await?;
        if migrate {
            db.migrate().await?;
        }
        Self::from_db(db, url)
    }

    /// An audit log over an open database; `url` is the one `db` was opened with (the
    /// verification reader opens its own connections to the same servers).
    pub fn from_db(db: Db, url: &str) -> Result<Self> {
        let reader = ChainReader::connect_lazy(url, &db)?;
        Ok(Self { db, reader })
    }

    /// The connection pool of the node statements go to now, for read queries. Take it
    /// again for each query: after a failover it is another node's.
    pub fn pool(&self) -> &AnyPool {
        self.db.pool()
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The verification reader.
    pub(crate) fn reader(&self) -> &ChainReader {
        &self.reader
    }

    /// The engine behind the pool.
    pub fn engine(&self) -> Engine {
        self.db.backend()
    }

    /// Begins a write transaction. SQLite takes its write lock at once (`BEGIN IMMEDIATE`),
    /// so a transaction never fails half-way on a lock upgrade.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.db.begin_write().await?)
    }

    /// `FOR UPDATE` on MySQL (row lock until commit); nothing on SQLite, whose write
    /// transaction already excludes every other writer.
    pub(crate) fn for_update(&self) -> &'static str {
        self.db.for_update()
    }

    /// Refreshes the query planner's statistics of the audit tables, so it picks the most
    /// selective index for combined filters. SQLite has none until analysed, and its
    /// sampled analysis is too coarse to tell a principal from an outcome, so the analysis
    /// is complete: about 2 s per million rows. InnoDB samples.
    pub async fn refresh_statistics(&self) -> Result<()> {
        let statements: &[&str] = match self.engine() {
            Engine::Sqlite => &["PRAGMA analysis_limit = 0", "ANALYZE audit_events"],
            Engine::MySql => &["ANALYZE TABLE audit_events"],
        };
        let mut conn = self.pool().acquire().await?;
        for statement in statements {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.db.close().await;
        self.reader.close().await;
    }
}

/// Connections verification reads the chain on at once (pages in parallel).
pub(crate) const PARALLEL_PAGES: usize = 4;

/// Where verification reads the chain from.
#[derive(Debug, Clone)]
pub(crate) enum ChainReader {
    /// A pool of native connections per server, opened on first use; pages are read from
    /// the node the database handle writes to now.
    MySql { pools: Arc<[MySqlPool]>, db: Db },
    /// The database file, opened read-only for each page on a blocking thread; `None` for
    /// an in-memory database, which no other connection can see.
    Sqlite(Option<Arc<Path>>),
}

impl ChainReader {
    /// A reader of the database at `url`, which `db` was opened with; connects only when
    /// verification first reads.
    pub(crate) fn connect_lazy(url: &str, db: &Db) -> Result<Self> {
        Ok(match db.backend() {
            Engine::MySql => {
                let pools = node_urls(url)?
                    .iter()
                    .map(|url| {
                        MySqlPoolOptions::new()
                            .max_connections(PARALLEL_PAGES as u32)
                            .acquire_timeout(Duration::from_secs(10))
                            .connect_lazy(url)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                ChainReader::MySql {
                    pools: pools.into(),
                    db: db.clone(),
                }
            }
            Engine::Sqlite => ChainReader::Sqlite(sqlite_file(url).map(Arc::from)),
        })
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        if let ChainReader::MySql { pools, .. } = self {
            for pool in pools.iter() {
                pool.close().await;
            }
        }
    }
}

/// Runs an audit write transaction through [`blindledger_store::retry_transaction`]: again,
/// whole, after a lost race.
pub(crate) async fn retry<T, F, Fut>(name: &'static str, transaction: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    blindledger_store::retry_transaction(name, transaction).await
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

/// Reads a text column (see [`blindledger_store::sql::text`]); one that is not UTF-8 is
/// corrupt audit data.
pub(crate) fn text(row: &AnyRow, index: usize) -> Result<String> {
    blindledger_store::sql::text(row, index).map_err(not_utf8)
}

/// Reads a nullable text column.
pub(crate) fn opt_text(row: &AnyRow, index: usize) -> Result<Option<String>> {
    blindledger_store::sql::optional_text(row, index).map_err(not_utf8)
}

fn not_utf8(err: sqlx::Error) -> AuditError {
    match err {
        sqlx::Error::Decode(_) => AuditError::Corrupt("a text column is not UTF-8".into()),
        other => other.into(),
    }
}

pub(crate) use blindledger_store::sql::placeholders;
