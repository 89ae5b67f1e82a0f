//! Decompressed ciphertexts kept in memory, so that a balance written by one job is not
//! decompressed again by the next job or by a read (32 bootstraps and about 0.4 s for 64
//! bits on two cores).
//!
//! Entries are addressed by the tenant and the SHA-256 of the stored (compressed) bytes
//! they decompress: a lookup reads the row first, and finds an entry only when the row
//! still holds exactly the bytes the entry was made from. A balance another instance
//! committed, a row restored from a backup or rewritten by hand all have other bytes, so
//! they miss and are decompressed from what is stored; an entry can be evicted but never
//! be stale. The row's version is checked as before, by the commit's compare-and-set.
//!
//! Bounded in bytes (an FheUint64 takes about 528 KB in memory), least recently used
//! first out. An LRU keyed by content with a byte budget: `lru` provides the order, the
//! byte accounting is this module's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use sha2::{Digest, Sha256};

use blindledger_fhe::ops::{OpError, Value};
use blindledger_fhe::LedgerWidth;

type Key = (Arc<str>, [u8; 32]);

struct Entry {
    value: Arc<Value>,
    bytes: usize,
}

struct State {
    entries: LruCache<Key, Entry>,
    bytes: usize,
}

/// Decompressed values by tenant and stored bytes; see the module documentation.
pub struct ValueCache {
    state: Mutex<State>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a [`ValueCache`] holds and how often it answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Values held.
    pub entries: usize,
    /// Their size in bytes.
    pub bytes: usize,
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that decompressed.
    pub misses: u64,
}

impl std::fmt::Debug for ValueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("ValueCache")
            .field("entries", &state.entries.len())
            .field("bytes", &state.bytes)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl ValueCache {
    /// A cache holding at most `capacity` bytes of decompressed values; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(tenant: &str, stored: &[u8]) -> Key {
        (Arc::from(tenant), Sha256::digest(stored).into())
    }

    /// The value `stored` decompresses to, from memory when it is there. Runs on the FHE
    /// pool (a miss decompresses).
    pub fn decompress(
        &self,
        tenant: &str,
        stored: &[u8],
        width: LedgerWidth,
    ) -> Result<Arc<Value>, OpError> {
        let key = Self::key(tenant, stored);
        if let Some(entry) = self.lock().entries.get(&key) {
            if entry.value.width() == width {
                self.hits.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("blindledger_value_cache_total", "result" => "hit").increment(1);
                return Ok(entry.value.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("blindledger_value_cache_total", "result" => "miss").increment(1);
        let value = Arc::new(Value::decompress(stored, width)?);
        self.put(key, value.clone());
        Ok(value)
    }

    /// Remembers that `stored` decompresses to `value` (a job's fresh result, compressed
    /// into `stored` for its commit). Call it once the commit succeeded. A value a key
    /// holder would not accept as it is (see [`Value::is_conformant`]) is left out: it is
    /// read from storage, as a decompressed value always is conformant.
    pub fn insert(&self, tenant: &str, stored: &[u8], value: Value) {
        if !value.is_conformant() {
            metrics::counter!("blindledger_value_cache_skipped_total").increment(1);
            tracing::debug!(width = %value.width(), "fresh value not conformant; not cached");
            return;
        }
        self.put(Self::key(tenant, stored), Arc::new(value));
    }

    fn put(&self, key: Key, value: Arc<Value>) {
        let bytes = value_bytes(&value);
        if bytes > self.capacity {
            return;
        }
        let mut state = self.lock();
        if let Some(old) = state.entries.put(key, Entry { value, bytes }) {
            state.bytes -= old.bytes;
        }
        state.bytes += bytes;
        while state.bytes > self.capacity {
            match state.entries.pop_lru() {
                Some((_, evicted)) => state.bytes -= evicted.bytes,
                None => break,
            }
        }
        metrics::gauge!("blindledger_value_cache_bytes").set(state.bytes as f64);
    }

    /// What the cache holds and how often it answered.
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// Memory a decompressed value takes: its serialized size, which is its ciphertexts'
/// coefficients (the in-memory layout adds a few words per block).
fn value_bytes(value: &Value) -> usize {
    let size = match value {
        Value::U32(v) => bincode::serialized_size(v),
        Value::U64(v) => bincode::serialized_size(v),
    };
    size.map_or(usize::MAX, |size| {
        usize::try_from(size).unwrap_or(usize::MAX)
    })
}
