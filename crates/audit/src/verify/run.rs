//! Streaming the chain through a [`ChainChecker`].

use std::collections::VecDeque;
use std::time::Instant;

use sqlx::Row;

use futures::StreamExt;

use super::checker::{merge_moves, ChainChecker};
use super::{
    Finding, Problem, VerifyOptions, VerifyReport, MAX_FINDINGS, PAGE_ROWS, PARALLEL_PAGES,
};
use crate::chain::{parse_hash, GENESIS};
use crate::checkpoint::{Checkpoint, CheckpointKeys};
use crate::db::AuditLog;
use crate::error::{AuditError, Result};

impl AuditLog {
    /// Verifies the chain and its checkpoints (stored and `options.external_checkpoints`)
    /// against `keys`. Tampering is reported in the returned report; an `Err` means the
    /// verification itself could not run (database unreachable, unknown start checkpoint).
    pub async fn verify(
        &self,
        keys: &CheckpointKeys,
        options: &VerifyOptions,
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        let head = self.head().await?;
        let stored = self.checkpoints().await?;
        let mut all = stored.clone();
        all.extend(options.external_checkpoints.iter().cloned());
        let (valid, signature_findings) = authentic(keys, all);
        let mut checker = match &options.archived_through {
            Some(archived) if options.from_checkpoint.is_none() => {
                self.start_after_archive(keys, archived).await?
            }
            _ => self.start(options.from_checkpoint, &valid).await?,
        };
        checker.findings.extend(signature_findings);
        let (published, _) = authentic(keys, options.external_checkpoints.clone());
        checker.findings.extend(
            self.check_published(&stored, &published, head.size, options)
                .await?,
        );
        let start = checker.expected - 1;
        // Owned, so the future stays `Send` (no borrowing closure is held across awaits).
        let mut pending: VecDeque<Checkpoint> =
            valid.iter().filter(|c| c.size >= start).cloned().collect();
        checkpoints_up_to(&mut checker, &mut pending, start);
        let read = self
            .check_pages(&mut checker, start, head.size, &mut pending)
            .await?;
        self.check_tail(&mut checker, head.size, pending).await?;
        Ok(report(checker, read, head.size, valid.len(), started))
    }

    /// Checks the authentic published checkpoints (by size) against the stored ones, each
    /// other and the clock: each is in the database, each was signed after the smaller ones,
    /// and no row waits longer than allowed for one to cover it.
    async fn check_published(
        &self,
        stored: &[Checkpoint],
        published: &[Checkpoint],
        head_size: i64,
        options: &VerifyOptions,
    ) -> Result<Vec<Finding>> {
        let mut findings = Vec::new();
        for (i, checkpoint) in published.iter().enumerate() {
            if !stored.iter().any(|s| s.signature == checkpoint.signature) {
                let deleted = Problem::CheckpointDeleted {
                    size: checkpoint.size,
                };
                findings.push(Finding::new(checkpoint.size, deleted));
            }
            if let Some(earlier) = published[..i]
                .iter()
                .find(|e| e.created_at > checkpoint.created_at && e.size < checkpoint.size)
            {
                let order = Problem::CheckpointOrder {
                    size: earlier.size,
                    earlier_size: checkpoint.size,
                };
                findings.push(Finding::new(earlier.size, order));
            }
        }
        let Some(max_ms) = options.max_unpublished_ms else {
            return Ok(findings);
        };
        let covered = published.last().map_or(0, |c| c.size);
        if covered < head_size {
            let first_uncovered = sqlx::query("SELECT occurred_at FROM audit_events WHERE seq = ?")
                .bind(covered + 1)
                .fetch_optional(self.pool())
                .await?;
            let waiting_ms = match first_uncovered {
                Some(row) => crate::now_ms() - row.try_get::<i64, _>(0)?,
                // The row is gone: the chain check reports that.
                None => 0,
            };
            if waiting_ms > max_ms {
                let unpublished = Problem::Unpublished {
                    published: covered,
                    head: head_size,
                    waiting_s: waiting_ms / 1000,
                };
                findings.push(Finding::new(covered + 1, unpublished));
            }
        }
        Ok(findings)
    }

    /// Checks the end of the chain against the head (rows missing or past it) and the
    /// checkpoints not reached (a truncated tail).
    async fn check_tail(
        &self,
        checker: &mut ChainChecker,
        head_size: i64,
        pending: VecDeque<Checkpoint>,
    ) -> Result<()> {
        let present = checker.expected - 1;
        // Read after every row: a row appended while verifying moved the head with it.
        let head_now = self.head().await?;
        if present > head_now.size {
            let beyond = Problem::BeyondHead {
                first: head_now.size + 1,
                head: head_now.size,
            };
            checker.report(head_now.size + 1, beyond);
        }
        if present < head_size {
            checker.report(
                present + 1,
                Problem::Missing {
                    first: present + 1,
                    last: head_size,
                },
            );
        }
        for c in pending {
            let truncated = Problem::Truncated {
                checkpoint: c.id,
                size: c.size,
                rows: present,
            };
            checker.report(present + 1, truncated);
        }
        Ok(())
    }

    /// Reads and hashes pages in parallel, then checks them in order, checkpoints
    /// included; returns the rows read.
    async fn check_pages(
        &self,
        checker: &mut ChainChecker,
        start: i64,
        head_size: i64,
        pending: &mut VecDeque<Checkpoint>,
    ) -> Result<i64> {
        let last = self.max_seq().await?.max(head_size);
        let ranges: Vec<(i64, i64)> = (start..last)
            .step_by(PAGE_ROWS as usize)
            .map(|after| (after, (after + PAGE_ROWS).min(last)))
            .collect();
        let reader = self.reader().clone();
        let mut pages = futures::stream::iter(ranges)
            .map(|(after, until)| {
                let reader = reader.clone();
                tokio::spawn(async move { reader.page(after, until).await })
            })
            .buffered(PARALLEL_PAGES);
        let mut read = 0;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|_| AuditError::Corrupt("verification task failed".into()))??;
            read += page.len() as i64;
            for row in &page {
                checker.check(row);
                checkpoints_up_to(checker, pending, row.seq);
            }
        }
        Ok(read)
    }

    /// The checker's starting point: the first row, or a trusted checkpoint's head.
    async fn start(&self, from: Option<i64>, valid: &[Checkpoint]) -> Result<ChainChecker> {
        let Some(id) = from else {
            return Ok(ChainChecker::starting_after(0, GENESIS));
        };
        let checkpoint = valid.iter().find(|c| c.id == id).ok_or_else(|| {
            AuditError::InvalidEvent(format!("no authentic checkpoint with id {id}"))
        })?;
        let hash = parse_hash(&checkpoint.head_hash)
            .ok_or_else(|| AuditError::Corrupt("checkpoint hash is not hex".into()))?;
        let mut checker = ChainChecker::starting_after(checkpoint.size, hash);
        if checkpoint.size > 0 {
            let row = self
                .reader()
                .page(checkpoint.size - 1, checkpoint.size)
                .await?;
            match row.first() {
                Some(row) if row.hash == Some(hash) => {}
                _ => checker.at_checkpoint(checkpoint.id, checkpoint.size, ""),
            }
        }
        Ok(checker)
    }

    /// A checker starting after an archive's last checkpoint: the rows it covers are in the
    /// archive; the row at its boundary, if still stored, must be the archive's.
    async fn start_after_archive(
        &self,
        keys: &CheckpointKeys,
        archived: &Checkpoint,
    ) -> Result<ChainChecker> {
        keys.verify(archived).map_err(|problem| {
            AuditError::Corrupt(format!(
                "the archive's checkpoint is not authentic: {problem}"
            ))
        })?;
        let hash = parse_hash(&archived.head_hash)
            .ok_or_else(|| AuditError::Corrupt("checkpoint hash is not hex".into()))?;
        let mut checker = ChainChecker::starting_after(archived.size, hash);
        if archived.size > 0 {
            let row = self.reader().page(archived.size - 1, archived.size).await?;
            if let Some(row) = row.first() {
                if row.hash != Some(hash) {
                    checker.at_checkpoint(archived.id, archived.size, "");
                }
            }
        }
        Ok(checker)
    }

    /// The highest seq stored (0 when empty).
    async fn max_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM audit_events")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get(0)?)
    }
}

/// Checks (and drops) the pending checkpoints covering at most `seq` rows.
fn checkpoints_up_to(checker: &mut ChainChecker, pending: &mut VecDeque<Checkpoint>, seq: i64) {
    while pending.front().is_some_and(|c| c.size <= seq) {
        if let Some(c) = pending.pop_front() {
            checker.at_checkpoint(c.id, c.size, &c.head_hash);
        }
    }
}

/// Splits checkpoints into authentic ones (by size) and findings for the others.
fn authentic(keys: &CheckpointKeys, all: Vec<Checkpoint>) -> (Vec<Checkpoint>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut valid: Vec<Checkpoint> = Vec::new();
    for checkpoint in all {
        match keys.verify(&checkpoint) {
            Ok(()) => valid.push(checkpoint),
            Err(reason) => {
                let problem = Problem::CheckpointSignature {
                    checkpoint: checkpoint.id,
                    reason,
                };
                findings.push(Finding::new(checkpoint.size, problem));
            }
        }
    }
    valid.sort_by_key(|c| c.size);
    (valid, findings)
}

fn report(
    checker: ChainChecker,
    rows_checked: i64,
    head_size: i64,
    checkpoints_checked: usize,
    started: Instant,
) -> VerifyReport {
    let mut problems = merge_moves(checker.findings);
    problems.sort_by_key(|f| f.position);
    problems.truncate(MAX_FINDINGS);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    metrics::counter!("blindledger_audit_rows_verified_total").increment(rows_checked as u64);
    tracing::info!(
        rows = rows_checked,
        problems = problems.len(),
        elapsed_ms,
        "audit chain verified"
    );
    VerifyReport {
        ok: problems.is_empty(),
        rows_checked,
        head_size,
        checkpoints_checked,
        first_problem: problems.first().cloned(),
        problems,
        elapsed_ms,
    }
}
