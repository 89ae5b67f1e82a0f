//! Digests of bundle files as OPA computes them for signatures.

use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;
use crate::error::BundleError;

/// Returns the SHA-256 of a bundle file: over its canonical JSON for the files OPA treats as
/// structured (`data.json` and `.manifest`, in any directory), over its bytes otherwise.
///
/// Hashing parsed JSON makes the signature independent of formatting, so `opa build` and
/// this crate agree on a file even when they would write it differently.
pub(crate) fn file_digest(path: &str, bytes: &[u8]) -> Result<[u8; 32], BundleError> {
    let base = path.rsplit('/').next().unwrap_or(path);
    match base {
        "data.json" | ".manifest" => {
            let canonical = canonical_json(bytes).map_err(|source| BundleError::InvalidJson {
                path: path.to_string(),
                source,
            })?;
            Ok(Sha256::digest(canonical).into())
        }
        // OPA hashes these over parsed YAML, which this crate does not read.
        "data.yaml" | "data.yml" => Err(BundleError::UnsupportedDataFormat {
            path: path.to_string(),
        }),
        _ => Ok(Sha256::digest(bytes).into()),
    }
}
