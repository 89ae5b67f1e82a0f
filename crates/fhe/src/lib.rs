//! The FHE core of BlindLedger. Nothing here can decrypt: key generation and decryption
//! live in `blindledger-keyholder`, which no server crate depends on.
//!
//! * [`params`]: the one tfhe configuration every tenant key is made with, and ledger widths;
//! * [`wire`]: size-limited, conformance-checked decoding of objects arriving from outside,
//!   and encryption to a tenant's public key (which needs no secret);
//! * [`ops`]: the ledger's homomorphic operations (deposit, withdraw, transfer, aggregates);
//! * [`executor`]: a bounded cache of decompressed server keys and the thread pool FHE work
//!   runs on, off the async runtime;
//! * [`backend`]: the CPU, or NVIDIA GPUs through tfhe's CUDA backend (the `gpu` feature),
//!   chosen when the executor starts; [`server_key`]: decompressed keys for either.

pub mod backend;
pub mod executor;
pub mod ops;
pub mod params;
pub mod server_key;
pub mod wire;

pub use backend::{BackendError, FheBackend};
pub use executor::FheExecutor;
pub use params::{tfhe_config, LedgerWidth};
pub use server_key::ServerKeyHandle;
/// A tenant's compact public key: what anyone encrypts amounts to the tenant with.
pub use tfhe::CompactPublicKey;
pub use wire::WireError;

/// Returns the number of programmable bootstraps run by this process so far on the CPU.
/// tfhe's counter does not see the bootstraps of its CUDA backend: on a GPU it stays still.
pub fn pbs_count() -> u64 {
    tfhe::get_pbs_count()
}

/// Resets the process-wide programmable-bootstrap counter to zero.
pub fn reset_pbs_count() {
    tfhe::reset_pbs_count()
}
