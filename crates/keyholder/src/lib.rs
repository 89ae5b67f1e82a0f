//! What only a tenant's key holder runs: key generation, the key files and decryption.
//!
//! This is the one crate that handles a `ClientKey`. No server crate depends on it (a
//! test over `cargo metadata` checks the ledger, controller and audit service), so the
//! services cannot decrypt by construction. Encrypting needs only the public key and
//! lives in [`blindledger_fhe::wire::encrypt_amount`].

use std::path::Path;

use tfhe::prelude::*;
use tfhe::safe_serialization::{safe_deserialize, safe_deserialize_conformant, safe_serialize};
use tfhe::{
    ClientKey, CompactPublicKey, CompressedServerKey, FheBool, FheBoolConformanceParams, FheUint32,
    FheUint32ConformanceParams, FheUint64, FheUint64ConformanceParams,
};

use blindledger_fhe::params::{tfhe_config, LedgerWidth, COMPUTE_PARAMS};
use blindledger_fhe::wire::{self, WireError};

/// Largest client key file accepted.
const MAX_CLIENT_KEY_BYTES: u64 = 64 * 1024 * 1024;
/// Largest ciphertext the ledger returns for decryption.
const MAX_RESULT_BYTES: u64 = 4 * 1024 * 1024;

/// Errors of the key holder's operations.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file or a ciphertext could not be read.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
}

/// A tenant's keys: the client key stays with the tenant; the compressed server key and
/// the compact public key are uploaded.
pub struct TenantKeys {
    /// Decrypts; never leaves the client.
    pub client_key: ClientKey,
    /// Lets anyone encrypt an amount to the tenant.
    pub public_key: CompactPublicKey,
    /// Lets the ledger compute; cannot decrypt.
    pub server_key: CompressedServerKey,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys(..)")
    }
}

const CLIENT_KEY_FILE: &str = "client.key";
const PUBLIC_KEY_FILE: &str = "public.key";
const SERVER_KEY_FILE: &str = "server.key";

impl TenantKeys {
    /// Generates a new key set (a few seconds on two cores).
    pub fn generate() -> Self {
        let client_key = ClientKey::generate(tfhe_config());
        let server_key = CompressedServerKey::new(&client_key);
        let public_key = CompactPublicKey::new(&client_key);
        Self {
            client_key,
            public_key,
            server_key,
        }
    }

    /// Writes the three keys into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| KeyError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut client = Vec::new();
        safe_serialize(&self.client_key, &mut client, MAX_CLIENT_KEY_BYTES)
            .expect("a client key fits the limit");
        let files = [
            (CLIENT_KEY_FILE, client),
            (PUBLIC_KEY_FILE, wire::encode_public_key(&self.public_key)),
            (
                SERVER_KEY_FILE,
                wire::encode_compressed_server_key(&self.server_key),
            ),
        ];
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(io(&path))?;
        }
        Ok(())
    }

    /// Reads keys written by [`TenantKeys::save`], checking their parameters.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| KeyError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let client_key: ClientKey =
            safe_deserialize(read(CLIENT_KEY_FILE)?.as_slice(), MAX_CLIENT_KEY_BYTES).map_err(
                |reason| WireError::Malformed {
                    what: "client key",
                    reason,
                },
            )?;
        let public_key = wire::decode_public_key(&read(PUBLIC_KEY_FILE)?)?;
        let server_key = wire::decode_compressed_server_key(&read(SERVER_KEY_FILE)?)?;
        Ok(Self {
            client_key,
            public_key,
            server_key,
        })
    }

    /// The fingerprint of the public key, as third parties pin it.
    pub fn public_key_fingerprint(&self) -> String {
        wire::public_key_fingerprint(&wire::encode_public_key(&self.public_key))
    }

    /// The key id the ledger gives this key set when it is registered.
    pub fn key_id(&self) -> String {
        use sha2::Digest as _;
        let server_key = wire::encode_compressed_server_key(&self.server_key);
        wire::key_id(
            &sha2::Sha256::digest(&server_key),
            &wire::encode_public_key(&self.public_key),
        )
    }

    /// Whether a key set exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        [CLIENT_KEY_FILE, PUBLIC_KEY_FILE, SERVER_KEY_FILE]
            .iter()
            .all(|f| dir.join(f).is_file())
    }
}

/// Decrypts a value returned by the ledger (a serialized `FheUint32` or `FheUint64`).
pub fn decrypt_value(
    client_key: &ClientKey,
    width: LedgerWidth,
    bytes: &[u8],
) -> Result<u64, KeyError> {
    let malformed = |reason| WireError::Malformed {
        what: "encrypted value",
        reason,
    };
    match width {
        LedgerWidth::U32 => {
            let params = FheUint32ConformanceParams::from(COMPUTE_PARAMS);
            let v: FheUint32 =
                safe_deserialize_conformant(bytes, MAX_RESULT_BYTES, &params).map_err(malformed)?;
            let clear: u32 = v.decrypt(client_key);
            Ok(u64::from(clear))
        }
        LedgerWidth::U64 => {
            let params = FheUint64ConformanceParams::from(COMPUTE_PARAMS);
            let v: FheUint64 =
                safe_deserialize_conformant(bytes, MAX_RESULT_BYTES, &params).map_err(malformed)?;
            Ok(v.decrypt(client_key))
        }
    }
}

/// Decrypts an encrypted flag returned by the ledger (a serialized `FheBool`).
pub fn decrypt_flag(client_key: &ClientKey, bytes: &[u8]) -> Result<bool, KeyError> {
    let params = FheBoolConformanceParams::from(COMPUTE_PARAMS);
    let flag: FheBool =
        safe_deserialize_conformant(bytes, MAX_RESULT_BYTES, &params).map_err(|reason| {
            WireError::Malformed {
                what: "encrypted flag",
                reason,
            }
        })?;
    Ok(flag.decrypt(client_key))
}
