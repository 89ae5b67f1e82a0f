//! Persistence for the ledger: sqlx on MariaDB (Galera in production) or SQLite, and
//! object storage for server keys.
//!
//! Queries are written once in the SQL both engines accept and run through sqlx's `Any`
//! driver; the schema lives in `migrations/mysql` and `migrations/sqlite`.

mod accounts;
mod blobs;
mod db;
mod decisions;
mod error;
mod jobs;
mod tenants;

pub use accounts::{AccountRow, BalanceWrite};
pub use blobs::KeyBlobStore;
pub use db::{Backend, Db};
pub use decisions::DecisionRecord;
pub use error::StoreError;
pub use jobs::{CommitOutcome, JobCommit, JobRow, JobState, NewJob, SubmitOutcome};
pub use tenants::TenantRow;

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
