//! Appending to the chain: one writer at a time, each batch in one transaction.
//!
//! The `audit_head` row (size and head hash) is read and locked first: `SELECT … FOR
//! UPDATE` on MySQL, which makes concurrent appenders on every instance wait their turn;
//! on SQLite the `BEGIN IMMEDIATE` transaction already excludes other writers. The rows are
//! then numbered from the head, hashed, inserted, and the head moved, all in the same
//! transaction: either the whole batch joins the chain or none of it. A lost race
//! (deadlock, lock wait timeout, Galera certification failure) reruns the transaction from
//! the start, with the head read again.

use std::time::Instant;

use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::chain::{format_hash, parse_hash, row_hash, ChainHash, RowFields};
use crate::db::{placeholders, retry, text, AuditLog};
use crate::error::{AuditError, Result};
use crate::event::NewEvent;

/// Rows per multi-row `INSERT` (8 bound values each).
const INSERT_CHUNK: usize = 250;

/// The chain's current size and last hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Number of rows (the seq of the last one).
    pub size: i64,
    /// Hash of the last row ([`crate::GENESIS`] when empty).
    pub hash: ChainHash,
}

/// Where an appended event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its position.
    pub seq: i64,
    /// Its hash, hex.
    pub hash: String,
}

/// An event checked and rendered, ready to be numbered and hashed.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    kind: &'static str,
    occurred_at: i64,
    principal: String,
    subject: String,
    summary: String,
}

impl Prepared {
    /// Checks `events` and renders their summaries, before any transaction starts.
    pub(crate) fn all(events: &[NewEvent]) -> Result<Vec<Prepared>> {
        events.iter().map(Prepared::one).collect()
    }

    /// Checks one event and renders its summary.
    pub(crate) fn one(event: &NewEvent) -> Result<Prepared> {
        Ok(Prepared {
            kind: event.kind.as_str(),
            occurred_at: event.occurred_at,
            principal: event.principal.clone(),
            subject: event.subject.clone(),
            summary: event.canonical_summary()?,
        })
    }
}

impl AuditLog {
    /// Appends one event in its own transaction.
    pub async fn append(&self, event: NewEvent) -> Result<Appended> {
        let mut appended = self.append_batch(&[event]).await?;
        appended
            .pop()
            .ok_or_else(|| AuditError::Corrupt("append returned no row".into()))
    }

    /// Appends `events` in order, in one transaction: all of them or none.
    pub async fn append_batch(&self, events: &[NewEvent]) -> Result<Vec<Appended>> {
        let prepared = Prepared::all(events)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let appended = retry("audit_append", || async {
            let mut tx = self.begin_write().await?;
            let appended = self.append_in(&mut tx, &prepared).await?;
            tx.commit().await?;
            Ok(appended)
        })
        .await?;
        metrics::counter!("blindledger_audit_events_appended_total")
            .increment(appended.len() as u64);
        metrics::histogram!("blindledger_audit_append_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(appended)
    }

    /// Appends inside the caller's write transaction (begun with `begin_write`), so other
    /// writes can commit atomically with the events.
    pub(crate) async fn append_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        events: &[Prepared],
    ) -> Result<Vec<Appended>> {
        let head = self.lock_head(tx).await?;
        self.append_after(tx, head, events).await
    }

    /// Appends after `head`, which the caller locked with [`AuditLog::lock_head`] in `tx`.
    pub(crate) async fn append_after(
        &self,
        tx: &mut Transaction<'static, Any>,
        head: Head,
        events: &[Prepared],
    ) -> Result<Vec<Appended>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::now_ms();
        let mut prev = head.hash;
        let mut rows = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let seq = head.size + 1 + i as i64;
            let hash = row_hash(
                &RowFields {
                    seq,
                    kind: event.kind,
                    occurred_at: event.occurred_at,
                    principal: &event.principal,
                    subject: &event.subject,
                    summary: &event.summary,
                },
                &prev,
            );
            rows.push((seq, event, format_hash(&prev), format_hash(&hash)));
            prev = hash;
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            insert_rows(&mut *tx, chunk).await?;
        }
        let size = head.size + events.len() as i64;
        sqlx::query("UPDATE audit_head SET size = ?, hash = ?, updated_at = ? WHERE id = 1")
            .bind(size)
            .bind(format_hash(&prev))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, _, _, hash)| Appended { seq, hash })
            .collect())
    }

    /// Reads the head inside a write transaction, locking it on MySQL. Every writer takes
    /// this lock first, so whatever it reads afterwards in the transaction is serialised
    /// with other appends.
    pub(crate) async fn lock_head(&self, tx: &mut Transaction<'static, Any>) -> Result<Head> {
        let sql = format!(
            "SELECT size, hash FROM audit_head WHERE id = 1{}",
            self.for_update()
        );
        let row = sqlx::query(&sql).fetch_one(&mut **tx).await?;
        head_of(&row)
    }

    /// The chain's current size and head hash.
    pub async fn head(&self) -> Result<Head> {
        let row = sqlx::query("SELECT size, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        head_of(&row)
    }
}

fn head_of(row: &sqlx::any::AnyRow) -> Result<Head> {
    let size: i64 = row.try_get(0)?;
    let hash = parse_hash(&text(row, 1)?)
        .ok_or_else(|| AuditError::Corrupt("audit_head hash is not 64 hex digits".into()))?;
    Ok(Head { size, hash })
}

async fn insert_rows(
    conn: &mut AnyConnection,
    rows: &[(i64, &Prepared, String, String)],
) -> Result<()> {
    let sql = format!(
        "INSERT INTO audit_events (seq, kind, occurred_at, principal, subject, summary, \
         prev_hash, hash) VALUES {}",
        placeholders(rows.len(), 8)
    );
    let mut query = sqlx::query(&sql);
    for (seq, event, prev_hash, hash) in rows {
        query = query
            .bind(*seq)
            .bind(event.kind)
            .bind(event.occurred_at)
            .bind(event.principal.as_str())
            .bind(event.subject.as_str())
            .bind(event.summary.as_str())
            .bind(prev_hash.as_str())
            .bind(hash.as_str());
    }
    query.execute(conn).await?;
    Ok(())
}
