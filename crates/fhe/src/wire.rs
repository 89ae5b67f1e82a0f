//! Decoding of TFHE objects that arrive from outside, with size limits and conformance
//! checks, and encoding of the objects the ledger sends back.
//!
//! Plain `safe_deserialize` would accept a `FheUint32` where a `FheUint64` is expected, or
//! an object made with other parameters; every decoder here checks the expected parameters
//! and, for amounts, the expected integer type and count.

use sha2::{Digest, Sha256};
use tfhe::conformance::{ListSizeConstraint, ParameterSetConformant};
use tfhe::safe_serialization::{safe_deserialize, safe_deserialize_conformant, safe_serialize};
use tfhe::{
    CompactCiphertextList, CompactCiphertextListConformanceParams, CompactPublicKey,
    CompressedCiphertextList, CompressedServerKey,
};

use crate::params::{tfhe_config, LedgerWidth};

/// Largest serialized input amount accepted: a packed list of one `u64` is about 17 KB.
pub const MAX_AMOUNT_BYTES: u64 = 64 * 1024;
/// Largest serialized compact public key accepted (about 33 KB in practice).
pub const MAX_PUBLIC_KEY_BYTES: u64 = 1024 * 1024;
/// Largest serialized compressed server key accepted (about 80 MiB in practice).
pub const MAX_SERVER_KEY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest stored compressed value (about 2 KB in practice).
pub const MAX_STORED_VALUE_BYTES: u64 = 1024 * 1024;

/// Why bytes from outside were refused. Messages never contain plaintext values.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes do not decode as the expected tfhe object (garbage, truncated, too large,
    /// or another object type).
    #[error("{what}: not a valid safe-serialized tfhe object: {reason}")]
    Malformed {
        /// The object expected.
        what: &'static str,
        /// tfhe's reason.
        reason: String,
    },
    /// The object decodes but was made with other parameters or has another shape.
    #[error("{what}: {reason}")]
    NotConformant {
        /// The object expected.
        what: &'static str,
        /// What did not match.
        reason: String,
    },
    /// An amount to encrypt does not fit the ledger's width.
    #[error("amount does not fit a {0} ledger")]
    AmountTooLarge(LedgerWidth),
}

/// Decodes an input amount: a packed `CompactCiphertextList` holding exactly one unsigned
/// integer of the ledger's width, encrypted under the BlindLedger public-key parameters.
pub fn decode_amount(bytes: &[u8], width: LedgerWidth) -> Result<CompactCiphertextList, WireError> {
    const WHAT: &str = "amount";
    if bytes.len() as u64 > MAX_AMOUNT_BYTES {
        return Err(WireError::NotConformant {
            what: WHAT,
            reason: format!(
                "{} bytes exceeds the limit of {MAX_AMOUNT_BYTES}",
                bytes.len()
            ),
        });
    }
    let pke = tfhe_config()
        .public_key_encryption_parameters()
        .map_err(|err| WireError::NotConformant {
            what: WHAT,
            reason: err.to_string(),
        })?;
    let conformance = CompactCiphertextListConformanceParams::from_parameters_and_size_constraint(
        pke,
        ListSizeConstraint::exact_size(1),
    );
    let list: CompactCiphertextList =
        safe_deserialize_conformant(bytes, MAX_AMOUNT_BYTES, &conformance)
            .map_err(|reason| classify(WHAT, reason))?;
    match list.get_kind_of(0) {
        Some(kind) if kind == width.fhe_type() && list.len() == 1 => Ok(list),
        Some(kind) => Err(WireError::NotConformant {
            what: WHAT,
            reason: format!(
                "expected one {:?} for a {width} ledger, got {kind:?}",
                width.fhe_type()
            ),
        }),
        None => Err(WireError::NotConformant {
            what: WHAT,
            reason: "empty list".into(),
        }),
    }
}

/// Decodes a tenant's `CompactPublicKey`, checking its parameters.
pub fn decode_public_key(bytes: &[u8]) -> Result<CompactPublicKey, WireError> {
    const WHAT: &str = "public key";
    let params = tfhe_config()
        .public_key_encryption_parameters()
        .map_err(|err| WireError::NotConformant {
            what: WHAT,
            reason: err.to_string(),
        })?;
    safe_deserialize_conformant(bytes, MAX_PUBLIC_KEY_BYTES, &params).map_err(|r| classify(WHAT, r))
}

/// Decodes a tenant's `CompressedServerKey`, checking every sub-key's parameters
/// (compute, key switching for compact lists, compression).
pub fn decode_compressed_server_key(bytes: &[u8]) -> Result<CompressedServerKey, WireError> {
    const WHAT: &str = "server key";
    // tfhe does not export the parameter-set type by name; it converts from a Config.
    let params: <CompressedServerKey as ParameterSetConformant>::ParameterSet =
        tfhe_config().into();
    safe_deserialize_conformant(bytes, MAX_SERVER_KEY_BYTES, &params).map_err(|r| classify(WHAT, r))
}

/// Decodes a compressed value that the ledger itself stored.
pub fn decode_stored(bytes: &[u8]) -> Result<CompressedCiphertextList, WireError> {
    safe_deserialize(bytes, MAX_STORED_VALUE_BYTES).map_err(|r| classify("stored value", r))
}

/// Encodes a compressed value for storage or for the wire.
pub fn encode_stored(list: &CompressedCiphertextList) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    // Serializing into a Vec only fails past the size limit, which a one-value list
    // never reaches; treat it as the invariant violation it would be.
    safe_serialize(list, &mut out, MAX_STORED_VALUE_BYTES)
        .expect("a one-value list fits the limit");
    out
}

/// Encodes a tenant's public key.
pub fn encode_public_key(key: &CompactPublicKey) -> Vec<u8> {
    let mut out = Vec::new();
    safe_serialize(key, &mut out, MAX_PUBLIC_KEY_BYTES).expect("a public key fits the limit");
    out
}

/// Encodes a tenant's compressed server key.
pub fn encode_compressed_server_key(key: &CompressedServerKey) -> Vec<u8> {
    let mut out = Vec::new();
    safe_serialize(key, &mut out, MAX_SERVER_KEY_BYTES).expect("a server key fits the limit");
    out
}

/// Encrypts `value` under a tenant's public key as a packed compact list of one integer
/// of the ledger's width: the form of every input amount. Encrypting needs no secret, so
/// clients and the ledger both use it. `None` when the value does not fit the width.
pub fn encrypt_compact(
    public_key: &CompactPublicKey,
    width: LedgerWidth,
    value: u64,
) -> Option<CompactCiphertextList> {
    let mut builder = CompactCiphertextList::builder(public_key);
    match width {
        LedgerWidth::U32 => builder.push(u32::try_from(value).ok()?),
        LedgerWidth::U64 => builder.push(value),
    };
    Some(builder.build_packed())
}

/// Encrypts `value` (minor units) to a tenant in the wire form deposits, withdrawals and
/// transfers take. Fails when the value does not fit the width.
pub fn encrypt_amount(
    public_key: &CompactPublicKey,
    width: LedgerWidth,
    value: u64,
) -> Result<Vec<u8>, WireError> {
    let list = encrypt_compact(public_key, width, value).ok_or(WireError::AmountTooLarge(width))?;
    Ok(encode_amount(&list))
}

/// The fingerprint of a tenant's public key: hex SHA-256 of its serialized form, as
/// registered and as `GetTenant` returns it. A party that encrypts to a tenant without
/// holding its keys pins this value, learned from the tenant out of band.
pub fn public_key_fingerprint(public_key: &[u8]) -> String {
    hex_sha256(&[public_key])
}

/// The id of a tenant's key generation: hex SHA-256 over a domain tag, the SHA-256 of the
/// serialized compressed server key and the public key's fingerprint. It names both keys,
/// so a revocation or a key-id check covers the key amounts are encrypted to as well as
/// the key the ledger computes with.
pub fn key_id(server_key_sha256: &[u8], public_key: &[u8]) -> String {
    let public = Sha256::digest(public_key);
    hex_sha256(&[b"blindledger key id v2\0", server_key_sha256, &public])
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encodes an input amount list.
pub fn encode_amount(list: &CompactCiphertextList) -> Vec<u8> {
    let mut out = Vec::new();
    safe_serialize(list, &mut out, MAX_AMOUNT_BYTES).expect("a one-value list fits the limit");
    out
}

/// Tells a parameter mismatch from undecodable bytes; tfhe reports both as strings.
fn classify(what: &'static str, reason: String) -> WireError {
    if reason.contains("conformant") || reason.contains("conformance") {
        WireError::NotConformant {
            what,
            reason: "does not match the ledger's parameters".into(),
        }
    } else {
        WireError::Malformed { what, reason }
    }
}
