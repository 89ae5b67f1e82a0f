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
    /// No bundle file exists and none was ever activated.
    #[error("no policy bundle available")]
    NoBundles,
    /// A background task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}
