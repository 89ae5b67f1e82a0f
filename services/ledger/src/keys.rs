//! Tenant key registration: a compressed server key streamed in chunks, checked against
//! its announced size and SHA-256, then against the ledger's parameters, before anything
//! is stored.

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use blindledger_fhe::{wire, LedgerWidth};
use blindledger_store::{KeyBlobStore, StoreError, TenantRow};

use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::names::validate_name;

/// The header of a key upload.
#[derive(Debug, Clone)]
pub struct KeyUpload {
    /// Tenant name.
    pub tenant: String,
    /// Data-residency region.
    pub region: String,
    /// Width of the tenant's values.
    pub width: LedgerWidth,
    /// Serialized compact public key.
    pub public_key: Vec<u8>,
    /// Announced size of the serialized compressed server key.
    pub server_key_size: u64,
    /// Announced SHA-256 of it.
    pub server_key_sha256: Vec<u8>,
}

impl Ledger {
    /// Registers a tenant's keys from a header and a stream of server-key chunks. Returns
    /// the key id, which names both keys
    /// ([`wire::key_id`]). Registering the same key again is a no-op; another key for
    /// an existing tenant is refused (rotation would strand its encrypted balances).
    pub async fn register_keys(
        &self,
        upload: KeyUpload,
        chunks: impl Stream<Item = Result<Vec<u8>, LedgerError>>,
    ) -> Result<String, LedgerError> {
        validate_name("tenant", &upload.tenant)?;
        validate_name("region", &upload.region)?;
        if upload.server_key_size == 0 || upload.server_key_size > wire::MAX_SERVER_KEY_BYTES {
            return Err(LedgerError::TooLarge(format!(
                "server key size must be between 1 and {} bytes",
                wire::MAX_SERVER_KEY_BYTES
            )));
        }
        if upload.server_key_sha256.len() != 32 {
            return Err(LedgerError::InvalidArgument(
                "server_key_sha256 must be 32 bytes".into(),
            ));
        }
        wire::decode_public_key(&upload.public_key)?;
        let bytes = receive(chunks, upload.server_key_size, &upload.server_key_sha256).await?;
        let key_id = wire::key_id(&upload.server_key_sha256, &upload.public_key);
        if let Some(existing) = self.existing_tenant(&upload.tenant).await? {
            return if existing.key_id == key_id {
                Ok(key_id)
            } else {
                Err(LedgerError::AlreadyExists(format!(
                    "tenant {} with other keys",
                    upload.tenant
                )))
            };
        }
        let checked = bytes.clone();
        tokio::task::spawn_blocking(move || wire::decode_compressed_server_key(&checked).map(drop))
            .await
            .map_err(|e| LedgerError::Internal(e.into()))??;
        let path = KeyBlobStore::key_path(&upload.tenant, &key_id);
        self.blobs
            .put(&path, bytes)
            .await
            .map_err(LedgerError::Unavailable)?;
        // Insert-only: of two registrations racing for a new tenant, the first stored wins
        // and the other is refused, never silently replaced.
        let stored = self
            .db
            .register_tenant(&TenantRow {
                name: upload.tenant.clone(),
                region: upload.region,
                width_bits: i64::from(upload.width.bits()),
                public_key: upload.public_key,
                key_id: key_id.clone(),
                server_key_path: path,
                server_key_size: upload.server_key_size as i64,
            })
            .await?;
        if stored.key_id != key_id {
            return Err(LedgerError::AlreadyExists(format!(
                "tenant {} with other keys",
                upload.tenant
            )));
        }
        tracing::info!(tenant = %upload.tenant, key_id = %key_id, "tenant keys registered");
        Ok(key_id)
    }

    async fn existing_tenant(&self, tenant: &str) -> Result<Option<TenantRow>, LedgerError> {
        match self.db.tenant(tenant).await {
            Ok(row) => Ok(Some(row)),
            Err(StoreError::NotFound) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }
}

/// Collects exactly `size` bytes and checks their SHA-256.
async fn receive(
    chunks: impl Stream<Item = Result<Vec<u8>, LedgerError>>,
    size: u64,
    sha256: &[u8],
) -> Result<Vec<u8>, LedgerError> {
    let mut chunks = std::pin::pin!(chunks);
    let mut bytes = Vec::with_capacity(size as usize);
    let mut hasher = Sha256::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if (bytes.len() + chunk.len()) as u64 > size {
            return Err(LedgerError::InvalidArgument(format!(
                "server key: more bytes than the announced {size}"
            )));
        }
        hasher.update(&chunk);
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != size {
        return Err(LedgerError::InvalidArgument(format!(
            "server key: stream ended after {} of {size} bytes",
            bytes.len()
        )));
    }
    if hasher.finalize().as_slice() != sha256 {
        return Err(LedgerError::InvalidArgument(
            "server key: SHA-256 does not match".into(),
        ));
    }
    Ok(bytes)
}
