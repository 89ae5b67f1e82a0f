//! Job workers: claim runnable jobs, compute them on the FHE pool, commit the results.
//!
//! Exactly-once: a job's balance writes and its COMMITTED state are one transaction that
//! checks the worker still holds the job's lease and that every balance still has the
//! version the computation read. A worker that dies leaves a lease that expires; another
//! worker (in this process or another) then claims the job and computes it again from the
//! unchanged balances.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use blindledger_store::{now_ms, CommitOutcome, JobRow, TenantRow};

use crate::compute::{compute_chain, JobInputs};
use crate::error::LedgerError;
use crate::jobs::{JobKind, JobParams};
use crate::ledger::Ledger;
use crate::names::AccountRef;
use crate::queue::Lease;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Lease owner name of this process.
    pub owner: String,
    /// Lease length.
    pub lease_ms: i64,
    /// Claims after which a job is failed.
    pub max_attempts: i64,
    /// Most jobs computed as one chain (`chain_jobs`, at least 1).
    pub chain_jobs: usize,
    /// How often an idle worker folds running totals (`fold_interval_ms`); 0: never.
    pub fold_interval_ms: i64,
}

/// How often an idle worker looks for jobs queued by other processes.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Wait after a storage failure before looking again.
const BACKOFF: Duration = Duration::from_millis(500);
/// Recomputations allowed when a balance changed under a job.
const STALE_RETRIES: usize = 3;

/// Runs one worker until `shutdown` turns true; the job it is computing then still
/// finishes, unless `abandon` turns true first: then its lease is released at once, so
/// another instance takes the job without waiting for the lease to expire.
pub async fn run_worker(
    ledger: Arc<Ledger>,
    settings: WorkerSettings,
    mut shutdown: watch::Receiver<bool>,
    abandon: watch::Receiver<bool>,
) {
    let queue = ledger.queue(&settings.owner, settings.lease_ms);
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Registered before looking, so a job queued meanwhile still wakes this worker.
        let notified = ledger.job_added.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let delay = match queue.claim(settings.chain_jobs - 1).await {
            Ok(Some(lease)) => {
                let job = lease.job();
                let span = tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts, chain = lease.jobs().len());
                // In the trace of the request that queued it (in this instance or another).
                blindledger_telemetry::traces::set_parent_traceparent(
                    &span,
                    job.trace_parent.as_deref(),
                );
                process(&ledger, &settings, lease, abandon.clone())
                    .instrument(span)
                    .await;
                continue;
            }
            Ok(None) => {
                fold_when_due(&ledger, settings.fold_interval_ms).await;
                IDLE_POLL
            }
            Err(err) => {
                tracing::warn!(error = %err, "claiming jobs failed");
                BACKOFF
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Lets one idle worker of the instance fold running totals, once per `interval_ms`
/// (never when 0).
async fn fold_when_due(ledger: &Ledger, interval_ms: i64) {
    use std::sync::atomic::Ordering;
    let now = now_ms();
    let last = ledger.last_fold_ms.load(Ordering::Relaxed);
    if interval_ms <= 0
        || now - last < interval_ms
        || ledger
            .last_fold_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match ledger
        .fold_totals()
        .instrument(tracing::info_span!("fold_totals"))
        .await
    {
        Ok(0) => {}
        Ok(stored) => tracing::info!(totals = stored, "running totals folded"),
        Err(err) => tracing::warn!(error = %err, "folding running totals failed"),
    }
}

async fn process(
    ledger: &Ledger,
    settings: &WorkerSettings,
    mut lease: Lease,
    mut abandon: watch::Receiver<bool>,
) {
    let notify = |lease: &Lease| {
        for job in lease.jobs() {
            let _ = ledger.job_events.send(job.id.clone());
        }
    };
    notify(&lease);
    let job = lease.job().clone();
    if job.attempts > settings.max_attempts {
        // Claimed more often than allowed without ever finishing: each worker holding it
        // died (a crash, an out-of-memory kill) or lost it. Computing it again would only
        // take the next instance down with it.
        if let Err(err) = lease.release_followers().await {
            tracing::warn!(error = %err, "releasing chained jobs failed; their leases will expire");
        }
        fail(
            &lease,
            "claimed more times than max_attempts without finishing: the instances computing it stopped",
        )
        .await;
        notify(&lease);
        return;
    }
    for held in lease.jobs().iter().filter(|held| held.attempts <= 1) {
        metrics::histogram!("blindledger_job_queue_wait_seconds", "kind" => held.kind.clone())
            .record(seconds_since(held.created_at));
    }
    loop {
        let outcome = tokio::select! {
            outcome = run_with_retries(ledger, &lease) => outcome,
            _ = lease.keep_alive() => Ok(CommitOutcome::LeaseLost),
            _ = async { drop(abandon.wait_for(|abandon| *abandon).await) } => {
                // Stopped mid-computation (or mid-commit: the commit checks the lease, and a
                // committed job is no longer RUNNING, so the release below leaves it alone).
                metrics::counter!("blindledger_jobs_released_total", "reason" => "shutdown")
                    .increment(lease.jobs().len() as u64);
                if let Err(err) = lease.release().await {
                    tracing::warn!(error = %err, "releasing job at shutdown failed; its lease will expire");
                } else {
                    tracing::warn!("job released: shutdown grace period over");
                }
                notify(&lease);
                return;
            }
        };
        let chained = lease.jobs().len() > 1;
        match outcome {
            Ok(CommitOutcome::Committed) => {
                for done in lease.jobs() {
                    let kind = done.kind.clone();
                    metrics::histogram!("blindledger_job_latency_seconds", "kind" => kind.clone())
                        .record(seconds_since(done.created_at));
                    metrics::counter!("blindledger_jobs_total", "kind" => kind, "outcome" => "committed")
                        .increment(1);
                }
                if chained {
                    metrics::counter!("blindledger_jobs_chained_total")
                        .increment(lease.jobs().len() as u64 - 1);
                }
                tracing::info!(jobs = lease.jobs().len(), "job committed");
            }
            Ok(CommitOutcome::LeaseLost) => {
                tracing::warn!("job lease lost; another worker owns it")
            }
            Ok(CommitOutcome::StaleBalance) | Err(LedgerError::Unavailable(_)) => {
                tracing::warn!("job released after a transient failure");
                tokio::time::sleep(BACKOFF).await;
                if job.attempts >= settings.max_attempts && !chained {
                    fail(&lease, "gave up after repeated storage failures").await;
                } else if let Err(err) = lease.release().await {
                    // Every job of a chain goes back; claimed again, each runs alone.
                    tracing::warn!(error = %err, "releasing job failed; its lease will expire");
                }
            }
            Err(err) if chained => {
                // One job of the chain cannot be computed: the others go back to the queue
                // and the head runs alone, so the failure is the failing job's only.
                tracing::info!(error = %err, "a chained job failed; running the first alone");
                if let Err(err) = lease.release_followers().await {
                    tracing::warn!(error = %err, "releasing chained jobs failed; their leases will expire");
                }
                notify(&lease);
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "job failed");
                fail(&lease, &err.to_string()).await;
            }
        }
        notify(&lease);
        return;
    }
}

/// Seconds from `created_at` (Unix ms) until now.
fn seconds_since(created_at: i64) -> f64 {
    (now_ms() - created_at).max(0) as f64 / 1000.0
}

async fn fail(lease: &Lease, reason: &str) {
    let kind = lease.job().kind.clone();
    metrics::counter!("blindledger_jobs_total", "kind" => kind, "outcome" => "failed").increment(1);
    if let Err(err) = lease.fail(reason).await {
        tracing::warn!(error = %err, "recording job failure failed; its lease will expire");
    }
}

async fn run_with_retries(ledger: &Ledger, lease: &Lease) -> Result<CommitOutcome, LedgerError> {
    let head = lease.job();
    for _ in 0..STALE_RETRIES {
        let tenant = ledger.tenant_row(&head.tenant).await?;
        let mut chain = Vec::with_capacity(lease.jobs().len());
        for job in lease.jobs() {
            chain.push(read_inputs(ledger, &tenant, job).await?);
        }
        let mut computed = ledger
            .run_fhe(&tenant, move || compute_chain(&chain))
            .await??;
        let commits: Vec<_> = computed
            .iter_mut()
            .map(|job| std::mem::take(&mut job.commit))
            .collect();
        let committing = lease.commit(&commits);
        match committing
            .instrument(tracing::info_span!("job.commit"))
            .await?
        {
            CommitOutcome::StaleBalance => {
                tracing::info!("balance changed under the job; recomputing");
                continue;
            }
            CommitOutcome::Committed => {
                for job in computed {
                    for (stored, value) in job.fresh {
                        ledger.values.insert(&head.tenant, &stored, value);
                    }
                    // Derived data: a total not stored now is folded again when next needed.
                    for (series, total) in &job.totals {
                        if let Err(err) = lease.store_total(&series.name(), total).await {
                            tracing::warn!(error = %err, "storing a running total failed");
                        }
                    }
                }
                return Ok(CommitOutcome::Committed);
            }
            other => return Ok(other),
        }
    }
    Ok(CommitOutcome::StaleBalance)
}

/// The inputs of a job's computation, for its `tenant` (read once per attempt: its width
/// and its server key).
async fn read_inputs(
    ledger: &Ledger,
    tenant: &TenantRow,
    job: &JobRow,
) -> Result<JobInputs, LedgerError> {
    let kind = JobKind::parse(&job.kind)
        .ok_or_else(|| LedgerError::Internal(anyhow::anyhow!("unknown job kind")))?;
    let params: JobParams =
        serde_json::from_str(&job.params).map_err(|e| LedgerError::Internal(e.into()))?;
    let account_a = ledger
        .account_row(&AccountRef::new(&job.tenant, &job.account_a)?)
        .await?;
    let account_b = match &job.account_b {
        Some(b) => Some(
            ledger
                .account_row(&AccountRef::new(&job.tenant, b)?)
                .await?,
        ),
        None => None,
    };
    let aggregate = if kind == JobKind::Aggregate {
        let period = (
            params.from_ms.unwrap_or(0),
            params.to_ms.unwrap_or(i64::MAX),
        );
        let threshold = params.threshold.unwrap_or(0);
        ledger
            .aggregate_inputs(&job.tenant, &job.account_a, period, threshold)
            .await?
    } else {
        Default::default()
    };
    let inputs = JobInputs {
        kind,
        width: Ledger::width(tenant)?,
        amount: job.payload.clone(),
        params,
        account_a,
        account_b,
        aggregate,
        now_ms: now_ms(),
        tenant: job.tenant.clone(),
        cache: ledger.values.clone(),
    };
    Ok(inputs)
}
