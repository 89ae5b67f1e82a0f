//! Figures of the overview page.

use std::collections::BTreeMap;

use blindledger_audit::{AuditLog, Checkpoint};
use serde::Serialize;
use sqlx::Row;

use super::text;

/// Minutes shown in the jobs-per-minute chart.
pub const MINUTES: i64 = 15;

/// What the overview shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overview {
    /// Jobs submitted per minute, oldest first, over the last [`MINUTES`] minutes.
    pub jobs_per_minute: Vec<i64>,
    /// Decisions in the last hour.
    pub decisions_last_hour: i64,
    /// Denials in the last hour.
    pub denials_last_hour: i64,
    /// Active revision of each bundle (its latest activation) and when.
    pub bundles: BTreeMap<String, (String, i64)>,
    /// Revision of the newest decision.
    pub deciding_revision: Option<String>,
    /// Scored entities per risk tier.
    pub tiers: BTreeMap<String, i64>,
    /// Rows in the audit trail.
    pub chain_size: i64,
    /// The latest checkpoint.
    pub checkpoint: Option<Checkpoint>,
}

/// Reads the overview as of `now`.
pub async fn overview(log: &AuditLog, now: i64) -> Result<Overview, sqlx::Error> {
    let mut view = Overview {
        chain_size: log.head().await.map(|h| h.size).unwrap_or_default(),
        checkpoint: log.latest_checkpoint().await.ok().flatten(),
        ..Overview::default()
    };
    for minute in (0..MINUTES).rev() {
        let start = now - (minute + 1) * 60_000;
        let count = count(
            log,
            "SELECT COUNT(*) FROM ledger_job_feed WHERE created_at >= ? AND created_at < ?",
            &[start, start + 60_000],
        )
        .await?;
        view.jobs_per_minute.push(count);
    }
    let hour = now - 3_600_000;
    view.decisions_last_hour = count(
        log,
        "SELECT COUNT(*) FROM audit_events WHERE kind = 'decision' AND occurred_at >= ?",
        &[hour],
    )
    .await?;
    view.denials_last_hour = count(
        log,
        "SELECT COUNT(*) FROM audit_events WHERE outcome = 'deny' AND kind = 'decision' \
         AND occurred_at >= ?",
        &[hour],
    )
    .await?;
    view.bundles = bundles(log).await?;
    view.deciding_revision = sqlx::query(
        "SELECT revision FROM audit_events WHERE kind = 'decision' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(log.pool())
    .await?
    .map(|row| text(&row, 0));
    view.tiers = tiers(log).await;
    Ok(view)
}

async fn count(log: &AuditLog, sql: &str, values: &[i64]) -> Result<i64, sqlx::Error> {
    let mut query = sqlx::query(sql);
    for value in values {
        query = query.bind(*value);
    }
    query.fetch_one(log.pool()).await?.try_get(0)
}

/// The latest activation of each bundle.
async fn bundles(log: &AuditLog) -> Result<BTreeMap<String, (String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subject, revision, occurred_at FROM audit_events WHERE kind = 'bundle_activation' \
         ORDER BY occurred_at DESC LIMIT 200",
    )
    .fetch_all(log.pool())
    .await?;
    let mut bundles = BTreeMap::new();
    for row in &rows {
        let name = text(row, 0).trim_start_matches("bundle:").to_owned();
        let at: i64 = row.try_get(2)?;
        bundles.entry(name).or_insert((text(row, 1), at));
    }
    Ok(bundles)
}

/// Entities per tier from the controller's table; empty where the controller never ran.
async fn tiers(log: &AuditLog) -> BTreeMap<String, i64> {
    let rows = sqlx::query("SELECT tier, COUNT(*) FROM controller_risk_feed GROUP BY tier")
        .fetch_all(log.pool())
        .await;
    match rows {
        Ok(rows) => rows
            .iter()
            .map(|row| (text(row, 0), row.try_get(1).unwrap_or_default()))
            .collect(),
        Err(err) => {
            tracing::debug!(error = %err, "no risk tiers");
            BTreeMap::new()
        }
    }
}
