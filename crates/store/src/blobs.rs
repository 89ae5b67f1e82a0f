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

    /// Stores keys in the object store `url` names (see [`open_object_store`]).
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(open_object_store(url)?))
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

/// Longest object store URL accepted.
const MAX_URL_CHARS: usize = 1024;

/// Opens the object store `url` names:
/// - `file:///var/lib/blindledger/objects`: a local directory, created if missing;
/// - `s3://bucket` or `s3://bucket/prefix` (built with the `s3` feature): an S3 bucket or an
///   S3-compatible server, configured by the standard variables `AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT` (for another
///   server than AWS's), `AWS_ALLOW_HTTP` (`true` for a plain-HTTP endpoint) and
///   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`; objects are then kept under `prefix`.
///
/// The error names the scheme or what is wrong, never a credential.
pub fn open_object_store(url: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let invalid = |why: String| {
        StoreError::Blob(object_store::Error::Generic {
            store: "url",
            source: why.into(),
        })
    };
    if url.len() > MAX_URL_CHARS {
        return Err(invalid(format!(
            "an object store URL is at most {MAX_URL_CHARS} characters"
        )));
    }
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err(invalid("a file:// URL names an absolute directory".into()));
        }
        let store = KeyBlobStore::local(std::path::Path::new(dir))?;
        return Ok(store.store);
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(
                "an s3:// URL names a bucket: s3://bucket/prefix".into(),
            ));
        }
        return s3(bucket, prefix.trim_matches('/'));
    }
    let scheme: String = url
        .split("://")
        .next()
        .unwrap_or_default()
        .chars()
        .take(16)
        .collect();
    Err(invalid(format!(
        "unsupported object store URL scheme {scheme:?}: file:// or s3://"
    )))
}

#[cfg(feature = "s3")]
fn s3(bucket: &str, prefix: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(StoreError::Blob)?;
    Ok(if prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
    })
}

#[cfg(not(feature = "s3"))]
fn s3(_bucket: &str, _prefix: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    Err(StoreError::Blob(object_store::Error::Generic {
        store: "url",
        source: "this build has no S3 support (build with the `s3` feature)".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_use() {
        let refused = |url: &str| {
            open_object_store(url).err().map(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    text.push_str(&format!(": {inner}"));
                    source = inner.source();
                }
                text
            })
        };
        assert!(refused("gs://bucket")
            .unwrap()
            .contains("unsupported object store URL scheme \"gs\""));
        assert!(refused("file://relative/dir").unwrap().contains("absolute"));
        assert!(refused("s3:///prefix").unwrap().contains("names a bucket"));
        assert!(refused(&format!("s3://{}", "b".repeat(2000)))
            .unwrap()
            .contains("at most"));
        // A secret in a refused URL is not echoed.
        let text = refused("ftp://user:hunter2@host/x").unwrap();
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn a_file_url_is_a_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("objects").display());
        let store = KeyBlobStore::from_url(&url).unwrap();
        store
            .put("server-keys/acme/k1.bin", b"key".to_vec())
            .await
            .unwrap();
        assert_eq!(store.get("server-keys/acme/k1.bin").await.unwrap(), b"key");
        assert!(dir.path().join("objects/server-keys/acme/k1.bin").exists());
    }
}
