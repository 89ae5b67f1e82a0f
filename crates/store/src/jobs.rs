//! The persistent job queue.
//!
//! Jobs are rows. A worker claims one with a lease (compare-and-set on its state), renews
//! the lease while computing, and commits the job's balance writes and its terminal state
//! in one transaction that also checks it still holds the lease. A job whose worker died
//! is claimed again once its lease expires, so it completes exactly once.
//!
//! Ordering: a job is claimable only when no earlier unfinished job of the same tenant
//! touches one of its accounts, so jobs on an account apply in submission (`seq`) order
//! whichever instance runs them.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::accounts::{compare_and_set, BalanceWrite};
use crate::retry::retry_transaction;
use crate::{now_ms, Db, StoreError};

/// Job kinds that change balances, and so may be computed in a chain.
const CHAINED_KINDS: [&str; 3] = ["deposit", "withdraw", "transfer"];

/// Reads of a job row after a commit whose answer was lost, while a failover may be under
/// way: 20 × 250 ms.
const RESOLVE_ATTEMPTS: u32 = 20;
const RESOLVE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(250);

/// Lifecycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Accepted, waiting for a worker.
    Pending,
    /// Claimed by a worker.
    Running,
    /// Applied; results stored.
    Committed,
    /// Given up; the reason is stored.
    Failed,
}

impl JobState {
    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Committed => "COMMITTED",
            Self::Failed => "FAILED",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "RUNNING" => Ok(Self::Running),
            "COMMITTED" => Ok(Self::Committed),
            "FAILED" => Ok(Self::Failed),
            other => Err(StoreError::Other(sqlx::Error::Decode(
                format!("unknown job state {other}").into(),
            ))),
        }
    }

    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Committed | Self::Failed)
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Unique id returned to the client.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// `deposit`, `withdraw`, `transfer` or `aggregate`.
    pub kind: String,
    /// Main account (the debited one for a transfer).
    pub account_a: String,
    /// Second account (the credited one for a transfer).
    pub account_b: Option<String>,
    /// Client idempotency key.
    pub idempotency_key: String,
    /// Hex SHA-256 of the request, to tell a retry from a different request.
    pub request_hash: String,
    /// Input ciphertext, dropped once the job commits.
    pub payload: Option<Vec<u8>>,
    /// Kind-specific plaintext parameters (JSON).
    pub params: String,
    /// The W3C `traceparent` of the request that queued it, if traced.
    pub trace_parent: Option<String>,
}

/// A stored job.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// Submission order.
    pub seq: i64,
    /// Unique id.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Kind.
    pub kind: String,
    /// State.
    pub state: JobState,
    /// Main account.
    pub account_a: String,
    /// Second account.
    pub account_b: Option<String>,
    /// Hex SHA-256 of the request.
    pub request_hash: String,
    /// Input ciphertext (until committed).
    pub payload: Option<Vec<u8>>,
    /// Kind-specific parameters (JSON).
    pub params: String,
    /// Number of times a worker claimed the job.
    pub attempts: i64,
    /// Why the job failed.
    pub failure_reason: Option<String>,
    /// Compressed amount moved (transfer, withdraw).
    pub result_moved: Option<Vec<u8>>,
    /// Compressed success flag (transfer, withdraw).
    pub result_ok: Option<Vec<u8>>,
    /// Compressed aggregate results: sum out, sum in, count above threshold.
    pub result_sums: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Number of transfers an aggregate covered.
    pub result_transfers: Option<i64>,
    /// Submission time (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Commit time (Unix ms).
    pub committed_at: Option<i64>,
    /// The W3C `traceparent` of the request that queued it, if traced.
    pub trace_parent: Option<String>,
}

/// What `submit_job` did.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// A new job was queued.
    Created(JobRow),
    /// The idempotency key was already used for the same request: the original job.
    Existing(JobRow),
    /// The idempotency key was already used for a different request.
    KeyReused,
}

/// Everything a worker writes when a job commits.
#[derive(Debug, Clone, Default)]
pub struct JobCommit {
    /// Balance writes, each compare-and-set on the version read.
    pub writes: Vec<BalanceWrite>,
    /// Compressed amount moved.
    pub moved: Option<Vec<u8>>,
    /// Compressed success flag.
    pub ok: Option<Vec<u8>>,
    /// Compressed aggregate results.
    pub sums: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    /// Transfers an aggregate covered.
    pub transfers: Option<i64>,
}

/// Outcome of a commit attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written.
    Committed,
    /// A balance changed since it was read: recompute.
    StaleBalance,
    /// The lease was lost to another worker: drop the result.
    LeaseLost,
}

const COLUMNS: &str = "seq, id, tenant, kind, state, account_a, account_b, request_hash, payload, \
    params, attempts, failure_reason, result_moved, result_ok, result_sum_out, result_sum_in, \
    result_count, result_transfers, created_at, updated_at, committed_at, trace_parent";

fn from_row(row: AnyRow) -> Result<JobRow, StoreError> {
    let state: String = row.try_get(4)?;
    let sum_out: Option<Vec<u8>> = row.try_get(14)?;
    let sum_in: Option<Vec<u8>> = row.try_get(15)?;
    let count: Option<Vec<u8>> = row.try_get(16)?;
    Ok(JobRow {
        seq: row.try_get(0)?,
        id: row.try_get(1)?,
        tenant: row.try_get(2)?,
        kind: row.try_get(3)?,
        state: JobState::parse(&state)?,
        account_a: row.try_get(5)?,
        account_b: row.try_get(6)?,
        request_hash: row.try_get(7)?,
        payload: row.try_get(8)?,
        params: row.try_get(9)?,
        attempts: row.try_get(10)?,
        failure_reason: row.try_get(11)?,
        result_moved: row.try_get(12)?,
        result_ok: row.try_get(13)?,
        result_sums: sum_out.zip(sum_in).zip(count).map(|((a, b), c)| (a, b, c)),
        result_transfers: row.try_get(17)?,
        created_at: row.try_get(18)?,
        updated_at: row.try_get(19)?,
        committed_at: row.try_get(20)?,
        trace_parent: row.try_get(21)?,
    })
}

impl Db {
    /// Queues a job, or returns the job already queued under the same idempotency key.
    pub async fn submit_job(&self, job: &NewJob) -> Result<SubmitOutcome, StoreError> {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, idempotency_key, \
             request_hash, payload, params, attempts, created_at, updated_at, trace_parent) \
             VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.tenant)
        .bind(&job.kind)
        .bind(&job.account_a)
        .bind(job.account_b.as_deref())
        .bind(&job.idempotency_key)
        .bind(&job.request_hash)
        .bind(job.payload.as_deref())
        .bind(&job.params)
        .bind(now)
        .bind(now)
        .bind(job.trace_parent.as_deref())
        .execute(self.pool())
        .await;
        match inserted.map_err(StoreError::from) {
            Ok(_) => Ok(SubmitOutcome::Created(self.job(&job.id).await?)),
            Err(StoreError::Duplicate(_)) => {
                let existing = self.job_by_key(&job.tenant, &job.idempotency_key).await?;
                if existing.request_hash == job.request_hash {
                    Ok(SubmitOutcome::Existing(existing))
                } else {
                    Ok(SubmitOutcome::KeyReused)
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Fetches a job by id.
    pub async fn job(&self, id: &str) -> Result<JobRow, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        from_row(row.ok_or(StoreError::NotFound)?)
    }

    /// Ids and update times of the jobs changed after `after` (Unix ms), oldest change
    /// first, at most `limit`: what a ledger instance tells its job watches about, changes
    /// made by other instances included (`jobs_updated_at` index).
    pub async fn jobs_changed_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, updated_at FROM jobs WHERE updated_at > ? ORDER BY updated_at LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    async fn job_by_key(&self, tenant: &str, key: &str) -> Result<JobRow, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND idempotency_key = ?");
        let row = sqlx::query(&sql)
            .bind(tenant)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        from_row(row.ok_or(StoreError::NotFound)?)
    }

    /// Whether `tenant` already queued a job under idempotency key `key`.
    pub async fn has_idempotency_key(&self, tenant: &str, key: &str) -> Result<bool, StoreError> {
        match self.job_by_key(tenant, key).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Number of `tenant`'s jobs not yet committed or failed.
    pub async fn open_jobs(&self, tenant: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM jobs WHERE tenant = ? AND state IN ('PENDING', 'RUNNING')",
        )
        .bind(tenant)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Number of jobs not yet committed or failed.
    pub async fn queue_depth(&self) -> Result<i64, StoreError> {
        let (pending, running) = self.jobs_by_state().await?;
        Ok(pending + running)
    }

    /// Jobs pending and running, all tenants (the `jobs_state_seq` index).
    pub async fn jobs_by_state(&self) -> Result<(i64, i64), StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) FROM jobs WHERE state IN ('PENDING', 'RUNNING') \
             GROUP BY state",
        )
        .fetch_all(self.pool())
        .await?;
        let (mut pending, mut running) = (0, 0);
        for row in rows {
            let state: String = row.try_get(0)?;
            let count: i64 = row.try_get(1)?;
            match state.as_str() {
                "PENDING" => pending = count,
                _ => running = count,
            }
        }
        Ok((pending, running))
    }

    /// Claims up to `limit` runnable jobs for `owner`, leased until `lease_ms` from now.
    /// A job is runnable when pending (or running with an expired lease) and no earlier
    /// unfinished job of its tenant touches its accounts.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let now = now_ms();
        let candidates = sqlx::query(
            // Ready jobs (nothing earlier open on their accounts), taken in turns across
            // tenants: every tenant's oldest ready job, then every tenant's second... so a
            // tenant with a long queue does not hold back the others.
            "SELECT c.seq FROM (SELECT j.seq, \
                 ROW_NUMBER() OVER (PARTITION BY j.tenant ORDER BY j.seq) AS turn FROM jobs j \
             WHERE (j.state = 'PENDING' OR (j.state = 'RUNNING' AND j.lease_until < ?)) \
             AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.tenant = j.tenant AND p.seq < j.seq \
                 AND p.state IN ('PENDING', 'RUNNING') \
                 AND (p.account_a IN (j.account_a, j.account_b) OR p.account_b IN (j.account_a, j.account_b)))) c \
             ORDER BY c.turn, c.seq LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for row in candidates {
            let seq: i64 = row.try_get(0)?;
            let won = sqlx::query(
                "UPDATE jobs SET state = 'RUNNING', lease_owner = ?, lease_until = ?, \
                 attempts = attempts + 1, updated_at = ? \
                 WHERE seq = ? AND (state = 'PENDING' OR (state = 'RUNNING' AND lease_until < ?))",
            )
            .bind(owner)
            .bind(now + lease_ms)
            .bind(now)
            .bind(seq)
            .bind(now)
            .execute(self.pool())
            .await?;
            if won.rows_affected() == 1 {
                let sql = format!("SELECT {COLUMNS} FROM jobs WHERE seq = ?");
                claimed.push(from_row(
                    sqlx::query(&sql).bind(seq).fetch_one(self.pool()).await?,
                )?);
            }
        }
        Ok(claimed)
    }

    /// Claims, for the worker that holds `head`, up to `max` later jobs of its tenant that
    /// wait on nothing but the head and each other, so that one worker computes them in a
    /// row passing balances in memory (a dependence chain). A job joins when it is pending,
    /// a deposit, withdrawal or transfer, touches an account of a job already in the
    /// chain, and no unfinished job outside the chain comes before it on any of its
    /// accounts. Computed and committed in `seq` order, the chain applies exactly as if
    /// its jobs were claimed one at a time.
    pub async fn claim_followers(
        &self,
        head: &JobRow,
        owner: &str,
        lease_ms: i64,
        max: usize,
    ) -> Result<Vec<JobRow>, StoreError> {
        if max == 0 || !CHAINED_KINDS.contains(&head.kind.as_str()) {
            return Ok(Vec::new());
        }
        // A window of the tenant's unfinished jobs after the head: enough to find `max`
        // followers among jobs on other accounts, bounded whatever the queue holds.
        let window = i64::try_from(max.saturating_mul(4).saturating_add(16)).unwrap_or(i64::MAX);
        let later = sqlx::query(
            "SELECT seq, kind, state, account_a, account_b FROM jobs \
             WHERE tenant = ? AND seq > ? AND state IN ('PENDING', 'RUNNING') ORDER BY seq LIMIT ?",
        )
        .bind(&head.tenant)
        .bind(head.seq)
        .bind(window)
        .fetch_all(self.pool())
        .await?;
        if later.is_empty() {
            return Ok(Vec::new());
        }
        // Accounts an unfinished job before the head is waiting on are not the chain's
        // (at most the tenant's `max_open_jobs_per_tenant` rows).
        let earlier = sqlx::query(
            "SELECT account_a, account_b FROM jobs \
             WHERE tenant = ? AND seq < ? AND state IN ('PENDING', 'RUNNING')",
        )
        .bind(&head.tenant)
        .bind(head.seq)
        .fetch_all(self.pool())
        .await?;
        let mut blocked = std::collections::HashSet::new();
        for row in earlier {
            blocked.insert(row.try_get::<String, _>(0)?);
            blocked.extend(row.try_get::<Option<String>, _>(1)?);
        }
        let mut chained: std::collections::HashSet<String> =
            std::iter::once(head.account_a.clone())
                .chain(head.account_b.clone())
                .collect();
        let mut claimed = Vec::new();
        let now = now_ms();
        for row in later {
            if claimed.len() == max {
                break;
            }
            let seq: i64 = row.try_get(0)?;
            let kind: String = row.try_get(1)?;
            let state: String = row.try_get(2)?;
            let accounts: Vec<String> = std::iter::once(row.try_get::<String, _>(3)?)
                .chain(row.try_get::<Option<String>, _>(4)?)
                .collect();
            let joins = state == "PENDING"
                && CHAINED_KINDS.contains(&kind.as_str())
                && accounts.iter().any(|a| chained.contains(a))
                && !accounts.iter().any(|a| blocked.contains(a));
            let won = joins
                && sqlx::query(
                    "UPDATE jobs SET state = 'RUNNING', lease_owner = ?, lease_until = ?, \
                     attempts = attempts + 1, updated_at = ? WHERE seq = ? AND state = 'PENDING'",
                )
                .bind(owner)
                .bind(now + lease_ms)
                .bind(now)
                .bind(seq)
                .execute(self.pool())
                .await?
                .rows_affected()
                    == 1;
            if won {
                let sql = format!("SELECT {COLUMNS} FROM jobs WHERE seq = ?");
                claimed.push(from_row(
                    sqlx::query(&sql).bind(seq).fetch_one(self.pool()).await?,
                )?);
                chained.extend(accounts);
            } else {
                // Unfinished and outside the chain: later jobs on its accounts wait for it.
                blocked.extend(accounts);
            }
        }
        Ok(claimed)
    }

    /// Extends a lease; `false` when the lease was lost.
    pub async fn renew_lease(
        &self,
        seq: i64,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let result = sqlx::query(
            "UPDATE jobs SET lease_until = ? WHERE seq = ? AND state = 'RUNNING' AND lease_owner = ?",
        )
        .bind(now + lease_ms)
        .bind(seq)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Hands a claimed job back to the queue (after a transient failure).
    pub async fn release_job(&self, seq: i64, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET state = 'PENDING', lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE seq = ? AND state = 'RUNNING' AND lease_owner = ?",
        )
        .bind(now_ms())
        .bind(seq)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Marks a claimed job failed with a reason that contains no confidential value.
    pub async fn fail_job(&self, seq: i64, owner: &str, reason: &str) -> Result<(), StoreError> {
        // The column holds 1024 characters.
        let reason: String = reason.chars().take(1024).collect();
        sqlx::query(
            "UPDATE jobs SET state = 'FAILED', failure_reason = ?, payload = NULL, lease_owner = NULL, \
             lease_until = NULL, updated_at = ? WHERE seq = ? AND state = 'RUNNING' AND lease_owner = ?",
        )
        .bind(&reason)
        .bind(now_ms())
        .bind(seq)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Commits a job: its balance writes (each compare-and-set) and its results, in one
    /// transaction that also checks the lease is still held. A transaction that loses a
    /// certification race is run again whole.
    ///
    /// When the connection is lost during COMMIT, the outcome is unknown: the job row, read
    /// again (from another node if need be), says whether it committed. It is never
    /// committed a second time: the lease and version checks would refuse it anyway.
    pub async fn commit_job(
        &self,
        job: &JobRow,
        owner: &str,
        commit: &JobCommit,
    ) -> Result<CommitOutcome, StoreError> {
        self.commit_jobs(&[(job, commit)], owner).await
    }

    /// Commits a chain of jobs (see [`Db::claim_followers`]) in one transaction, in the
    /// order given: all of them or none. Each account is written once, by the last job
    /// of the chain that changed it, compare-and-set on the version read before the
    /// chain; the jobs before it carry no write for that account.
    pub async fn commit_jobs(
        &self,
        jobs: &[(&JobRow, &JobCommit)],
        owner: &str,
    ) -> Result<CommitOutcome, StoreError> {
        let Some((first, _)) = jobs.first() else {
            return Ok(CommitOutcome::Committed);
        };
        let outcome = retry_transaction("commit_job", || self.try_commit_jobs(jobs, owner));
        match outcome.await {
            Err(StoreError::Unavailable(cause)) => self.resolve_commit(first, cause).await,
            other => other,
        }
    }

    /// Finds out whether a commit whose answer was lost took effect.
    async fn resolve_commit(
        &self,
        job: &JobRow,
        cause: sqlx::Error,
    ) -> Result<CommitOutcome, StoreError> {
        let resolved = |outcome: &'static str| {
            metrics::counter!("blindledger_db_unknown_commits_total", "resolved" => outcome)
                .increment(1);
        };
        // The failover monitor needs a moment to find a healthy node.
        for _ in 0..RESOLVE_ATTEMPTS {
            match self.job(&job.id).await {
                Ok(row) if row.state == JobState::Committed => {
                    resolved("committed");
                    tracing::warn!("commit answer lost; the job row shows it committed");
                    return Ok(CommitOutcome::Committed);
                }
                Ok(_) => {
                    resolved("not_committed");
                    return Err(StoreError::Unavailable(cause));
                }
                Err(_) => tokio::time::sleep(RESOLVE_BACKOFF).await,
            }
        }
        resolved("unreachable");
        Err(StoreError::Unavailable(cause))
    }

    async fn try_commit_jobs(
        &self,
        jobs: &[(&JobRow, &JobCommit)],
        owner: &str,
    ) -> Result<CommitOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        for (job, commit) in jobs {
            let outcome = commit_one(&mut tx, job, owner, commit, now).await?;
            if outcome != CommitOutcome::Committed {
                tx.rollback().await?;
                return Ok(outcome);
            }
        }
        tx.commit().await?;
        Ok(CommitOutcome::Committed)
    }

    /// Compressed amounts moved by committed transfers out of (`outgoing`) or into an
    /// account, committed in `[from_ms, to_ms)`.
    pub async fn moved_amounts(
        &self,
        tenant: &str,
        account: &str,
        outgoing: bool,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let column = if outgoing { "account_a" } else { "account_b" };
        let sql = format!(
            "SELECT result_moved FROM jobs WHERE tenant = ? AND {column} = ? AND kind = 'transfer' \
             AND state = 'COMMITTED' AND committed_at >= ? AND committed_at < ? ORDER BY seq"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant)
            .bind(account)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| {
                r.try_get::<Option<Vec<u8>>, _>(0)?
                    .ok_or(StoreError::Pruned(
                        "the period reaches back past the retention of transfer ciphertexts",
                    ))
            })
            .collect()
    }

    /// Transfer jobs touching an account, newest first, starting below `before_seq`.
    pub async fn list_transfers(
        &self,
        tenant: &str,
        account: &str,
        before_seq: i64,
        limit: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE tenant = ? AND kind = 'transfer' \
             AND (account_a = ? OR account_b = ?) AND seq < ? ORDER BY seq DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant)
            .bind(account)
            .bind(account)
            .bind(before_seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(from_row).collect()
    }
}

/// Marks one job of a commit committed with its results and applies its writes, inside
/// the commit's transaction; anything but `Committed` means the transaction must roll back.
async fn commit_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: &JobRow,
    owner: &str,
    commit: &JobCommit,
    now: i64,
) -> Result<CommitOutcome, StoreError> {
    let finished = sqlx::query(
            "UPDATE jobs SET state = 'COMMITTED', payload = NULL, lease_owner = NULL, lease_until = NULL, \
             result_moved = ?, result_ok = ?, result_sum_out = ?, result_sum_in = ?, result_count = ?, \
             result_transfers = ?, updated_at = ?, committed_at = ? \
             WHERE seq = ? AND state = 'RUNNING' AND lease_owner = ?",
        )
        .bind(commit.moved.as_deref())
        .bind(commit.ok.as_deref())
        .bind(commit.sums.as_ref().map(|s| s.0.as_slice()))
        .bind(commit.sums.as_ref().map(|s| s.1.as_slice()))
        .bind(commit.sums.as_ref().map(|s| s.2.as_slice()))
        .bind(commit.transfers)
        .bind(now)
        .bind(now)
        .bind(job.seq)
        .bind(owner)
        .execute(&mut **tx)
        .await?;
    if finished.rows_affected() != 1 {
        return Ok(CommitOutcome::LeaseLost);
    }
    for write in &commit.writes {
        if !compare_and_set(tx, &job.tenant, write).await? {
            return Ok(CommitOutcome::StaleBalance);
        }
    }
    Ok(CommitOutcome::Committed)
}
