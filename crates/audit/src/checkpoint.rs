//! Ed25519-signed checkpoints: the chain's size and head hash at a time, signed by the
//! audit service's key, so a rewritten or truncated chain cannot match them.
//!
//! # Signed message
//!
//! The UTF-8 bytes of the JSON object
//! `{"created_at":<ms>,"head_hash":"<64 hex>","key_id":"<kid>","size":<rows>}`: keys in that
//! (sorted) order, no whitespace, strings escaped as JSON. The signature is the 64-byte
//! Ed25519 signature of those bytes, standard base64. An exported checkpoint carries every
//! field, so anyone holding the public key can check it with any Ed25519 library.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::chain::format_hash;
use crate::db::{text, AuditLog};
use crate::error::{AuditError, Result};

/// A signed statement that the chain had `size` rows ending in `head_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Row id in `audit_checkpoints` (not signed; 0 before it is stored).
    #[serde(default)]
    pub id: i64,
    /// Number of rows covered.
    pub size: i64,
    /// Hash of row `size`, hex (zeros for an empty chain).
    pub head_hash: String,
    /// When it was signed (Unix ms).
    pub created_at: i64,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature of [`Checkpoint::signed_message`], base64.
    pub signature: String,
}

/// The signed fields, in the order they are serialised.
#[derive(Serialize)]
struct SignedFields<'a> {
    created_at: i64,
    head_hash: &'a str,
    key_id: &'a str,
    size: i64,
}

impl Checkpoint {
    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let fields = SignedFields {
            created_at: self.created_at,
            head_hash: &self.head_hash,
            key_id: &self.key_id,
            size: self.size,
        };
        serde_json::to_vec(&fields).unwrap_or_default()
    }
}

/// Signs checkpoints with the audit service's Ed25519 key.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Loads a PKCS#8 PEM Ed25519 private key, naming it `key_id`.
    pub fn from_pem(private_key_pem: &str, key_id: &str) -> Result<Self> {
        let key = SigningKey::from_pkcs8_pem(private_key_pem)
            .map_err(|e| AuditError::Key(format!("checkpoint key '{key_id}': {e}")))?;
        Ok(CheckpointSigner {
            key,
            key_id: key_id.to_owned(),
        })
    }

    /// Generates a fresh key (development and tests).
    pub fn generate(key_id: &str) -> Self {
        CheckpointSigner {
            key: SigningKey::generate(&mut rand_core::OsRng),
            key_id: key_id.to_owned(),
        }
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The private key as PKCS#8 PEM, to store it.
    pub fn private_key_pem(&self) -> Result<String> {
        let pem = self
            .key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| AuditError::Key(e.to_string()))?;
        Ok(pem.to_string())
    }

    /// The public key as SPKI PEM, to verify with.
    pub fn public_key_pem(&self) -> Result<String> {
        self.key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .map_err(|e| AuditError::Key(e.to_string()))
    }

    /// Signs a checkpoint of `size` rows ending in `head_hash` at `created_at`.
    pub fn sign(&self, size: i64, head_hash: &[u8; 32], created_at: i64) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            id: 0,
            size,
            head_hash: format_hash(head_hash),
            created_at,
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        let signature = self.key.sign(&checkpoint.signed_message());
        checkpoint.signature = STANDARD.encode(signature.to_bytes());
        checkpoint
    }
}

/// Why a checkpoint's signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "key_id", rename_all = "snake_case")]
pub enum SignatureProblem {
    /// No configured key has this id.
    #[error("signed with unknown key '{0}'")]
    UnknownKey(String),
    /// The signature is not 64 bytes of base64.
    #[error("signature is malformed")]
    Malformed,
    /// The signature does not verify: the checkpoint was forged or altered.
    #[error("signature does not verify")]
    BadSignature,
}

/// The public keys checkpoints are verified with, by key id.
#[derive(Debug, Clone, Default)]
pub struct CheckpointKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl CheckpointKeys {
    /// Parses `key id → SPKI PEM` public keys.
    pub fn from_pems(pems: &BTreeMap<String, String>) -> Result<Self> {
        let keys = pems
            .iter()
            .map(|(kid, pem)| {
                VerifyingKey::from_public_key_pem(pem)
                    .map(|key| (kid.clone(), key))
                    .map_err(|e| AuditError::Key(format!("public key '{kid}': {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(CheckpointKeys { keys })
    }

    /// Checks a checkpoint's signature.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), SignatureProblem> {
        let key = self
            .keys
            .get(&checkpoint.key_id)
            .ok_or_else(|| SignatureProblem::UnknownKey(checkpoint.key_id.clone()))?;
        let bytes = STANDARD
            .decode(checkpoint.signature.trim())
            .map_err(|_| SignatureProblem::Malformed)?;
        let signature = Signature::from_slice(&bytes).map_err(|_| SignatureProblem::Malformed)?;
        key.verify(&checkpoint.signed_message(), &signature)
            .map_err(|_| SignatureProblem::BadSignature)
    }
}

impl AuditLog {
    /// Signs the current head and stores the checkpoint; `None` when the chain has not
    /// grown since the latest checkpoint.
    pub async fn checkpoint(&self, signer: &CheckpointSigner) -> Result<Option<Checkpoint>> {
        let head = self.head().await?;
        if let Some(latest) = self.latest_checkpoint().await? {
            if latest.size >= head.size {
                return Ok(None);
            }
        }
        let mut checkpoint = signer.sign(head.size, &head.hash, crate::now_ms());
        let result = sqlx::query(
            "INSERT INTO audit_checkpoints (size, head_hash, created_at, key_id, signature) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(checkpoint.size)
        .bind(&checkpoint.head_hash)
        .bind(checkpoint.created_at)
        .bind(&checkpoint.key_id)
        .bind(&checkpoint.signature)
        .execute(self.pool())
        .await?;
        checkpoint.id = result.last_insert_id().unwrap_or_default();
        tracing::info!(size = checkpoint.size, key_id = %checkpoint.key_id, "audit checkpoint signed");
        Ok(Some(checkpoint))
    }

    /// Every stored checkpoint, in the order they were written.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.read_checkpoints("ORDER BY id").await
    }

    /// The most recent checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<Checkpoint>> {
        Ok(self
            .read_checkpoints("ORDER BY id DESC LIMIT 1")
            .await?
            .pop())
    }

    async fn read_checkpoints(&self, order: &str) -> Result<Vec<Checkpoint>> {
        let sql = format!(
            "SELECT id, size, head_hash, created_at, key_id, signature FROM audit_checkpoints {order}"
        );
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(Checkpoint {
                    id: row.try_get(0)?,
                    size: row.try_get(1)?,
                    head_hash: text(row, 2)?,
                    created_at: row.try_get(3)?,
                    key_id: text(row, 4)?,
                    signature: text(row, 5)?,
                })
            })
            .collect()
    }
}

/// Exports checkpoints as a JSON document: `{"format", "checkpoints": [...]}`.
pub fn export_checkpoints(checkpoints: &[Checkpoint]) -> String {
    let document = serde_json::json!({
        "format": "blindledger.audit.checkpoints.v1",
        "checkpoints": checkpoints,
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}
