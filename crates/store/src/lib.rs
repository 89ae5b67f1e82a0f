//! Persistence: sqlx on MariaDB (Galera in production) or SQLite, and object storage for
//! server keys.
//!
//! Every service opens its database through [`Db`] (pools, Galera failover, error
//! classification into [`StoreError`]) and runs its write transactions through
//! [`retry_transaction`]; the ledger's repository is the rest of this crate, the
//! controller's and the audit trail's live in their own crates on top of it.
//!
//! Queries are written once in the SQL both engines accept and run through sqlx's `Any`
//! driver; the schema lives in `migrations/<owner>/{mysql,sqlite}`, one set per owner
//! ([`MigrationSet`]). On a Galera
//! cluster, statements go to one node at a time and move to another when it fails
//! (`cluster`); transactions that lose a certification race are retried whole (`retry`).

mod accounts;
mod blobs;
mod cluster;
mod db;
mod decisions;
mod error;
pub mod grants;
mod jobs;
mod migrations;
mod retry;
mod revisions;
pub mod sql;
mod tenants;
mod totals;
mod url;

pub use accounts::{AccountRow, BalanceWrite, WindowWrite};
pub use blobs::{open_object_store, KeyBlobStore};
pub use db::{node_urls, Backend, Db, PoolSettings};
pub use decisions::DecisionRecord;
pub use error::StoreError;
pub use jobs::{CommitOutcome, JobCommit, JobRow, JobState, NewJob, SubmitOutcome};
pub use migrations::MigrationSet;
pub use retry::{retry_transaction, Retryable};
pub use tenants::TenantRow;
pub use totals::TotalRow;
pub use url::{sqlite_dir, sqlite_file};

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
