//! Errors of the audit trail. Messages are safe to show: they never carry an amount, a key
//! or a summary's contents.

use blindledger_store::StoreError;

/// Everything an audit operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database failed; [`StoreError`] says whether a retry may help.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An event is not acceptable (too large, a forbidden field, bad JSON).
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
    /// A key could not be read or used.
    #[error("key error: {0}")]
    Key(String),
    /// The trail could not be read for verification (outside sqlx: SQLite's own errors).
    #[error("reading the audit trail: {0}")]
    Read(String),
    /// A stored row or checkpoint cannot be read (not a tampering finding: unreadable).
    #[error("corrupt audit data: {0}")]
    Corrupt(String),
    /// A batched append failed; the message is the batch's error.
    #[error("audit append failed: {0}")]
    AppendFailed(String),
    /// Writing an export failed.
    #[error("export failed")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for AuditError {
    fn from(err: sqlx::Error) -> Self {
        AuditError::Store(StoreError::from(err))
    }
}

impl AuditError {
    /// Whether the caller may succeed later (see [`StoreError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, AuditError::Store(err) if err.is_transient())
    }
}

impl blindledger_store::Retryable for AuditError {
    /// Whether running the whole transaction again may succeed (a lost race).
    fn is_retryable(&self) -> bool {
        matches!(self, AuditError::Store(err) if err.is_retryable())
    }
}

/// Shorthand for audit results.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;
