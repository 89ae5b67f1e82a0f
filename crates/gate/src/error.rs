//! Errors of bundle loading.

use std::path::PathBuf;

use blindledger_policy::{BundleError, PolicyError};

/// Why a reload did not activate a bundle or install an engine.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A bundle file exists but could not be read.
    #[error("bundle {bundle}: reading {}: {source}", .path.display())]
    Read {
        /// The bundle.
        bundle: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configured key file could not be read.
    #[error("key {kid}: reading {}: {source}", .path.display())]
    KeyFile {
        /// The key id.
        kid: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A bundle server could not be reached or answered with an error.
    #[error("bundle {bundle}: downloading {url}: {reason}")]
    Download {
        /// The bundle.
        bundle: String,
        /// The bundle's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A bundle file is malformed, over the limits or fails signature verification.
    #[error("bundle {bundle}: {source}")]
    Bundle {
        /// The bundle.
        bundle: String,
        /// What is wrong with it.
        source: BundleError,
    },
    /// The bundles do not make a working engine (compile error, overlapping roots, a
    /// decision or mask that fails on the warm-up input).
    #[error("building the policy engine: {0}")]
    Engine(#[source] PolicyError),
    /// A validly signed bundle whose revision does not move past the active one: an old
    /// revision replayed (which would bring back lifted limits and drop new freezes).
    #[error(
        "bundle {bundle}: revision {offered} does not follow the active revision {active}; \
         kept {active}"
    )]
    StaleRevision {
        /// The bundle.
        bundle: String,
        /// The active revision.
        active: String,
        /// The revision offered (bounded).
        offered: String,
    },
    /// One key is configured to verify both the rules and the risk data.
    #[error(
        "key {0} is in both bundle_keys and risk_bundle_keys: the key that signs risk data must \
         not be able to sign rules"
    )]
    SharedBundleKey(String),
    /// The revision floor of a monotonic bundle could not be read or raised: no revision
    /// of it is activated until it can.
    #[error("bundle {bundle}: revision floor: {reason}")]
    RevisionFloor {
        /// The bundle.
        bundle: String,
        /// What failed (storage).
        reason: String,
    },
    /// No bundle file exists and none was ever activated.
    #[error("no policy bundle available")]
    NoBundles,
    /// A background task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}
