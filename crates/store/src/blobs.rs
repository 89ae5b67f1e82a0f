//! Server keys in object storage (a local directory by default).

use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::StoreError;

/// Where compressed server keys are kept, addressed by tenant and key id.
#[derive(Debug, Clone)]
pub struct KeyBlobStore {
    store: Arc<dyn ObjectStore>,
}

impl KeyBlobStore {
    /// Stores keys under a local directory, created if missing.
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Blob(object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })
        })?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(StoreError::Blob)?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// Wraps any object store (S3-compatible in production).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Object path of a tenant's key.
    pub fn key_path(tenant: &str, key_id: &str) -> String {
        format!("server-keys/{tenant}/{key_id}.bin")
    }

    /// Writes an object (atomically for the local store: temp file then rename).
    pub async fn put(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store
            .put(&Path::from(path), PutPayload::from(bytes))
            .await
            .map_err(StoreError::Blob)?;
        Ok(())
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        let result = self
            .store
            .get(&Path::from(path))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StoreError::NotFound,
                other => StoreError::Blob(other),
            })?;
        Ok(result.bytes().await.map_err(StoreError::Blob)?.to_vec())
    }
}
