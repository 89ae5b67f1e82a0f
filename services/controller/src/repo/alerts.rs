//! The alert outbox: alerts are written here by the cycle and delivered by a background
//! task, so a slow or absent receiver never holds up the controller.

use sqlx::Row;

use blindledger_store::{retry_transaction, StoreError};

use super::{text, Repo};

/// An alert to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// What makes two alerts the same (`tier:acme/alice:high`, `bundle:blindledger:r2`).
    pub dedupe_key: String,
    /// The webhook body (JSON).
    pub payload: String,
}

/// An undelivered alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAlert {
    /// Outbox sequence number.
    pub seq: i64,
    /// Its dedupe key.
    pub dedupe_key: String,
    /// The webhook body (JSON).
    pub payload: String,
    /// Failed deliveries so far.
    pub attempts: i64,
}

impl Repo {
    /// Queues `alert` unless one with the same key was queued at or after `since` (Unix
    /// ms); says whether it was queued.
    pub async fn enqueue_alert(
        &self,
        alert: &NewAlert,
        now: i64,
        since: i64,
    ) -> Result<bool, StoreError> {
        retry_transaction("controller_enqueue_alert", || {
            self.try_enqueue_alert(alert, now, since)
        })
        .await
    }

    async fn try_enqueue_alert(
        &self,
        alert: &NewAlert,
        now: i64,
        since: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let duplicate =
            sqlx::query("SELECT 1 FROM controller_alerts WHERE dedupe_key = ? AND created_at >= ?")
                .bind(&alert.dedupe_key)
                .bind(since)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !duplicate {
            sqlx::query(
                "INSERT INTO controller_alerts (dedupe_key, payload, created_at, attempts, \
                 next_attempt_at) VALUES (?, ?, ?, 0, ?)",
            )
            .bind(&alert.dedupe_key)
            .bind(&alert.payload)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(!duplicate)
    }

    /// Undelivered alerts due at `now`, oldest first.
    pub async fn due_alerts(&self, now: i64, limit: u32) -> Result<Vec<PendingAlert>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, dedupe_key, payload, attempts FROM controller_alerts \
             WHERE delivered_at IS NULL AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingAlert {
                    seq: row.try_get(0)?,
                    dedupe_key: row.try_get(1)?,
                    payload: text(row, 2)?,
                    attempts: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// When the next undelivered alert is due, if any.
    pub async fn next_alert_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM controller_alerts WHERE delivered_at IS NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Undelivered alerts.
    pub async fn undelivered_alerts(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM controller_alerts WHERE delivered_at IS NULL")
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Marks an alert delivered.
    pub async fn alert_delivered(&self, seq: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE controller_alerts SET delivered_at = ? WHERE seq = ?")
            .bind(now)
            .bind(seq)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records a failed delivery and when to try again.
    pub async fn alert_failed(
        &self,
        seq: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE controller_alerts SET attempts = attempts + 1, next_attempt_at = ?, \
             last_error = ? WHERE seq = ?",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(seq)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
