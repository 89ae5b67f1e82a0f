//! Where FHE work runs: a dedicated rayon pool, off the async runtime, and a bounded cache
//! of decompressed server keys.
//!
//! tfhe keeps the server key in a thread-local. A job for one tenant must therefore run
//! on threads where that tenant's key is set, and two tenants' jobs must not share the
//! threads at the same time. The executor owns one pool sized to the machine and runs one
//! job at a time on all of its threads (on a CPU a single job already saturates them); it
//! re-broadcasts the key only when the tenant changes.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use lru::LruCache;
use tfhe::{set_server_key, CompressedServerKey, ServerKey};

/// A decompressed server key, shared by the cache and running jobs.
#[derive(Clone)]
pub struct ServerKeyHandle {
    key_id: Arc<str>,
    key: ServerKey,
}

impl std::fmt::Debug for ServerKeyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyHandle")
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl ServerKeyHandle {
    /// Decompresses a server key (about a second on two cores).
    pub fn decompress(key_id: &str, compressed: &CompressedServerKey) -> Self {
        Self {
            key_id: Arc::from(key_id),
            key: compressed.decompress(),
        }
    }

    /// Identifier of the key (the hex SHA-256 of its serialized compressed form).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// Runs FHE work on a dedicated pool and caches decompressed server keys.
pub struct FheExecutor {
    pool: rayon::ThreadPool,
    /// Key currently installed on every pool thread; the lock also serialises jobs.
    installed: Mutex<Option<Arc<str>>>,
    cache: Mutex<LruCache<Arc<str>, ServerKeyHandle>>,
}

impl std::fmt::Debug for FheExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FheExecutor")
            .field("threads", &self.pool.current_num_threads())
            .finish()
    }
}

impl FheExecutor {
    /// Creates an executor with `threads` FHE threads (0: one per core) keeping at most
    /// `cached_keys` decompressed server keys (each 300+ MiB).
    pub fn new(threads: usize, cached_keys: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("fhe-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let capacity = NonZeroUsize::new(cached_keys.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            pool,
            installed: Mutex::new(None),
            cache: Mutex::new(LruCache::new(capacity)),
        })
    }

    /// Returns the cached key with this id, if any.
    pub fn cached(&self, key_id: &str) -> Option<ServerKeyHandle> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key_id)
            .cloned()
    }

    /// Decompresses a key and caches it, evicting the least recently used one when full.
    /// Blocking: call it from a blocking context.
    pub fn insert(&self, key_id: &str, compressed: &CompressedServerKey) -> ServerKeyHandle {
        let started = Instant::now();
        let handle = ServerKeyHandle::decompress(key_id, compressed);
        tracing::debug!(
            key_id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server key decompressed"
        );
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.put(handle.key_id.clone(), handle.clone());
        handle
    }

    /// Runs `work` on the FHE pool with `key` installed on every pool thread. Blocks the
    /// caller until done: call it from `spawn_blocking`, never from an async task.
    pub fn run<R: Send>(&self, key: &ServerKeyHandle, work: impl FnOnce() -> R + Send) -> R {
        let mut installed = self
            .installed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if installed.as_deref() != Some(key.key_id()) {
            // Installed outside any `join`: tfhe's key is a plain thread-local.
            self.pool.broadcast(|_| set_server_key(key.key.clone()));
            *installed = Some(key.key_id.clone());
        }
        let result = self.pool.install(work);
        drop(installed);
        result
    }

    /// Number of threads FHE work runs on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}
