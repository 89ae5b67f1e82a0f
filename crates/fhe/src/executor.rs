//! Where FHE work runs: dedicated rayon pools, off the async runtime, and a bounded cache
//! of decompressed server keys.
//!
//! tfhe keeps the server key in a thread-local. A job for one tenant must therefore run
//! on threads where that tenant's key is set, and two tenants' jobs must not share the
//! threads at the same time. The executor owns one or more lanes, each a pool of its own
//! threads running one job at a time; jobs run at once on different lanes, each with its
//! own tenant's key (re-broadcast on a lane only when the tenant there changes, and a
//! job goes to a free lane that already holds its key when there is one). On a CPU one
//! 64-bit job keeps about eight cores busy, so a two-core machine wants one lane; a
//! larger one more.

use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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

/// One pool of threads running one job at a time.
struct Lane {
    pool: rayon::ThreadPool,
}

/// Which lanes are busy and which key each holds.
#[derive(Default)]
struct Slot {
    busy: bool,
    installed: Option<Arc<str>>,
}

/// Runs FHE work on dedicated pools and caches decompressed server keys.
pub struct FheExecutor {
    lanes: Vec<Lane>,
    slots: Mutex<Vec<Slot>>,
    freed: Condvar,
    cache: Mutex<LruCache<Arc<str>, ServerKeyHandle>>,
}

impl std::fmt::Debug for FheExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FheExecutor")
            .field("lanes", &self.lanes.len())
            .field("threads", &self.threads())
            .finish()
    }
}

/// Gives a lane back when the job on it ends, panicking or not.
struct LaneGuard<'a> {
    executor: &'a FheExecutor,
    index: usize,
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        let mut slots = self.executor.lock_slots();
        slots[self.index].busy = false;
        drop(slots);
        self.executor.freed.notify_one();
    }
}

impl FheExecutor {
    /// Creates an executor running one job at a time on `threads` FHE threads (0: one per
    /// core), keeping at most `cached_keys` decompressed server keys (each 300+ MiB).
    pub fn new(threads: usize, cached_keys: usize) -> std::io::Result<Self> {
        Self::with_lanes(1, threads, cached_keys)
    }

    /// Creates an executor running up to `lanes` jobs at once (0: one per 8 cores, at
    /// least one), each on `threads` threads (0: the cores shared out among the lanes).
    pub fn with_lanes(lanes: usize, threads: usize, cached_keys: usize) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let lanes = if lanes == 0 {
            (cores / 8).max(1)
        } else {
            lanes
        };
        let threads = if threads == 0 {
            (cores / lanes).max(1)
        } else {
            threads
        };
        let lanes = (0..lanes)
            .map(|lane| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("fhe-{lane}-{i}"))
                    .build()
                    .map(|pool| Lane { pool })
                    .map_err(std::io::Error::other)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let capacity = NonZeroUsize::new(cached_keys.max(1)).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            slots: Mutex::new(lanes.iter().map(|_| Slot::default()).collect()),
            lanes,
            freed: Condvar::new(),
            cache: Mutex::new(LruCache::new(capacity)),
        })
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Takes a free lane, preferring one where `key` is installed; waits when all are
    /// busy. Returns the lane and whether the key must be installed on it.
    fn acquire(&self, key: &ServerKeyHandle) -> (LaneGuard<'_>, bool) {
        let mut slots = self.lock_slots();
        loop {
            let holding = |slot: &Slot| slot.installed.as_deref() == Some(key.key_id());
            let free = slots
                .iter()
                .position(|slot| !slot.busy && holding(slot))
                .or_else(|| slots.iter().position(|slot| !slot.busy));
            if let Some(index) = free {
                let slot = &mut slots[index];
                slot.busy = true;
                let install = !holding(slot);
                if install {
                    // Recorded once the broadcast is done, so a failed one is redone.
                    slot.installed = None;
                }
                let guard = LaneGuard {
                    executor: self,
                    index,
                };
                return (guard, install);
            }
            slots = self
                .freed
                .wait(slots)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Runs `work` on a free lane with `key` installed on every thread of it. Blocks the
    /// caller until done: call it from `spawn_blocking`, never from an async task.
    pub fn run<R: Send>(&self, key: &ServerKeyHandle, work: impl FnOnce() -> R + Send) -> R {
        let (lane, install) = self.acquire(key);
        let pool = &self.lanes[lane.index].pool;
        if install {
            // Installed outside any `join`: tfhe's key is a plain thread-local.
            pool.broadcast(|_| set_server_key(key.key.clone()));
            self.lock_slots()[lane.index].installed = Some(key.key_id.clone());
        }
        let result = pool.install(work);
        drop(lane);
        result
    }

    /// Number of threads each job runs on.
    pub fn threads(&self) -> usize {
        self.lanes
            .first()
            .map_or(0, |lane| lane.pool.current_num_threads())
    }

    /// Number of jobs that run at once.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }
}
