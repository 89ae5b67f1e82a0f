//! Retention of what the trail is built from: the ledger's decision log, its jobs and their
//! ciphertexts. A source row leaves the database only once it is older than its retention
//! *and* the trail holds its event (the importer's cursor is past it, or the job's final
//! state was imported), so pruning never loses an event the trail has not recorded.
//!
//! - `decision_log`: rows logged before the cutoff, at or below the importer's cursor;
//! - job ciphertexts: the encrypted payload and results of finished jobs (COMMITTED or
//!   FAILED) last changed before the cutoff, and an hour before the job importer's
//!   watermark (so the trail holds their final state), are cleared; the metadata stays;
//! - jobs: finished jobs last changed before the cutoff and that watermark are deleted. An idempotency key can be reused after its job is deleted, so keep jobs
//!   longer than clients retry.
//!
//! Run by an administrator (`blindledger db prune`), whose database user may delete: no
//! service's user holds that privilege.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use crate::db::AuditLog;
use crate::error::{AuditError, Result};

/// Rows deleted or cleared per statement, so no statement holds locks for long.
const BATCH: i64 = 1_000;
/// How far before the job importer's watermark a finished job must have changed to count
/// as imported: far more than the importer's re-read overlap (10 s by default).
const IMPORT_MARGIN_MS: i64 = 3_600_000;
/// Shortest retention accepted: the controller's feature windows and the importer's
/// settling delay read recent rows.
pub const MIN_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// How long each kind of row is kept; `None` keeps it forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Decision-log rows.
    pub decision_log: Option<Duration>,
    /// The ciphertexts (payload and results) of finished jobs.
    pub job_ciphertexts: Option<Duration>,
    /// Finished jobs themselves.
    pub jobs: Option<Duration>,
}

impl Retention {
    /// Refuses retentions under [`MIN_RETENTION`], and jobs kept for less time than their
    /// ciphertexts (a deleted job takes its ciphertexts with it).
    pub fn validate(&self) -> Result<()> {
        for (name, kept) in [
            ("decision log", self.decision_log),
            ("job ciphertexts", self.job_ciphertexts),
            ("jobs", self.jobs),
        ] {
            if kept.is_some_and(|k| k < MIN_RETENTION) {
                return Err(AuditError::InvalidEvent(format!(
                    "the {name} retention is at least {} hours",
                    MIN_RETENTION.as_secs() / 3600
                )));
            }
        }
        if let (Some(jobs), Some(ciphertexts)) = (self.jobs, self.job_ciphertexts) {
            if jobs < ciphertexts {
                return Err(AuditError::InvalidEvent(
                    "jobs are kept at least as long as their ciphertexts".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What one pruning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Decision-log rows deleted.
    pub decisions_deleted: u64,
    /// Finished jobs whose ciphertexts were cleared.
    pub job_ciphertexts_cleared: u64,
    /// Finished jobs deleted.
    pub jobs_deleted: u64,
}

impl AuditLog {
    /// Prunes what `retention` lets go, as of `now_ms`.
    pub async fn prune_sources(&self, retention: &Retention, now_ms: i64) -> Result<PruneReport> {
        retention.validate()?;
        let cutoff = |kept: Duration| now_ms - i64::try_from(kept.as_millis()).unwrap_or(i64::MAX);
        let mut report = PruneReport::default();
        if let Some(kept) = retention.decision_log {
            report.decisions_deleted = self.prune_decisions(cutoff(kept)).await?;
        }
        if let Some(kept) = retention.job_ciphertexts {
            report.job_ciphertexts_cleared = self.clear_job_ciphertexts(cutoff(kept)).await?;
        }
        if let Some(kept) = retention.jobs {
            report.jobs_deleted = self.prune_jobs(cutoff(kept)).await?;
        }
        Ok(report)
    }

    async fn prune_decisions(&self, before_ms: i64) -> Result<u64> {
        // Only what the importer has read: at or below its cursor.
        let row = sqlx::query(
            "SELECT COALESCE((SELECT position FROM audit_cursors WHERE name = 'decision_log'), 0), \
                    COALESCE((SELECT MIN(seq) FROM decision_log), 0)",
        )
        .fetch_one(self.pool())
        .await?;
        let imported: i64 = row.try_get(0)?;
        let mut from: i64 = row.try_get(1)?;
        let mut deleted = 0;
        while from > 0 && from <= imported {
            let to = (from + BATCH - 1).min(imported);
            let done = sqlx::query(
                "DELETE FROM decision_log WHERE seq >= ? AND seq <= ? AND logged_at < ?",
            )
            .bind(from)
            .bind(to)
            .bind(before_ms)
            .execute(self.pool())
            .await?;
            deleted += done.rows_affected();
            from = to + 1;
        }
        Ok(deleted)
    }

    async fn clear_job_ciphertexts(&self, before_ms: i64) -> Result<u64> {
        let mut cleared = 0;
        let (ranges, before_ms) = self.finished_job_ranges(before_ms).await?;
        for range in ranges {
            let done = sqlx::query(
                "UPDATE jobs SET payload = NULL, result_moved = NULL, result_ok = NULL, \
                 result_sum_out = NULL, result_sum_in = NULL, result_count = NULL \
                 WHERE seq >= ? AND seq <= ? AND state IN ('COMMITTED', 'FAILED') \
                 AND updated_at < ? AND (payload IS NOT NULL OR result_moved IS NOT NULL \
                 OR result_ok IS NOT NULL OR result_sum_out IS NOT NULL \
                 OR result_sum_in IS NOT NULL OR result_count IS NOT NULL)",
            )
            .bind(range.0)
            .bind(range.1)
            .bind(before_ms)
            .execute(self.pool())
            .await?;
            cleared += done.rows_affected();
        }
        Ok(cleared)
    }

    async fn prune_jobs(&self, before_ms: i64) -> Result<u64> {
        let mut deleted = 0;
        let (ranges, before_ms) = self.finished_job_ranges(before_ms).await?;
        for range in ranges {
            let done = sqlx::query(
                "DELETE FROM jobs WHERE seq >= ? AND seq <= ? AND state IN ('COMMITTED', 'FAILED') \
                 AND updated_at < ?",
            )
            .bind(range.0)
            .bind(range.1)
            .bind(before_ms)
            .execute(self.pool())
            .await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }

    /// `seq` ranges of [`BATCH`] covering the finished jobs last changed before `before_ms`
    /// whose final state the trail holds, and that bound: `before_ms`, or earlier when the
    /// job importer is behind it.
    async fn finished_job_ranges(&self, before_ms: i64) -> Result<(Vec<(i64, i64)>, i64)> {
        // The importer reads jobs by `updated_at` up to its watermark (re-reading a short
        // overlap): a finished job changed well before the watermark was imported with its
        // final state.
        let watermark: i64 = sqlx::query(
            "SELECT COALESCE((SELECT position FROM audit_cursors WHERE name = 'jobs'), 0)",
        )
        .fetch_one(self.pool())
        .await?
        .try_get(0)?;
        let before_ms = before_ms.min(watermark - IMPORT_MARGIN_MS);
        let row = sqlx::query(
            "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM jobs \
             WHERE state IN ('COMMITTED', 'FAILED') AND updated_at < ?",
        )
        .bind(before_ms)
        .fetch_one(self.pool())
        .await?;
        let (first, last): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        if first == 0 {
            return Ok((Vec::new(), before_ms));
        }
        let ranges = (first..=last)
            .step_by(BATCH as usize)
            .map(|from| (from, (from + BATCH - 1).min(last)))
            .collect();
        Ok((ranges, before_ms))
    }
}
