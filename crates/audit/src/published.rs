//! Checkpoints published outside the database, in object storage (a local directory by
//! default, an S3-compatible bucket with write-once retention in production), where the
//! database's writers cannot reach them.
//!
//! Each checkpoint is one object, `checkpoints/<size, 20 digits>-<created_at>.json`, holding
//! the checkpoint as JSON (every signed field and the signature). Objects are created, never
//! overwritten. [`AuditLog::verify`](crate::AuditLog::verify) checks the chain against them:
//! a database whose checkpoints were deleted and whose tail was cut (its head moved back)
//! still has to match the published checkpoints, and does not.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use crate::checkpoint::Checkpoint;
use crate::error::{AuditError, Result};

/// Folder of the checkpoint objects.
const PREFIX: &str = "checkpoints";
/// Largest checkpoint object read: a checkpoint is about 250 bytes.
const MAX_OBJECT_BYTES: usize = 4 * 1024;
/// Most checkpoint objects read by one verification (one a minute is 525,600 a year).
const MAX_OBJECTS: usize = 1_000_000;

/// Where checkpoints are published.
#[derive(Debug, Clone)]
pub struct PublishedCheckpoints {
    store: Arc<dyn ObjectStore>,
}

impl PublishedCheckpoints {
    /// Publishes under a local directory (created if missing): another disk, host or
    /// mount than the database's, so that its writers cannot reach it.
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(storage)?;
        Ok(Self::new(Arc::new(store)))
    }

    /// Publishes to any object store.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Publishes a checkpoint. Publishing one that is already there is a no-op; an object
    /// of the same name is never replaced.
    pub async fn publish(&self, checkpoint: &Checkpoint) -> Result<()> {
        let name = format!(
            "{PREFIX}/{:020}-{}.json",
            checkpoint.size, checkpoint.created_at
        );
        let mut published = checkpoint.clone();
        published.id = 0;
        let body = serde_json::to_vec(&published)
            .map_err(|e| AuditError::Corrupt(format!("encoding a checkpoint: {e}")))?;
        let options = PutOptions::from(PutMode::Create);
        match self
            .store
            .put_opts(&Path::from(name), PutPayload::from(body), options)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(other) => Err(storage(other)),
        }
    }

    /// Every published checkpoint, oldest (smallest) first. An object that is not a
    /// checkpoint is an error naming it: the published set is not to be guessed at.
    pub async fn list(&self) -> Result<Vec<Checkpoint>> {
        let metas: Vec<_> = self
            .store
            .list(Some(&Path::from(PREFIX)))
            .try_collect()
            .await
            .map_err(storage)?;
        if metas.len() > MAX_OBJECTS {
            return Err(AuditError::Corrupt(format!(
                "more than {MAX_OBJECTS} published checkpoints"
            )));
        }
        let mut checkpoints = Vec::with_capacity(metas.len());
        for meta in metas {
            let name = meta.location.to_string();
            let unreadable = |what: String| {
                AuditError::Corrupt(format!("published checkpoint {}: {what}", excerpt(&name)))
            };
            if meta.size as usize > MAX_OBJECT_BYTES {
                return Err(unreadable(format!("{} bytes", meta.size)));
            }
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .map_err(storage)?
                .bytes()
                .await
                .map_err(storage)?;
            let mut checkpoint: Checkpoint =
                serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
            checkpoint.id = 0;
            checkpoints.push(checkpoint);
        }
        checkpoints.sort_by_key(|c| (c.size, c.created_at));
        Ok(checkpoints)
    }
}

fn storage(error: object_store::Error) -> AuditError {
    AuditError::Read(format!("published checkpoints: {error}"))
}

/// An object name as it may be shown: at most 100 characters.
fn excerpt(name: &str) -> String {
    name.chars().take(100).collect()
}
