//! Principals and accounts needing attention, each with its reason.

use blindledger_audit::AuditLog;
use serde::Serialize;
use sqlx::Row;

use super::text;

/// Denials in the window that make a principal worth a look.
pub const REPEATED_DENIALS: i64 = 3;
/// The window of the attention list: 24 hours.
pub const WINDOW_MS: i64 = 24 * 3_600_000;
/// Tenant keys older than this are stale: 90 days.
pub const STALE_KEY_MS: i64 = 90 * 24 * 3_600_000;

/// One entry of the attention list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attention {
    /// `principal`, `account`, `tenant` or `officer`.
    pub kind: &'static str,
    /// Who or what.
    pub entity: String,
    /// Why, in words.
    pub reason: String,
    /// When it started or was last seen (Unix ms).
    pub since: i64,
}

/// The attention list as of `now`: repeated denials, frozen accounts, high risk tiers,
/// stale tenant keys and rejected admin commands.
pub async fn attention(log: &AuditLog, now: i64) -> Result<Vec<Attention>, sqlx::Error> {
    let mut list = Vec::new();
    let rows = sqlx::query(
        "SELECT principal, COUNT(*), MAX(occurred_at) FROM audit_events \
         WHERE outcome = 'deny' AND kind = 'decision' AND occurred_at >= ? \
         GROUP BY principal HAVING COUNT(*) >= ? ORDER BY COUNT(*) DESC LIMIT 50",
    )
    .bind(now - WINDOW_MS)
    .bind(REPEATED_DENIALS)
    .fetch_all(log.pool())
    .await?;
    for row in &rows {
        let denials: i64 = row.try_get(1)?;
        list.push(Attention {
            kind: "principal",
            entity: text(row, 0),
            reason: format!("repeated denials: {denials} in 24 h"),
            since: row.try_get(2)?,
        });
    }
    for frozen in log
        .frozen_accounts()
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
    {
        list.push(Attention {
            kind: "account",
            entity: format!("{}/{}", frozen.tenant, frozen.account),
            reason: format!("frozen by {}: {}", frozen.officer, frozen.reason),
            since: frozen.since,
        });
    }
    list.extend(optional(high_tiers(log).await));
    list.extend(optional(stale_keys(log, now).await));
    list.extend(rejected_commands(log, now).await?);
    Ok(list)
}

/// Rows from another service's table, empty when that table is absent.
fn optional(rows: Result<Vec<Attention>, sqlx::Error>) -> Vec<Attention> {
    rows.unwrap_or_else(|err| {
        tracing::debug!(error = %err, "attention source unavailable");
        Vec::new()
    })
}

async fn high_tiers(log: &AuditLog) -> Result<Vec<Attention>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, entity, tier, tier_since FROM controller_entity_risk \
         WHERE tier IN ('high', 'blocked') ORDER BY score DESC LIMIT 50",
    )
    .fetch_all(log.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Attention {
                kind: if text(row, 0) == "principal" {
                    "principal"
                } else {
                    "account"
                },
                entity: text(row, 1),
                reason: format!("risk tier {}", text(row, 2)),
                since: row.try_get(3)?,
            })
        })
        .collect()
}

async fn stale_keys(log: &AuditLog, now: i64) -> Result<Vec<Attention>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, updated_at FROM tenants WHERE updated_at < ? LIMIT 50")
        .bind(now - STALE_KEY_MS)
        .fetch_all(log.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Attention {
                kind: "tenant",
                entity: text(row, 0),
                reason: "stale keys: registered more than 90 days ago".into(),
                since: row.try_get(1)?,
            })
        })
        .collect()
}

async fn rejected_commands(log: &AuditLog, now: i64) -> Result<Vec<Attention>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT principal, summary, occurred_at FROM audit_events WHERE outcome = 'rejected' \
         AND kind = 'admin_command' AND occurred_at >= ? ORDER BY occurred_at DESC LIMIT 20",
    )
    .bind(now - WINDOW_MS)
    .fetch_all(log.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let summary: serde_json::Value =
                serde_json::from_str(&text(row, 1)).unwrap_or_default();
            Ok(Attention {
                kind: "officer",
                entity: text(row, 0),
                reason: format!(
                    "admin command rejected: {}",
                    summary["rejection"].as_str().unwrap_or("?")
                ),
                since: row.try_get(2)?,
            })
        })
        .collect()
}
