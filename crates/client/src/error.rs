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
    Fhe(#[from] blindledger_fhe::WireError),
    /// The ledger sent a response this client does not understand (a missing field or an
    /// unknown enum value).
    #[error("unexpected response from the ledger: {0}")]
    Protocol(String),
    /// The public key the ledger returned for a tenant is not the one the caller holds or
    /// pinned: amounts are not encrypted to it.
    #[error(
        "the ledger's key for tenant '{tenant}' ({found}) is not the one this client holds or \
         pinned ({expected}); refusing to use it"
    )]
    KeyMismatch {
        /// The tenant.
        tenant: String,
        /// The fingerprint or key id the caller trusts.
        expected: String,
        /// What the ledger returned.
        found: String,
    },
    /// A plaintext (`http://`) connection to a host other than this one was asked for
    /// without saying so explicitly.
    #[error(
        "refusing plaintext http to {0}: use https with a CA certificate, or allow plaintext \
         explicitly"
    )]
    PlaintextRefused(String),
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
        Self::Status(connection_lost_is_unavailable(status))
    }
}

/// A call whose connection broke before the ledger answered is `UNAVAILABLE`, as gRPC's
/// status codes define it ("some data transmitted before the connection breaks"), and so
/// callers retry it. tonic reports it as `CANCELLED` when the call was still queued on the
/// connection (a code gRPC reserves for a call the caller cancelled, which this client
/// never does: a dropped call returns nothing at all) or as `UNKNOWN` when the connection
/// failed under it, depending on which happened first. It happens whenever the ledger
/// closes the connection under a call: a TLS handshake it refused (no client certificate,
/// or one from another CA, which TLS 1.3 reports only after the client has sent its first
/// request), a restart, a proxy's idle timeout. A status the ledger itself sent carries no
/// transport error and is kept.
fn connection_lost_is_unavailable(status: tonic::Status) -> tonic::Status {
    let from_transport = std::error::Error::source(&status)
        .is_some_and(|source| source.is::<tonic::transport::Error>());
    let lost = matches!(status.code(), tonic::Code::Cancelled | tonic::Code::Unknown);
    if !lost || !from_transport {
        return status;
    }
    let message = format!(
        "the connection closed before the ledger answered ({})",
        status.message()
    );
    let mut unavailable = tonic::Status::unavailable(message);
    if let Some(source) = std::error::Error::source(&status) {
        unavailable.set_source(std::sync::Arc::new(LostConnection(source.to_string())));
    }
    unavailable
}

/// The transport error behind a lost connection, kept as text: tonic's error type cannot
/// be cloned out of the status that holds it.
#[derive(Debug)]
struct LostConnection(String);

impl fmt::Display for LostConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LostConnection {}

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

/// At most 100 characters of `text`, for echoing what a peer or a caller sent.
pub(crate) fn bounded(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_status_from_the_ledger_is_kept() {
        let err = ClientError::from(tonic::Status::cancelled("the ledger is stopping"));
        assert_eq!(err.status().map(|s| s.code()), Some(tonic::Code::Cancelled));
    }

    #[test]
    fn status_displays_code_and_message() {
        let err = ClientError::from(tonic::Status::not_found("tenant acme not found"));
        assert_eq!(err.to_string(), "NotFound: tenant acme not found");
        assert_eq!(err.status().map(|s| s.code()), Some(tonic::Code::NotFound));
    }
}
