//! Storage errors, classified once from the driver's error.

use sqlx::error::ErrorKind;
use sqlx::mysql::MySqlDatabaseError;

use crate::cluster::NODE_NOT_READY;

/// What went wrong in storage, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is not serving (connection refused or lost, pool
    /// timeout, Galera node outside the primary component).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A transaction lost a race (deadlock, certification conflict, lock wait timeout,
    /// busy SQLite file): retry the whole transaction.
    #[error("transaction conflict")]
    Conflict(#[source] sqlx::Error),
    /// A unique key already holds this value.
    #[error("duplicate key")]
    Duplicate(#[source] sqlx::Error),
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// The database user may not change the schema: a service's own user (see
    /// [`crate::grants`]) asked to run the migrations.
    #[error(
        "this database user may not migrate the schema: run the migrations as an administrator \
         (`blindledger db migrate`) and start the service with `migrate = false`"
    )]
    MigrationDenied(#[source] sqlx::Error),
    /// Anything else; a bug or a schema problem.
    #[error("database error")]
    Other(#[source] sqlx::Error),
    /// The rows asked for were pruned past their retention (`blindledger db prune`).
    #[error("{0}")]
    Pruned(&'static str),
    /// Object storage failed.
    #[error("object storage error")]
    Blob(#[source] object_store::Error),
}

impl StoreError {
    /// Whether retrying the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// Whether the caller may succeed by trying again later: the database is unreachable
    /// or not serving, or the transaction kept losing races. Adapters answer these with
    /// UNAVAILABLE (gRPC) or 503 (HTTP); every other storage error is a bug or a schema
    /// problem and answers INTERNAL / 500, so it is not mistaken for a blip.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict(_))
    }
}

/// MySQL/MariaDB error numbers the ledger acts on (see `shared` Galera notes and
/// the MariaDB error reference).
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_CHECKREAD: u16 = 1020;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_UNKNOWN_COM_ERROR: u16 = 1047;
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_CON_COUNT_ERROR: u16 = 1040;
const ER_QUERY_INTERRUPTED: u16 = 1317;
const ER_DBACCESS_DENIED: u16 = 1044;
const ER_TABLEACCESS_DENIED: u16 = 1142;

/// Whether MariaDB refused a statement because the user lacks a privilege on the database
/// or the table.
pub(crate) fn is_access_denied(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.try_downcast_ref::<MySqlDatabaseError>())
        .is_some_and(|e| matches!(e.number(), ER_DBACCESS_DENIED | ER_TABLEACCESS_DENIED))
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        classify(err)
    }
}

fn classify(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => return StoreError::NotFound,
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => return StoreError::Unavailable(err),
        sqlx::Error::Protocol(message) if message == NODE_NOT_READY => {
            return StoreError::Unavailable(err)
        }
        sqlx::Error::Database(_) => {}
        _ => return StoreError::Other(err),
    }
    let Some(db) = err.as_database_error() else {
        return StoreError::Other(err);
    };
    if let Some(mysql) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return match mysql.number() {
            ER_LOCK_DEADLOCK | ER_CHECKREAD | ER_LOCK_WAIT_TIMEOUT => StoreError::Conflict(err),
            ER_UNKNOWN_COM_ERROR | ER_SERVER_SHUTDOWN | ER_CON_COUNT_ERROR
            | ER_QUERY_INTERRUPTED => StoreError::Unavailable(err),
            _ if matches!(db.kind(), ErrorKind::UniqueViolation) => StoreError::Duplicate(err),
            _ => StoreError::Other(err),
        };
    }
    // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), possibly extended codes.
    let code = db
        .code()
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or_default();
    if matches!(code & 0xff, 5 | 6) {
        StoreError::Conflict(err)
    } else if matches!(db.kind(), ErrorKind::UniqueViolation) {
        StoreError::Duplicate(err)
    } else {
        StoreError::Other(err)
    }
}
