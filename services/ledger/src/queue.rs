//! The job queue as the workers see it. A claimed job is a [`Lease`]: every change a worker
//! makes to it (renewing, releasing, failing, committing) goes through the lease, under this
//! instance's owner name, so a worker never touches the database handle and never names a
//! job it does not hold.

use std::time::Duration;

use blindledger_store::{CommitOutcome, Db, JobCommit, JobRow, StoreError, TotalRow};

/// Claims jobs for this instance's workers.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    db: Db,
    owner: String,
    lease_ms: i64,
}

impl Queue {
    /// A queue on `db` whose leases are held by `owner` for `lease_ms` at a time.
    pub(crate) fn new(db: Db, owner: String, lease_ms: i64) -> Self {
        Self {
            db,
            owner,
            lease_ms,
        }
    }

    /// Claims the oldest runnable job, if any.
    pub(crate) async fn claim(&self) -> Result<Option<Lease>, StoreError> {
        let mut jobs = self.db.claim_jobs(&self.owner, self.lease_ms, 1).await?;
        Ok(jobs.pop().map(|job| Lease {
            queue: self.clone(),
            job,
        }))
    }
}

/// A job this instance holds until its lease expires.
#[derive(Debug)]
pub(crate) struct Lease {
    queue: Queue,
    job: JobRow,
}

impl Lease {
    /// The job as it was claimed.
    pub(crate) fn job(&self) -> &JobRow {
        &self.job
    }

    /// Keeps the lease alive while the job computes; returns once it is lost (another
    /// instance took the job after this one failed to renew in time).
    pub(crate) async fn keep_alive(&self) {
        let Queue {
            db,
            owner,
            lease_ms,
        } = &self.queue;
        let period = Duration::from_millis((lease_ms / 3).max(50) as u64);
        loop {
            tokio::time::sleep(period).await;
            match db.renew_lease(self.job.seq, owner, *lease_ms).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => tracing::warn!(error = %err, "renewing job lease failed"),
            }
        }
    }

    /// Gives the job back to the queue, for any instance to claim.
    pub(crate) async fn release(&self) -> Result<(), StoreError> {
        self.queue
            .db
            .release_job(self.job.seq, &self.queue.owner)
            .await
    }

    /// Fails the job for good with `reason`.
    pub(crate) async fn fail(&self, reason: &str) -> Result<(), StoreError> {
        self.queue
            .db
            .fail_job(self.job.seq, &self.queue.owner, reason)
            .await
    }

    /// Commits the job's results, if the lease is still held and the balances it read are
    /// unchanged.
    pub(crate) async fn commit(&self, commit: &JobCommit) -> Result<CommitOutcome, StoreError> {
        self.queue
            .db
            .commit_job(&self.job, &self.queue.owner, commit)
            .await
    }

    /// Stores a running total the committed job computed for its first account.
    pub(crate) async fn store_total(
        &self,
        series: &str,
        total: &TotalRow,
    ) -> Result<(), StoreError> {
        self.queue
            .db
            .insert_total(&self.job.tenant, &self.job.account_a, series, total)
            .await
    }
}
