//! The job queue as the workers see it. A claimed job is a [`Lease`]: every change a worker
//! makes to it (renewing, releasing, failing, committing) goes through the lease, under this
//! instance's owner name, so a worker never touches the database handle and never names a
//! job it does not hold.

use std::time::Duration;

use blindledger_store::{CommitOutcome, Db, JobCommit, JobRow, StoreError, TotalRow};

use crate::error::LedgerError;

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

    /// Claims the oldest runnable job, if any, with up to `followers` later jobs that wait
    /// only on it and on each other (a chain: see [`Db::claim_followers`]).
    pub(crate) async fn claim(&self, followers: usize) -> Result<Option<Lease>, StoreError> {
        let Some(head) = self
            .db
            .claim_jobs(&self.owner, self.lease_ms, 1)
            .await?
            .pop()
        else {
            return Ok(None);
        };
        // A job being retried runs alone, so that one that keeps failing holds up no other.
        let followers = if head.attempts > 1 { 0 } else { followers };
        let mut jobs = vec![head];
        match self
            .db
            .claim_followers(&jobs[0], &self.owner, self.lease_ms, followers)
            .await
        {
            Ok(claimed) => jobs.extend(claimed),
            // The head is held: it runs alone, and any follower claimed before the failure
            // is taken again by whoever finds its lease expired.
            Err(err) => tracing::warn!(error = %err, "claiming a job's followers failed"),
        }
        Ok(Some(Lease {
            queue: self.clone(),
            jobs,
        }))
    }
}

impl Queue {
    /// Hands `jobs`, held by this instance, back to the queue; tries every one, and
    /// returns the last failure.
    async fn release(&self, jobs: &[JobRow]) -> Result<(), StoreError> {
        let mut result = Ok(());
        for job in jobs {
            if let Err(err) = self.db.release_job(job.seq, &self.owner).await {
                result = Err(err);
            }
        }
        result
    }
}

/// Jobs this instance holds until their leases expire: one job, or a chain of jobs in
/// submission order, computed and committed together.
#[derive(Debug)]
pub(crate) struct Lease {
    queue: Queue,
    /// The head first; never empty.
    jobs: Vec<JobRow>,
}

impl Lease {
    /// The first job, as it was claimed.
    pub(crate) fn job(&self) -> &JobRow {
        &self.jobs[0]
    }

    /// Every job held, the head first, in submission order.
    pub(crate) fn jobs(&self) -> &[JobRow] {
        &self.jobs
    }

    /// Gives back every job but the head, which then runs alone.
    pub(crate) async fn release_followers(&mut self) -> Result<(), StoreError> {
        let followers: Vec<_> = self.jobs.drain(1..).collect();
        self.queue.release(&followers).await
    }

    /// Keeps the leases alive while the jobs compute; returns once one is lost (another
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
            for job in &self.jobs {
                match db.renew_lease(job.seq, owner, *lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(err) => tracing::warn!(error = %err, "renewing job lease failed"),
                }
            }
        }
    }

    /// Gives every job back to the queue, for any instance to claim.
    pub(crate) async fn release(&self) -> Result<(), StoreError> {
        self.queue.release(&self.jobs).await
    }

    /// Fails the head for good with `reason`; call it once the followers are released.
    pub(crate) async fn fail(&self, reason: &str) -> Result<(), StoreError> {
        debug_assert_eq!(
            self.jobs.len(),
            1,
            "a chain is released before its head fails"
        );
        self.queue
            .db
            .fail_job(self.job().seq, &self.queue.owner, reason)
            .await
    }

    /// Commits the jobs' results (one [`JobCommit`] per job, in order) in one transaction,
    /// if every lease is still held and the balances read are unchanged.
    pub(crate) async fn commit(&self, commits: &[JobCommit]) -> Result<CommitOutcome, LedgerError> {
        if commits.len() != self.jobs.len() {
            // A chain computes one commit per job; committing fewer would commit jobs
            // whose balance writes a later job carries.
            return Err(LedgerError::Internal(anyhow::anyhow!(
                "{} results for a chain of {} jobs",
                commits.len(),
                self.jobs.len()
            )));
        }
        let pairs: Vec<_> = self.jobs.iter().zip(commits).collect();
        Ok(self.queue.db.commit_jobs(&pairs, &self.queue.owner).await?)
    }

    /// Stores a running total the committed job computed for its first account.
    pub(crate) async fn store_total(
        &self,
        series: &str,
        total: &TotalRow,
    ) -> Result<(), StoreError> {
        self.queue
            .db
            .insert_total(&self.job().tenant, &self.job().account_a, series, total)
            .await
    }
}
