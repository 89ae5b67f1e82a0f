//! The ledger's error type and its one translation to a gRPC status.
//!
//! Messages are safe to show to callers: they name the problem but never contain an
//! amount, a balance, a key or a ciphertext. Internal causes are logged once, here.

use blindledger_fhe::ops::OpError;
use blindledger_fhe::WireError;
use blindledger_store::StoreError;
use tonic::{Code, Status};

/// Everything a ledger operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The request is malformed or inconsistent.
    #[error("{0}")]
    InvalidArgument(String),
    /// A named tenant, account or job does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The entity exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The system is not in a state that allows the request (e.g. no keys registered).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A request exceeds a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A tenant uses all it may at once (open jobs, job watches); retry later.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The database or object store is unreachable; retry later.
    #[error("storage unavailable, retry later")]
    Unavailable(#[source] StoreError),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl LedgerError {
    /// Maps a storage error, naming `what` when it is a missing row.
    pub fn store(what: impl Into<String>) -> impl FnOnce(StoreError) -> Self {
        let what = what.into();
        move |err| match err {
            StoreError::NotFound => Self::NotFound(what),
            other => Self::from(other),
        }
    }
}

impl From<StoreError> for LedgerError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => Self::Unavailable(err),
            StoreError::NotFound => Self::NotFound("record".into()),
            StoreError::Pruned(why) => Self::FailedPrecondition(why.into()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<WireError> for LedgerError {
    fn from(err: WireError) -> Self {
        Self::InvalidArgument(err.to_string())
    }
}

impl From<OpError> for LedgerError {
    fn from(err: OpError) -> Self {
        Self::Internal(err.into())
    }
}

impl From<LedgerError> for Status {
    /// The status with its `google.rpc` details: an `ErrorInfo` reason per kind of error
    /// (`INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`,
    /// `TOO_LARGE`, `QUOTA_EXCEEDED`, `STORAGE_UNAVAILABLE`, `INTERNAL`), a `RetryInfo` on
    /// the ones to retry (see [`blindledger_gate::status`]).
    fn from(err: LedgerError) -> Self {
        let (code, reason) = match &err {
            LedgerError::InvalidArgument(_) => (Code::InvalidArgument, "INVALID_ARGUMENT"),
            LedgerError::NotFound(_) => (Code::NotFound, "NOT_FOUND"),
            LedgerError::AlreadyExists(_) => (Code::AlreadyExists, "ALREADY_EXISTS"),
            LedgerError::FailedPrecondition(_) => (Code::FailedPrecondition, "FAILED_PRECONDITION"),
            LedgerError::TooLarge(_) => (Code::ResourceExhausted, "TOO_LARGE"),
            LedgerError::QuotaExceeded(_) => (Code::ResourceExhausted, "QUOTA_EXCEEDED"),
            LedgerError::Unavailable(cause) => {
                tracing::warn!(error = %cause, cause = ?std::error::Error::source(cause), "storage unavailable");
                (Code::Unavailable, "STORAGE_UNAVAILABLE")
            }
            LedgerError::Internal(cause) => {
                tracing::error!(error = %format_args!("{cause:#}"), "internal error");
                (Code::Internal, "INTERNAL")
            }
        };
        let mut details = blindledger_gate::status::Details::reason(reason);
        // A request too large is not made smaller by waiting.
        if matches!(err, LedgerError::TooLarge(_)) {
            details = details.never_retry();
        }
        details.status(code, err.to_string())
    }
}
