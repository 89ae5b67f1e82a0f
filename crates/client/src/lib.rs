//! A typed async client for the BlindLedger gRPC API.
//!
//! [`LedgerClient`] wraps the generated tonic client: it uploads tenant keys in chunks,
//! decodes and checks a tenant's public key, and follows jobs until they finish. Amounts
//! travel as opaque ciphertexts made with [`blindledger_fhe::wire::encrypt_amount`]
//! (or [`TenantInfo::encrypt`]); this crate never sees a plaintext amount.

mod client;
mod convert;
mod error;
mod keys;

pub use blindledger_proto as proto;
pub use blindledger_proto::ledger::v1::{
    Account, AggregateResult, Job, JobKind, JobState, ListTransfersResponse, MovementResult,
    Transfer, TransferLimits,
};
pub use client::{
    BearerToken, KeyPin, LedgerClient, PinnedTenant, RawClient, TenantInfo, TlsSettings,
    MAX_MESSAGE_BYTES,
};
pub use convert::{is_finished, width_from_proto, width_to_proto};
pub use error::ClientError;
pub use keys::KEY_CHUNK_BYTES;

/// Returns a fresh idempotency key: a random UUID v4 in its hyphenated form.
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_unique_uuids() {
        let a = new_idempotency_key();
        let b = new_idempotency_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
