//! Generated protobuf and gRPC types for BlindLedger's APIs.

/// `blindledger.ledger.v1`: the confidential ledger API.
pub mod ledger {
    /// Version 1 of the ledger API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("blindledger.ledger.v1");
    }
}

/// Encoded `FileDescriptorSet` of every BlindLedger proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("blindledger_descriptor");

pub use prost_types;
