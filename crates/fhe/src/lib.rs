//! The FHE core of BlindLedger.
//!
//! * [`params`]: the one tfhe configuration every tenant key is made with, and ledger widths;
//! * [`wire`]: size-limited, conformance-checked decoding of objects arriving from outside;
//! * [`client`]: key generation, encryption and decryption, which only a key holder runs;
//! * [`ops`]: the ledger's homomorphic operations (deposit, withdraw, transfer, aggregates);
//! * [`executor`]: a bounded cache of decompressed server keys and the thread pool FHE work
//!   runs on, off the async runtime.

pub mod client;
pub mod executor;
pub mod ops;
pub mod params;
pub mod wire;

pub use executor::{FheExecutor, ServerKeyHandle};
pub use params::{tfhe_config, LedgerWidth};
/// A tenant's compact public key: what anyone encrypts amounts to the tenant with.
pub use tfhe::CompactPublicKey;
pub use wire::WireError;

/// Returns the number of programmable bootstraps run by this process so far.
pub fn pbs_count() -> u64 {
    tfhe::get_pbs_count()
}

/// Resets the process-wide programmable-bootstrap counter to zero.
pub fn reset_pbs_count() {
    tfhe::reset_pbs_count()
}
