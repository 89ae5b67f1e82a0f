//! The score history behind the dashboard's charts (`controller_score_history`), written
//! with the tiers it explains.
//!
//! Only entities worth a chart are recorded: each cycle adds one row for every scored
//! entity whose tier after the cycle is above `low` or whose tier changed in the cycle, so
//! the table grows with the elevated entities, not with every active account. Rows older
//! than [`SCORE_HISTORY_RETENTION_MS`] are deleted in the same transaction.

use std::collections::HashSet;

use sqlx::AnyConnection;

use blindledger_store::StoreError;

use super::{placeholders, BATCH_ROWS};
use super::{EntityRiskRow, TierChangeRow};
use crate::tier::RiskTier;

/// How long score history is kept: 30 days. A constant rather than a configuration key;
/// the charts show weeks, not months.
pub const SCORE_HISTORY_RETENTION_MS: i64 = 30 * 24 * 3_600_000;

/// Appends the history rows of one cycle's `rows` (scored entities, tiers after the cycle)
/// and `changes`, then deletes rows older than the retention, on `conn` (the caller's
/// transaction).
pub(super) async fn append(
    conn: &mut AnyConnection,
    rows: &[EntityRiskRow],
    changes: &[TierChangeRow],
) -> Result<(), StoreError> {
    let changed: HashSet<(&str, &str)> = changes
        .iter()
        .map(|c| (c.kind.as_str(), c.entity.as_str()))
        .collect();
    let recorded: Vec<&EntityRiskRow> = rows
        .iter()
        .filter(|r| {
            r.tier > RiskTier::Low || changed.contains(&(r.kind.as_str(), r.entity.as_str()))
        })
        .collect();
    for chunk in recorded.chunks(BATCH_ROWS) {
        let sql = format!(
            "INSERT INTO controller_score_history (kind, entity, score, tier, model_version, \
             scored_at) VALUES {}",
            placeholders(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            query = query
                .bind(r.kind.as_str())
                .bind(&r.entity)
                .bind(r.score)
                .bind(r.tier.as_str())
                .bind(r.model_version)
                .bind(r.updated_at);
        }
        query.execute(&mut *conn).await?;
    }
    if let Some(scored_at) = rows.iter().map(|r| r.updated_at).max() {
        sqlx::query("DELETE FROM controller_score_history WHERE scored_at < ?")
            .bind(scored_at - SCORE_HISTORY_RETENTION_MS)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
