//! Importers: the ledger's decision log, its job state changes and the controller's bundle
//! activations become audit events, each exactly once.
//!
//! Every import step is one write transaction that locks the chain head first, reads the
//! source past its remembered position, appends the events and moves the position (in
//! `audit_cursors`, and per job in `audit_job_states`). Concurrent importers therefore
//! take turns, and a crash between steps re-imports nothing twice.
//!
//! Sources are read `settle_ms` behind the clock: on MariaDB an auto-increment value is
//! taken before its transaction commits, so a row with a lower seq can become visible after
//! a higher one. Rows are imported only once they are older than that. (SQLite commits in
//! seq order; zero is safe there.)

mod decisions;
mod jobs;

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Row, Transaction};

use crate::append::Prepared;
use crate::db::{AuditLog, Engine};
use crate::error::Result;
use crate::event::{EventKind, NewEvent};

/// Rows imported per transaction.
const BATCH: i64 = 500;

/// How many events one [`Importer::run_once`] appended, by source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Decision-log rows.
    pub decisions: usize,
    /// Job state changes.
    pub job_transitions: usize,
    /// Bundle activations and rollbacks.
    pub activations: usize,
    /// Source rows that could not become events, set aside (an `import_set_aside` event
    /// each, in place of the row's own).
    pub set_aside: usize,
}

impl ImportReport {
    /// Events appended in total.
    pub fn total(&self) -> usize {
        self.decisions + self.job_transitions + self.activations + self.set_aside
    }
}

/// Counter: source rows set aside by the importer, by `source`.
const SET_ASIDE: &str = "blindledger_audit_import_set_aside_total";
/// Characters of a set-aside row's reason kept in the trail.
const MAX_SET_ASIDE_REASON_CHARS: usize = 200;

/// What one import step appended: events for rows, and rows set aside.
#[derive(Debug, Default, Clone, Copy)]
struct Step {
    imported: usize,
    set_aside: usize,
}

/// Prepares the event of row `seq` of `source`, or, when the row cannot become one (it does
/// not decode, or its event fails the trail's checks: a name too long, a summary too large),
/// an `import_set_aside` event naming the row and why. A row from another service's table
/// is input like any other: one the trail cannot hold must not stop the import of every
/// later row, and it must not vanish either. It stays in its table, and the trail says
/// where and why.
fn prepare_or_set_aside(
    source: &'static str,
    seq: i64,
    event: Result<NewEvent>,
    step: &mut Step,
) -> Result<Prepared> {
    match event.and_then(|event| Prepared::one(&event)) {
        Ok(prepared) => {
            step.imported += 1;
            Ok(prepared)
        }
        Err(error) => {
            step.set_aside += 1;
            let reason: String = error
                .to_string()
                .chars()
                .take(MAX_SET_ASIDE_REASON_CHARS)
                .collect();
            tracing::warn!(source, seq, %reason, "audit import: row set aside");
            let summary = json!({"source": source, "source_seq": seq, "reason": reason});
            Prepared::one(&NewEvent::new(
                EventKind::ImportSetAside,
                crate::now_ms(),
                "audit-importer",
                format!("{source}:{seq}"),
                summary,
            ))
        }
    }
}

/// Counts the rows a committed step set aside.
fn count_set_aside(source: &'static str, step: Step) {
    if step.set_aside > 0 {
        metrics::counter!(SET_ASIDE, "source" => source).increment(step.set_aside as u64);
    }
}

/// Tails the ledger's and the controller's tables into the audit trail.
#[derive(Debug, Clone)]
pub struct Importer {
    log: AuditLog,
    settle_ms: i64,
    job_overlap_ms: i64,
}

impl Importer {
    /// An importer with the engine's default settle delay (2 s on MariaDB, none on SQLite)
    /// and a 10 s overlap when re-reading job changes.
    pub fn new(log: AuditLog) -> Self {
        let settle_ms = match log.engine() {
            Engine::MySql => 2_000,
            Engine::Sqlite => 0,
        };
        Importer {
            log,
            settle_ms,
            job_overlap_ms: 10_000,
        }
    }

    /// Sets how far behind the clock sources are read.
    pub fn with_settle_ms(mut self, settle_ms: i64) -> Self {
        self.settle_ms = settle_ms.max(0);
        self
    }

    /// Imports everything available now, source by source, until each is caught up.
    pub async fn run_once(&self) -> Result<ImportReport> {
        let upper = crate::now_ms() - self.settle_ms;
        let mut report = ImportReport::default();
        loop {
            let (rows, step) = self.decisions_step(upper).await?;
            count_set_aside("decision_log", step);
            report.decisions += step.imported;
            report.set_aside += step.set_aside;
            if rows < BATCH as usize {
                break;
            }
        }
        let step = self.jobs(upper).await?;
        count_set_aside("jobs", step);
        report.job_transitions = step.imported;
        report.set_aside += step.set_aside;
        loop {
            let (rows, step) = self.activations_step(upper).await?;
            count_set_aside("controller_activations", step);
            report.activations += step.imported;
            report.set_aside += step.set_aside;
            if rows < BATCH as usize {
                break;
            }
        }
        if report.total() > 0 {
            tracing::debug!(
                decisions = report.decisions,
                jobs = report.job_transitions,
                activations = report.activations,
                set_aside = report.set_aside,
                "audit import"
            );
        }
        Ok(report)
    }

    /// Imports every `interval` until `shutdown` completes. Failures are logged and the
    /// next round tries again.
    pub async fn run(self, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = %err, "audit import failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = &mut shutdown => return,
            }
        }
    }
}

/// Reads a cursor inside the caller's transaction (0 when absent).
async fn cursor(tx: &mut Transaction<'static, Any>, name: &str) -> Result<i64> {
    let row = sqlx::query("SELECT position FROM audit_cursors WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    })
}

/// Moves a cursor inside the caller's transaction.
async fn set_cursor(tx: &mut Transaction<'static, Any>, name: &str, position: i64) -> Result<()> {
    sqlx::query("REPLACE INTO audit_cursors (name, position, updated_at) VALUES (?, ?, ?)")
        .bind(name)
        .bind(position)
        .bind(crate::now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl AuditLog {
    /// The importer's position in a source (`decision_log`, `jobs`,
    /// `controller_activations`), 0 before the first import.
    pub async fn import_position(&self, source: &str) -> Result<i64> {
        let row = sqlx::query("SELECT position FROM audit_cursors WHERE name = ?")
            .bind(source)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => 0,
        })
    }
}
