//! The client's error type.

use std::fmt;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The ledger answered with a gRPC error; the status is kept whole so that callers can
    /// match on [`tonic::Status::code`].
    #[error("{}", DisplayStatus(.0))]
    Status(tonic::Status),
    /// The endpoint is invalid or the ledger could not be reached.
    #[error("cannot reach the ledger")]
    Transport(#[from] tonic::transport::Error),
    /// Encrypting, or decoding a key or ciphertext, failed.
    #[error(transparent)]
    Fhe(#[from] blindledger_fhe::client::ClientError),
    /// The ledger sent a response this client does not understand (a missing field or an
    /// unknown enum value).
    #[error("unexpected response from the ledger: {0}")]
    Protocol(String),
    /// The access token cannot be sent as a header (it is not printable ASCII).
    #[error("the access token is not a valid header value")]
    InvalidToken,
}

impl ClientError {
    /// Returns the gRPC status when the ledger answered with an error.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Status(status) => Some(status),
            _ => None,
        }
    }
}

// A manual impl rather than `#[from]`: `#[from]` would also make the status the error's
// source, and error reporters would then print its message twice.
impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl From<blindledger_fhe::WireError> for ClientError {
    fn from(err: blindledger_fhe::WireError) -> Self {
        Self::Fhe(err.into())
    }
}

/// Formats a status as `Code: message`, plus the transport cause when there is one.
struct DisplayStatus<'a>(&'a tonic::Status);

impl fmt::Display for DisplayStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.0;
        write!(f, "{:?}", status.code())?;
        if !status.message().is_empty() {
            write!(f, ": {}", status.message())?;
        }
        if let Some(source) = std::error::Error::source(status) {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_displays_code_and_message() {
        let err = ClientError::from(tonic::Status::not_found("tenant acme not found"));
        assert_eq!(err.to_string(), "NotFound: tenant acme not found");
        assert_eq!(err.status().map(|s| s.code()), Some(tonic::Code::NotFound));
    }
}
