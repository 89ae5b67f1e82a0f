//! The controller's storage: plain sqlx queries written once in the SQL both MariaDB and
//! SQLite accept (upserts use `REPLACE INTO`, which both understand), over a
//! [`blindledger_store::Db`]: the same pools, Galera failover, error classification and
//! whole-transaction retries as every other service.
//!
//! The schema is the controller's migration set (`migrations/controller/`), applied with
//! the others by [`blindledger_store::Db::migrate`]. The controller writes only its own
//! `controller_*` tables (and its gate's decisions); it reads the decision log and what the
//! ledger and the audit service publish to it (`ledger_job_feed`, `audit_*_feed`), and
//! publishes what the audit service reads (`controller_*_feed`).

mod admin;
mod alerts;
mod bundles;
mod risk;
mod scan;
mod score_history;

use std::time::Duration;

use blindledger_store::{Db, PoolSettings, StoreError};
use sqlx::AnyPool;

pub use admin::{OfficerOrders, PendingRollback, StoredOrder, StoredOrders};
pub use alerts::{NewAlert, PendingAlert};
pub use bundles::{ActivationRow, BundleRow, PushReportRow};
pub use risk::{EntityRiskRow, ModelRecord, TierChangeRow};
pub use score_history::SCORE_HISTORY_RETENTION_MS;

use blindledger_store::sql::{optional_text, placeholders, text};

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
    db: Db,
}

impl Repo {
    /// Connects to `url`, after applying the shared migrations when `migrate` is set, with
    /// at most `max_connections` (at least 4) connections per server. A Galera host list
    /// (`mysql://u:p@db1,db2,db3/blindledger`) fails over between its nodes as the
    /// ledger's connection does.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        migrate: bool,
    ) -> Result<Repo, StoreError> {
        let settings = PoolSettings {
            slow_statement: Some(SLOW_STATEMENT),
            ..PoolSettings::new(max_connections.max(MIN_CONNECTIONS))
        };
        let db = Db::connect_with(url, &settings).await?;
        if migrate {
            db.migrate().await?;
        }
        Ok(Repo { db })
    }

    /// The connection pool of the node statements go to now, for tests and tools that
    /// seed or inspect tables.
    pub fn pool(&self) -> &AnyPool {
        self.db.pool()
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
