//! The transport-agnostic ledger: what every RPC does, without gRPC types.

use std::sync::Arc;

use tokio::sync::{broadcast, Notify};

use blindledger_fhe::ops::{self, Value};
use blindledger_fhe::{CompactPublicKey, FheExecutor, LedgerWidth, ServerKeyHandle};
use blindledger_store::{AccountRow, Db, JobRow, KeyBlobStore, TenantRow};

use crate::cache::{CacheStats, ValueCache};
use crate::error::LedgerError;
use crate::names::{validate_name, AccountRef};
use crate::queue::Queue;

/// Memory for decompressed values when the configuration does not say: about 500
/// 64-bit balances.
pub const DEFAULT_VALUE_CACHE_BYTES: usize = 256 << 20;

/// Limits an account's outgoing transfers must respect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountLimits {
    /// Largest amount per transfer.
    pub max_amount: Option<u64>,
    /// Largest outflow per window, and the window length in seconds.
    pub window: Option<(u64, u64)>,
}

/// Encrypted results of a committed job, ready for a key holder.
#[derive(Debug, Clone)]
pub enum JobResults {
    /// Transfer or withdrawal: amount moved and success flag.
    Movement {
        /// Serialized FheUint of the amount moved.
        moved: Vec<u8>,
        /// Serialized FheBool.
        ok: Vec<u8>,
    },
    /// Aggregate sums and count.
    Aggregate {
        /// Serialized sum out.
        sum_out: Vec<u8>,
        /// Serialized sum in.
        sum_in: Vec<u8>,
        /// Serialized count above threshold.
        count_above: Vec<u8>,
        /// Transfers covered.
        transfers: u64,
    },
}

/// The ledger's state shared by RPC handlers and workers.
pub struct Ledger {
    pub(crate) db: Db,
    pub(crate) blobs: KeyBlobStore,
    pub(crate) fhe: Arc<FheExecutor>,
    /// Decompressed balances, allowances and results, by stored bytes.
    pub(crate) values: Arc<ValueCache>,
    /// When an idle worker last started folding running totals (Unix ms).
    pub(crate) last_fold_ms: std::sync::atomic::AtomicI64,
    /// Woken when a job is queued, so idle workers look at once.
    pub(crate) job_added: Notify,
    /// Ids of jobs whose state changed in this process.
    pub(crate) job_events: broadcast::Sender<String>,
    /// Serialises server-key loads so a key is decompressed once.
    key_loading: tokio::sync::Mutex<()>,
    /// What one tenant may use at once.
    pub(crate) quotas: TenantQuotas,
    /// Turns true when the instance starts shutting down: open job watches end then (their
    /// clients watch again elsewhere), so they do not hold the shutdown open.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// What one tenant may use at once, so that none can starve the others.
#[derive(Debug)]
pub struct TenantQuotas {
    /// Jobs queued or running.
    pub max_open_jobs: u64,
    /// Open `WatchJob` streams.
    pub max_watches: usize,
    /// Open watches by tenant.
    watches: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl TenantQuotas {
    /// Quotas of `max_open_jobs` jobs and `max_watches` watches per tenant.
    pub fn new(max_open_jobs: u64, max_watches: usize) -> Self {
        Self {
            max_open_jobs,
            max_watches,
            watches: Default::default(),
        }
    }
}

impl Default for TenantQuotas {
    fn default() -> Self {
        Self::new(1_000, 64)
    }
}

/// One of a tenant's open watches; dropping it gives the place back.
#[derive(Debug)]
pub struct WatchPermit {
    ledger: Arc<Ledger>,
    tenant: String,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut watches = self
            .ledger
            .quotas
            .watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = watches.get_mut(&self.tenant) {
            *open -= 1;
            if *open == 0 {
                watches.remove(&self.tenant);
            }
        }
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("backend", &self.db.backend())
            .finish()
    }
}

impl Ledger {
    /// Creates the ledger over its storage and FHE executor.
    pub fn new(db: Db, blobs: KeyBlobStore, fhe: Arc<FheExecutor>) -> Self {
        Self {
            db,
            blobs,
            fhe,
            values: Arc::new(ValueCache::new(DEFAULT_VALUE_CACHE_BYTES)),
            last_fold_ms: std::sync::atomic::AtomicI64::new(0),
            job_added: Notify::new(),
            job_events: broadcast::channel(1024).0,
            quotas: TenantQuotas::default(),
            stopping: tokio::sync::watch::channel(false).0,
            key_loading: tokio::sync::Mutex::new(()),
        }
    }

    /// Marks the instance as shutting down: every open job watch ends.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Ledger::begin_shutdown`] was called.
    pub async fn shutting_down(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// The same ledger keeping at most `bytes` of decompressed values in memory.
    pub fn with_value_cache(mut self, bytes: usize) -> Self {
        self.values = Arc::new(ValueCache::new(bytes));
        self
    }

    /// What this instance's cache of decompressed values holds and how often it answered.
    pub fn value_cache(&self) -> CacheStats {
        self.values.stats()
    }

    /// Jobs this instance computes at once.
    pub fn fhe_lanes(&self) -> usize {
        self.fhe.lanes()
    }

    /// The same ledger with other per-tenant quotas.
    pub fn with_quotas(mut self, quotas: TenantQuotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Takes one of `tenant`'s watch places, or refuses when it holds them all.
    pub fn watch_permit(self: &Arc<Self>, tenant: &str) -> Result<WatchPermit, LedgerError> {
        let mut watches = self
            .quotas
            .watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = watches.entry(tenant.to_owned()).or_default();
        if *open >= self.quotas.max_watches {
            metrics::counter!("blindledger_quota_refusals_total", "quota" => "watches")
                .increment(1);
            return Err(LedgerError::QuotaExceeded(format!(
                "tenant {tenant} has {} job watches open, the most allowed; close one or poll GetJob",
                self.quotas.max_watches
            )));
        }
        *open += 1;
        Ok(WatchPermit {
            ledger: Arc::clone(self),
            tenant: tenant.to_owned(),
        })
    }

    /// `WatchJob` streams open on this instance, all tenants together.
    pub fn open_watches(&self) -> usize {
        let watches = self
            .quotas
            .watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        watches.values().sum()
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The job queue, claiming under `owner` for `lease_ms` at a time.
    pub(crate) fn queue(&self, owner: &str, lease_ms: i64) -> Queue {
        Queue::new(self.db.clone(), owner.to_owned(), lease_ms)
    }

    /// Fetches a tenant, or `NOT_FOUND` naming it.
    pub async fn tenant_row(&self, tenant: &str) -> Result<TenantRow, LedgerError> {
        validate_name("tenant", tenant)?;
        self.db
            .tenant(tenant)
            .await
            .map_err(LedgerError::store(format!("tenant {tenant}")))
    }

    /// Fetches an account, or `NOT_FOUND` naming it.
    pub async fn account_row(&self, account: &AccountRef) -> Result<AccountRow, LedgerError> {
        self.db
            .account(&account.tenant, &account.account)
            .await
            .map_err(LedgerError::store(format!("account {account}")))
    }

    /// The width of a tenant's values.
    pub fn width(tenant: &TenantRow) -> Result<LedgerWidth, LedgerError> {
        LedgerWidth::from_bits(tenant.width_bits as u32)
            .ok_or_else(|| LedgerError::Internal(anyhow::anyhow!("stored width is invalid")))
    }

    /// A tenant's compact public key, as registered (conformance-checked again: it is read
    /// back from the database).
    fn public_key(tenant: &TenantRow) -> Result<CompactPublicKey, LedgerError> {
        blindledger_fhe::wire::decode_public_key(&tenant.public_key)
            .map_err(|error| LedgerError::Internal(anyhow::anyhow!("stored public key: {error}")))
    }

    /// Opens an account of a registered tenant.
    pub async fn open_account(
        &self,
        account: &AccountRef,
        limits: AccountLimits,
    ) -> Result<AccountRow, LedgerError> {
        self.tenant_row(&account.tenant).await?;
        let to_i64 = |v: u64, what: &str| {
            i64::try_from(v)
                .map_err(|_| LedgerError::InvalidArgument(format!("{what} is too large")))
        };
        let max_amount = limits
            .max_amount
            .map(|v| to_i64(v, "max_amount"))
            .transpose()?;
        let window = match limits.window {
            Some((limit, seconds)) => Some((
                to_i64(limit, "window_limit")?,
                to_i64(seconds.max(1), "window_seconds")?,
            )),
            None => None,
        };
        self.db
            .insert_account(&account.tenant, &account.account, max_amount, window)
            .await
            .map_err(|e| match e {
                blindledger_store::StoreError::Duplicate(_) => {
                    LedgerError::AlreadyExists(format!("account {account}"))
                }
                other => other.into(),
            })
    }

    /// The decompressed server key of a tenant, loaded from object storage on a miss.
    pub(crate) async fn server_key(
        &self,
        tenant: &TenantRow,
    ) -> Result<ServerKeyHandle, LedgerError> {
        if let Some(key) = self.fhe.cached(&tenant.key_id) {
            return Ok(key);
        }
        let _loading = self.key_loading.lock().await;
        if let Some(key) = self.fhe.cached(&tenant.key_id) {
            return Ok(key);
        }
        let bytes = self
            .blobs
            .get(&tenant.server_key_path)
            .await
            .map_err(LedgerError::Unavailable)?;
        let (fhe, key_id) = (self.fhe.clone(), tenant.key_id.clone());
        tokio::task::spawn_blocking(move || {
            let compressed = blindledger_fhe::wire::decode_compressed_server_key(&bytes)?;
            Ok::<_, LedgerError>(fhe.insert(&key_id, &compressed))
        })
        .await
        .map_err(|e| LedgerError::Internal(e.into()))?
    }

    /// Runs FHE work for a tenant on the FHE pool, off the async runtime.
    pub(crate) async fn run_fhe<R: Send + 'static>(
        &self,
        tenant: &TenantRow,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, LedgerError> {
        let key = self.server_key(tenant).await?;
        let fhe = self.fhe.clone();
        // The caller's span goes with the work onto the FHE pool's thread.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || fhe.run(&key, move || span.in_scope(work)))
            .await
            .map_err(|e| LedgerError::Internal(e.into()))
    }

    /// The encrypted balance of an account, serialized for the key holder, and its version.
    pub async fn balance(
        &self,
        account: &AccountRef,
    ) -> Result<(LedgerWidth, Vec<u8>, u64), LedgerError> {
        let tenant = self.tenant_row(&account.tenant).await?;
        let width = Self::width(&tenant)?;
        let row = self.account_row(account).await?;
        let stored = row.balance.clone();
        let public_key = Self::public_key(&tenant)?;
        let (values, name) = (self.values.clone(), account.tenant.clone());
        let wire = self
            .run_fhe(&tenant, move || {
                let value = match stored {
                    Some(bytes) => values.decompress(&name, &bytes, width)?,
                    None => Arc::new(Value::zero(width)),
                };
                value.to_wire(&public_key)
            })
            .await??;
        Ok((width, wire, row.version as u64))
    }

    /// Fetches a job by id.
    pub async fn job(&self, id: &str) -> Result<JobRow, LedgerError> {
        if id.is_empty() || id.len() > 64 {
            return Err(LedgerError::InvalidArgument("invalid job id".into()));
        }
        self.db
            .job(id)
            .await
            .map_err(LedgerError::store(format!("job {id}")))
    }

    /// The encrypted results of a committed job, serialized for the key holder.
    pub async fn job_results(&self, job: &JobRow) -> Result<Option<JobResults>, LedgerError> {
        let tenant = self.tenant_row(&job.tenant).await?;
        let width = Self::width(&tenant)?;
        let job = job.clone();
        let public_key = Self::public_key(&tenant)?;
        let values = self.values.clone();
        self.run_fhe(&tenant, move || {
            let value = |b: &[u8]| {
                values
                    .decompress(&job.tenant, b, width)
                    .and_then(|v| v.to_wire(&public_key))
            };
            if let (Some(moved), Some(ok)) = (&job.result_moved, &job.result_ok) {
                return Ok(Some(JobResults::Movement {
                    moved: value(moved)?,
                    ok: ops::flag_to_wire(ok)?,
                }));
            }
            if let Some((out, inc, count)) = &job.result_sums {
                return Ok(Some(JobResults::Aggregate {
                    sum_out: value(out)?,
                    sum_in: value(inc)?,
                    count_above: value(count)?,
                    transfers: job.result_transfers.unwrap_or_default() as u64,
                }));
            }
            Ok::<_, LedgerError>(None)
        })
        .await?
    }

    /// Transfer jobs touching an account, newest first; `before_seq` pages backwards.
    pub async fn list_transfers(
        &self,
        account: &AccountRef,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRow>, LedgerError> {
        self.account_row(account).await?;
        let limit = i64::from(limit.clamp(1, 500));
        Ok(self
            .db
            .list_transfers(
                &account.tenant,
                &account.account,
                before_seq.unwrap_or(i64::MAX),
                limit,
            )
            .await?)
    }

    /// Subscribes to ids of jobs whose state changes: in this process as its workers change
    /// them, and in other instances as the change feed reads them (while watches are open).
    pub fn job_events(&self) -> broadcast::Receiver<String> {
        self.job_events.subscribe()
    }
}
