//! The policy decision log: one row per decision, the masked OPA event as JSON.

use sqlx::Row;

use crate::{Db, StoreError};

/// A policy decision to record.
#[derive(Debug, Clone)]
pub struct DecisionRecord {
    /// The decision's id, also returned to the caller.
    pub decision_id: String,
    /// When it was made (Unix ms).
    pub logged_at: i64,
    /// Authenticated subject.
    pub principal: String,
    /// Full gRPC method.
    pub method: String,
    /// Whether it allowed the call.
    pub allowed: bool,
    /// Bundle revisions that decided, as JSON (`{"blindledger": "abc123"}`).
    pub revisions: String,
    /// The masked decision-log event, as JSON.
    pub event: Vec<u8>,
}

impl Db {
    /// Appends a decision. A repeated `decision_id` is a conflict, never an overwrite.
    pub async fn record_decision(&self, record: &DecisionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, \
             revisions, event) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.decision_id)
        .bind(record.logged_at)
        .bind(&record.principal)
        .bind(&record.method)
        .bind(i64::from(record.allowed))
        .bind(&record.revisions)
        .bind(&record.event)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The most recent decisions, newest first.
    pub async fn recent_decisions(&self, limit: i64) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT decision_id, logged_at, principal, method, allowed, revisions, event \
             FROM decision_log ORDER BY seq DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(DecisionRecord {
                    decision_id: row.try_get(0)?,
                    logged_at: row.try_get(1)?,
                    principal: row.try_get(2)?,
                    method: row.try_get(3)?,
                    allowed: row.try_get::<i64, _>(4)? != 0,
                    revisions: row.try_get(5)?,
                    event: row.try_get(6)?,
                })
            })
            .collect()
    }
}
