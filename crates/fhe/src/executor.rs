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
//!
//! On GPUs ([`FheBackend::Gpu`]) lane `i` runs on GPU `i mod n`, and a server key is
//! decompressed once onto each GPU a lane runs on. The lane's threads only drive the GPU:
//! each holds its own copy of the key, hence its own CUDA streams, so the parts of a job
//! that run at once (`rayon::join`) run at once on the GPU too.

use std::num::NonZeroUsize;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use lru::LruCache;
use tfhe::CompressedServerKey;

use crate::backend::{gpu_count, BackendError, FheBackend};
use crate::server_key::ServerKeyHandle;

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
    backend: FheBackend,
    /// GPUs the lanes run on (0 on the CPU).
    gpus: usize,
    lanes: Vec<Lane>,
    slots: Mutex<Vec<Slot>>,
    freed: Condvar,
    cache: Mutex<LruCache<Arc<str>, ServerKeyHandle>>,
}

impl std::fmt::Debug for FheExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FheExecutor")
            .field("backend", &self.backend)
            .field("gpus", &self.gpus)
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
        Self::on_backend(FheBackend::Cpu, lanes, threads, cached_keys).map_err(|err| match err {
            BackendError::Threads(err) => err,
            other => std::io::Error::other(other),
        })
    }

    /// Creates an executor on `backend` running up to `lanes` jobs at once, each on
    /// `threads` threads (0: the cores shared out among the lanes). `lanes` 0 is one per 8
    /// cores on the CPU (at least one), one per GPU on GPUs. Fails on the GPU when the
    /// binary lacks the `gpu` feature or the driver shows no GPU.
    pub fn on_backend(
        backend: FheBackend,
        lanes: usize,
        threads: usize,
        cached_keys: usize,
    ) -> Result<Self, BackendError> {
        let gpus = match backend {
            FheBackend::Cpu => 0,
            FheBackend::Gpu if !backend.is_built() => return Err(BackendError::GpuNotBuilt),
            FheBackend::Gpu => match gpu_count() {
                0 => return Err(BackendError::NoGpu),
                gpus => gpus,
            },
        };
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let lanes = match (lanes, backend) {
            (0, FheBackend::Cpu) => (cores / 8).max(1),
            (0, FheBackend::Gpu) => gpus,
            (lanes, _) => lanes,
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
            backend,
            gpus: gpus.min(lanes.len()),
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

    /// Decompresses a key for this executor's backend (onto each GPU its lanes run on)
    /// and caches it, evicting the least recently used one when full. Blocking: call it
    /// from a blocking context.
    pub fn insert(&self, key_id: &str, compressed: &CompressedServerKey) -> ServerKeyHandle {
        let started = Instant::now();
        let handle = self.decompress(key_id, compressed);
        tracing::debug!(
            key_id,
            backend = self.backend.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "server key decompressed"
        );
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.put(handle.key_id.clone(), handle.clone());
        handle
    }

    /// Decompresses a key where the lanes compute: onto each of their GPUs, or for the CPU.
    fn decompress(&self, key_id: &str, compressed: &CompressedServerKey) -> ServerKeyHandle {
        // `gpus` is 0 on the CPU, and always without the `gpu` feature.
        #[cfg(feature = "gpu")]
        if self.gpus > 0 {
            return ServerKeyHandle::decompress_to_gpus(key_id, compressed, self.gpus);
        }
        ServerKeyHandle::decompress(key_id, compressed)
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
            pool.broadcast(|_| key.install_for_lane(lane.index));
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

    /// The backend jobs run on.
    pub fn backend(&self) -> FheBackend {
        self.backend
    }

    /// Number of GPUs the lanes run on (0 on the CPU).
    pub fn gpus(&self) -> usize {
        self.gpus
    }
}
