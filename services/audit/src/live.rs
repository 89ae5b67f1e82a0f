//! Live decisions: a poller tails new `decision` rows of the audit trail and broadcasts them
//! to every open `/events` stream.

use std::sync::Arc;
use std::time::Duration;

use blindledger_audit::AuditLog;
use serde::Serialize;
use sqlx::Row;
use tokio::sync::{broadcast, watch};

/// Rows read per poll.
const POLL_ROWS: i64 = 500;

/// A new decision, as pushed to dashboards (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveDecision {
    /// Audit seq.
    pub seq: i64,
    /// When it was decided (Unix ms).
    pub occurred_at: i64,
    /// Who called.
    pub principal: String,
    /// `tenant/account`.
    pub subject: String,
    /// gRPC method.
    pub method: String,
    /// `allow` or `deny`.
    pub outcome: String,
    /// Policy bundle revision.
    pub revision: String,
}

/// Polls every `interval` from the current end of the trail until `stop` changes.
pub async fn run_feed(
    log: AuditLog,
    sender: broadcast::Sender<Arc<LiveDecision>>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut after = match log.head().await {
        Ok(head) => head.size,
        Err(err) => {
            tracing::warn!(error = %err, "live feed starts from the beginning");
            0
        }
    };
    loop {
        match poll(&log, after).await {
            Ok(decisions) => {
                for decision in decisions {
                    after = decision.seq;
                    // No subscriber is not an error: nobody is watching.
                    let _ = sender.send(Arc::new(decision));
                }
            }
            Err(err) => tracing::warn!(error = %err, "live feed poll failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn poll(log: &AuditLog, after: i64) -> Result<Vec<LiveDecision>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, occurred_at, principal, subject, method, outcome, revision FROM audit_events \
         WHERE seq > ? AND kind = 'decision' ORDER BY seq LIMIT ?",
    )
    .bind(after)
    .bind(POLL_ROWS)
    .fetch_all(log.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LiveDecision {
                seq: row.try_get(0)?,
                occurred_at: row.try_get(1)?,
                principal: crate::queries::text(row, 2),
                subject: crate::queries::text(row, 3),
                method: crate::queries::text(row, 4),
                outcome: crate::queries::text(row, 5),
                revision: crate::queries::text(row, 6),
            })
        })
        .collect()
}
