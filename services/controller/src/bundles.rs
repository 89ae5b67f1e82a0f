//! The bundles being served: each name's active revision, held in memory as the exact
//! archive bytes (so signatures keep verifying) with its strong ETag.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::Bytes;
use blindledger_policy::{Bundle, BundleError, BundleLimits, PolicyEngine, PolicyError};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// A long poll being held; see [`ActiveBundles::hold`].
#[derive(Debug)]
pub struct HeldPoll(Arc<AtomicUsize>);

impl Drop for HeldPoll {
    fn drop(&mut self) {
        let held = self.0.fetch_sub(1, Ordering::SeqCst) - 1;
        crate::metrics::long_polls_held(held);
    }
}

/// The name of the CI-pushed rules bundle.
pub const POLICY_BUNDLE: &str = "blindledger";
/// The name of the controller's risk data bundle, as services configure it.
pub const RISK_BUNDLE: &str = "risk";

/// One bundle revision as served.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// Its parsed form, for engine builds.
    pub bundle: Bundle,
    /// The archive bytes, exactly as signed and stored (cheap to clone).
    pub archive: Bytes,
    /// SHA-256 of the archive, hex.
    pub sha256: String,
}

impl ServedBundle {
    /// Parses `archive` as bundle `name`.
    pub fn from_archive(name: &str, archive: Vec<u8>) -> Result<Self, BundleError> {
        let bundle = Bundle::from_tar_gz(name, &archive, &BundleLimits::default())?;
        Ok(Self::new(bundle, archive))
    }

    /// Wraps an already parsed bundle and its archive.
    pub fn new(bundle: Bundle, archive: Vec<u8>) -> Self {
        let sha256 = hex::encode(Sha256::digest(&archive));
        ServedBundle {
            bundle,
            archive: Bytes::from(archive),
            sha256,
        }
    }

    /// The manifest revision.
    pub fn revision(&self) -> &str {
        &self.bundle.manifest.revision
    }

    /// The strong ETag: the quoted SHA-256 of the bytes served.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.sha256)
    }
}

/// The active revision of every bundle name; reads never wait on a database. Long polls
/// wait on [`ActiveBundles::changes`].
#[derive(Debug)]
pub struct ActiveBundles {
    active: RwLock<BTreeMap<String, Arc<ServedBundle>>>,
    /// Bumped on every change, and once more when the server closes.
    changes: watch::Sender<u64>,
    closing: AtomicBool,
    /// Long polls waiting for a change right now.
    held: Arc<AtomicUsize>,
}

impl Default for ActiveBundles {
    fn default() -> Self {
        ActiveBundles {
            active: RwLock::default(),
            changes: watch::channel(0).0,
            closing: AtomicBool::new(false),
            held: Arc::default(),
        }
    }
}

impl ActiveBundles {
    /// The active revision of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ServedBundle>> {
        self.read().get(name).cloned()
    }

    /// Serves `served` as the active revision of its bundle from now on.
    pub fn set(&self, served: ServedBundle) {
        let name = served.bundle.name.clone();
        self.active
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, Arc::new(served));
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// Wakes on every change (subscribe before reading, so none is missed in between).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Counts a long poll as held until the returned guard is dropped.
    pub fn hold(&self) -> HeldPoll {
        let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        crate::metrics::long_polls_held(held);
        HeldPoll(Arc::clone(&self.held))
    }

    /// How many long polls are held now, waiting for a change.
    pub fn held_polls(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Ends every long poll now and every later one at once: the server is stopping.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// Whether [`ActiveBundles::close`] was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ServedBundle>>> {
        // Writers only insert a ready value, so a poisoned lock still holds consistent data.
        self.active.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Compiles `bundles` into an engine and warms it, as a service's loader would before
/// activating them (blocking: call from a blocking thread).
pub fn build_engine(bundles: &[Bundle]) -> Result<PolicyEngine, PolicyError> {
    let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let warm = json!({
        "principal": "controller",
        "roles": [],
        "tenant_claims": [],
        "method": "/blindledger.warmup/Warmup",
        "resource": {},
        "context": {"service_region": "controller", "time": time},
    });
    PolicyEngine::build(bundles, &warm)
}
