//! The controller's storage: plain sqlx queries over an `AnyPool`, written once in the SQL
//! both MariaDB and SQLite accept (upserts use `REPLACE INTO`, which both understand).
//!
//! The schema comes from the shared migrations (`migrations/*/0003_controller.sql` and
//! `0005_score_history.sql`), applied through [`blindledger_store::Db::migrate`] so the
//! controller and the ledger agree on one migration history. The controller reads the
//! ledger's `decision_log` and `jobs` tables and writes only its own `controller_*` tables,
//! apart from marking the admin actions it carries out (`admin_actions.applied_at`).

mod admin;
mod alerts;
mod bundles;
mod risk;
mod scan;
mod score_history;

use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, ConnectOptions, Row};

pub use admin::{OfficerOrders, PendingRollback, StoredOrder, StoredOrders};
pub use alerts::{NewAlert, PendingAlert};
pub use bundles::{ActivationRow, BundleRow, PushReportRow};
pub use risk::{EntityRiskRow, ModelRecord, TierChangeRow};
pub use score_history::SCORE_HISTORY_RETENTION_MS;

/// Fewest pooled connections: a cycle reads on three at once, and the API needs one.
const MIN_CONNECTIONS: u32 = 4;

/// Statements slower than this are logged as warnings. A cycle's scans read the window's
/// whole decision log and take seconds by design; sqlx's default (1 s) would warn on each.
const SLOW_STATEMENT: Duration = Duration::from_secs(60);

/// Rows per multi-row `INSERT`/`REPLACE`: well under SQLite's and MariaDB's limits on
/// bound parameters.
const BATCH_ROWS: usize = 500;

/// The controller's handle on the database.
#[derive(Debug, Clone)]
pub struct Repo {
    pool: AnyPool,
    sqlite: bool,
}

impl Repo {
    /// Connects to `url`, after applying the shared migrations when `migrate` is set, with
    /// at most `max_connections` (at least 4) connections.
    ///
    /// Takes one server (a Galera URL listing several nodes is not split here: point the
    /// controller at one node, or at a proxy in front of the cluster).
    pub async fn connect(url: &str, max_connections: u32, migrate: bool) -> anyhow::Result<Repo> {
        sqlx::any::install_default_drivers();
        if migrate {
            let db = blindledger_store::Db::connect(url, 1)
                .await
                .context("connecting to run migrations")?;
            db.migrate().await.context("running migrations")?;
            db.close().await;
        }
        let url = url.replacen("mariadb:", "mysql:", 1);
        let sqlite = url.starts_with("sqlite:");
        let options: AnyConnectOptions = url.parse().context("parsing the database url")?;
        let options = options.log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(MIN_CONNECTIONS))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // As the ledger does: WAL lets the controller read while the ledger
                        // writes; the busy timeout waits out short write contention.
                        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA busy_timeout = 10000"] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to the database")?;
        Ok(Repo { pool, sqlite })
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and writes later fails outright
    /// ("database is locked") when another connection committed in between, while one that
    /// asks for the lock up front waits for it (busy timeout).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
    }

    /// The connection pool, for tests and tools that seed or inspect tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `(?, ?, ...)` repeated `rows` times, for a multi-row statement of `columns` columns.
fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

/// Reads a text column. MariaDB reports `TEXT` columns as blobs to sqlx's `Any` driver, so
/// they are read as bytes there and checked to be UTF-8.
fn text(row: &AnyRow, index: usize) -> Result<String, sqlx::Error> {
    if let Ok(text) = row.try_get::<String, _>(index) {
        return Ok(text);
    }
    let bytes: Vec<u8> = row.try_get(index)?;
    String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A nullable text column, like [`text`].
fn optional_text(row: &AnyRow, index: usize) -> Result<Option<String>, sqlx::Error> {
    if let Ok(text) = row.try_get::<Option<String>, _>(index) {
        return Ok(text);
    }
    let bytes: Option<Vec<u8>> = row.try_get(index)?;
    bytes
        .map(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}
