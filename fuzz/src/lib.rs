//! Fixed keys and settings shared by the fuzz targets and by the seed generator
//! (`examples/seeds.rs`), so that seed inputs signed here verify in the targets.
//!
//! Every key is derived from a constant: these are test keys, never used anywhere else.

use std::collections::BTreeMap;

use blindledger_audit::admin::OfficerKeys;
use blindledger_gate::{TokenIssuer, TokenVerifier};
use blindledger_policy::{BundleVerifier, SigningKey};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};

/// Key id of the first bearer-token key.
pub const JWT_KID: &str = "fuzz-jwt-1";
/// Key id of the second bearer-token key.
pub const JWT_KID_2: &str = "fuzz-jwt-2";
/// `iss` the token verifier accepts.
pub const JWT_ISSUER: &str = "blindledger-fuzz";
/// `aud` the token verifier accepts.
pub const JWT_AUDIENCE: &str = "blindledger";

/// Key id of the bundle signing key.
pub const BUNDLE_KID: &str = "ci";
/// Name bundles are read under.
pub const BUNDLE_NAME: &str = "blindledger";

/// Key id of the admin officer key.
pub const OFFICER_KID: &str = "officer-1";
/// The service clock admin commands are checked against (Unix ms), fixed so that a seed
/// stays fresh however old it is.
pub const ADMIN_NOW_MS: i64 = 1_750_000_000_000;

/// An Ed25519 key whose 32 secret bytes are all `fill`.
fn ed25519(fill: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[fill; 32])
}

/// PKCS#8 PEM of [`ed25519`]`(fill)`.
fn private_pem(fill: u8) -> String {
    ed25519(fill)
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a fixed key encodes")
        .to_string()
}

/// SPKI PEM of the public half of [`ed25519`]`(fill)`.
fn public_pem(fill: u8) -> String {
    ed25519(fill)
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a fixed key encodes")
}

/// The bearer-token verifier: two EdDSA keys, [`JWT_ISSUER`], [`JWT_AUDIENCE`].
pub fn token_verifier() -> TokenVerifier {
    let keys = BTreeMap::from([
        (JWT_KID.to_string(), public_pem(1)),
        (JWT_KID_2.to_string(), public_pem(2)),
    ]);
    TokenVerifier::new(&keys, JWT_ISSUER, JWT_AUDIENCE).expect("fixed keys are valid")
}

/// An issuer of tokens [`token_verifier`] accepts, signing with the [`JWT_KID`] key.
pub fn token_issuer() -> TokenIssuer {
    TokenIssuer::new(&private_pem(1), JWT_KID, JWT_ISSUER, JWT_AUDIENCE)
        .expect("fixed keys are valid")
}

/// An issuer signing with a key that is not configured, under the configured [`JWT_KID_2`].
pub fn wrong_token_issuer() -> TokenIssuer {
    TokenIssuer::new(&private_pem(9), JWT_KID_2, JWT_ISSUER, JWT_AUDIENCE)
        .expect("fixed keys are valid")
}

/// The bundle signing key, [`BUNDLE_KID`].
pub fn bundle_signing_key() -> SigningKey {
    SigningKey::from_pem(&private_pem(3)).expect("fixed keys are valid")
}

/// The bundle verifier: signatures required, by [`bundle_signing_key`], without scope.
pub fn bundle_verifier() -> BundleVerifier {
    let keys = BTreeMap::from([(BUNDLE_KID.to_string(), public_pem(3))]);
    BundleVerifier::new(keys, None, true).expect("fixed keys are valid")
}

/// The officer's private key (PKCS#8 PEM), [`OFFICER_KID`].
pub fn officer_key_pem() -> String {
    private_pem(4)
}

/// The configured officer keys: [`OFFICER_KID`].
pub fn officer_keys() -> OfficerKeys {
    let pems = BTreeMap::from([(OFFICER_KID.to_string(), public_pem(4))]);
    OfficerKeys::from_pems(&pems).expect("fixed keys are valid")
}

/// URL of a fresh scratch SQLite database for this process, in memory-backed `/dev/shm`
/// when there is one (commits then cost no disk flush), else in the temporary directory.
/// Databases that earlier processes (fuzzing runs end by exiting) left behind are removed.
pub fn scratch_sqlite_url(name: &str) -> String {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let prefix = format!("blindledger-fuzz-{name}-");
    let own = std::process::id();
    // Whether a process still runs is read from /proc; without it only this process's
    // own leftovers are removed.
    let procfs = std::path::Path::new("/proc/self").exists();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let pid = rest.split('.').next().and_then(|p| p.parse::<u32>().ok());
            let gone = pid.is_some_and(|pid| {
                pid == own || (procfs && !std::path::Path::new(&format!("/proc/{pid}")).exists())
            });
            if gone {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let path = dir.join(format!("{prefix}{own}.db"));
    format!("sqlite://{}?mode=rwc", path.display())
}
