//! Job state changes into audit events.
//!
//! Jobs are updated in place, so the importer reads them by `updated_at` and remembers the
//! last state it recorded for each job (`audit_job_states`): a job whose state differs from
//! the remembered one yields one `job_transition` event. Each round re-reads
//! `job_overlap_ms` before its watermark, so an update committed late (its `updated_at`
//! taken before a slow commit, or on another instance's clock) is still seen; re-read jobs
//! whose state did not change yield nothing. States seen between two rounds (a job that
//! went PENDING → RUNNING → COMMITTED in between) are recorded as one transition.

use std::collections::HashMap;

use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{cursor, prepare_or_set_aside, set_cursor, Importer, Step, BATCH};
use crate::db::{opt_text, placeholders, retry, text};
use crate::error::Result;
use crate::event::{EventKind, NewEvent};

/// A page position in (updated_at, seq) order.
type Position = (i64, i64);

impl Importer {
    /// Imports job state changes up to `upper`; returns the transitions, and the changes
    /// set aside.
    pub(super) async fn jobs(&self, upper: i64) -> Result<Step> {
        let watermark = self.log.import_position("jobs").await?;
        let mut position: Position = (watermark - self.job_overlap_ms, 0);
        let mut total = Step::default();
        loop {
            let (step, next) = self.jobs_step(position, upper).await?;
            total.imported += step.imported;
            total.set_aside += step.set_aside;
            match next {
                Some(next) => position = next,
                None => break,
            }
        }
        Ok(total)
    }

    /// One page of jobs after `position`; returns the transitions appended and the next
    /// position, `None` once caught up (the watermark then moves to `upper`).
    async fn jobs_step(&self, position: Position, upper: i64) -> Result<(Step, Option<Position>)> {
        retry("audit_import_jobs", || async {
            let mut tx = self.log.begin_write().await?;
            let head = self.log.lock_head(&mut tx).await?;
            let rows = page(&mut tx, position, upper).await?;
            let known = known_states(&mut tx, &rows).await?;
            let mut events = Vec::new();
            let mut step = Step::default();
            for row in &rows {
                let id = text(row, 0)?;
                let state = text(row, 3)?;
                let from = known.get(&id).cloned();
                if from.as_deref() != Some(state.as_str()) {
                    let seq = row.try_get(1)?;
                    let event = job_event(row, from);
                    events.push(prepare_or_set_aside("jobs", seq, event, &mut step)?);
                    remember(&mut tx, &id, &state, row.try_get(5)?).await?;
                }
            }
            self.log.append_after(&mut tx, head, &events).await?;
            let next = match rows.last() {
                Some(last) if rows.len() as i64 == BATCH => {
                    Some((last.try_get(5)?, last.try_get(1)?))
                }
                _ => {
                    let watermark = cursor(&mut tx, "jobs").await?.max(upper);
                    set_cursor(&mut tx, "jobs", watermark).await?;
                    forget_finished(&mut tx, watermark - 2 * self.job_overlap_ms).await?;
                    None
                }
            };
            tx.commit().await?;
            Ok((step, next))
        })
        .await
    }
}

/// Jobs updated after `position` and at or before `upper`, in (updated_at, seq) order.
async fn page(
    tx: &mut Transaction<'static, Any>,
    (at, seq): Position,
    upper: i64,
) -> Result<Vec<AnyRow>> {
    Ok(sqlx::query(
        "SELECT id, seq, tenant, state, kind, updated_at, account_a, account_b, attempts, \
         failure_reason, payload_bytes, result_bytes \
         FROM ledger_job_feed WHERE (updated_at > ? OR (updated_at = ? AND seq > ?)) AND updated_at <= ? \
         ORDER BY updated_at, seq LIMIT ?",
    )
    .bind(at)
    .bind(at)
    .bind(seq)
    .bind(upper)
    .bind(BATCH)
    .fetch_all(&mut **tx)
    .await?)
}

/// The remembered state of each job in `rows`.
async fn known_states(
    tx: &mut Transaction<'static, Any>,
    rows: &[AnyRow],
) -> Result<HashMap<String, String>> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT job_id, state FROM audit_job_states WHERE job_id IN {}",
        placeholders(1, rows.len())
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query.bind(text(row, 0)?);
    }
    let found = query.fetch_all(&mut **tx).await?;
    found
        .iter()
        .map(|row| Ok((text(row, 0)?, text(row, 1)?)))
        .collect()
}

async fn remember(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    state: &str,
    updated_at: i64,
) -> Result<()> {
    sqlx::query("REPLACE INTO audit_job_states (job_id, state, updated_at) VALUES (?, ?, ?)")
        .bind(id)
        .bind(state)
        .bind(updated_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Finished jobs never change again: once out of the overlap window they are forgotten.
async fn forget_finished(tx: &mut Transaction<'static, Any>, before: i64) -> Result<()> {
    sqlx::query(
        "DELETE FROM audit_job_states WHERE updated_at < ? AND state IN ('COMMITTED', 'FAILED')",
    )
    .bind(before)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A job row as a transition event. Ciphertexts appear only as their sizes in bytes.
fn job_event(row: &AnyRow, from: Option<String>) -> Result<NewEvent> {
    let tenant = text(row, 2)?;
    let account = text(row, 6)?;
    let summary = json!({
        "job_id": text(row, 0)?,
        "job_seq": row.try_get::<i64, _>(1)?,
        "job_kind": text(row, 4)?,
        "from": from,
        "to": text(row, 3)?,
        "counterparty": opt_text(row, 7)?,
        "attempts": row.try_get::<i64, _>(8)?,
        "failure_reason": opt_text(row, 9)?,
        "ciphertext_bytes": row.try_get::<i64, _>(10)?,
        "result_bytes": row.try_get::<i64, _>(11)?,
    });
    Ok(NewEvent::new(
        EventKind::JobTransition,
        row.try_get(5)?,
        "ledger",
        format!("{tenant}/{account}"),
        summary,
    ))
}
