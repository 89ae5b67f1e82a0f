//! Principals and accounts needing attention, each with its reason.

use blindledger_audit::AuditLog;
use serde::Serialize;
use sqlx::any::AnyRow;
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
    /// `principal`, `account`, `tenant`, `officer` or `audit trail`.
    pub kind: &'static str,
    /// Who or what.
    pub entity: String,
    /// Why, in words.
    pub reason: String,
    /// When it started or was last seen (Unix ms).
    pub since: i64,
}

/// A source row not in the trail this long after it was written means the import is
/// stuck or behind: one minute (the importer runs every second or so).
pub const LAG_MS: i64 = 60_000;

/// The attention list as of `now`: an audit trail lagging its sources or with rows set
/// aside, repeated denials, frozen accounts, high risk tiers, stale tenant keys and
/// rejected admin commands.
pub async fn attention(log: &AuditLog, now: i64) -> Result<Vec<Attention>, sqlx::Error> {
    let mut list = trail_lag(log, now).await;
    list.extend(set_aside(log).await?);
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
        "SELECT kind, entity, tier, tier_since FROM controller_risk_feed \
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
    let rows = sqlx::query(
        "SELECT name, updated_at FROM ledger_tenant_feed WHERE updated_at < ? LIMIT 50",
    )
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
    from_events(&rows, "officer", |summary| {
        format!(
            "admin command rejected: {}",
            summary["rejection"].as_str().unwrap_or("?")
        )
    })
}

/// Attention entries from audit events read as `(entity, summary, occurred_at)` rows, each
/// with the reason `reason` makes of its summary.
fn from_events(
    rows: &[AnyRow],
    kind: &'static str,
    reason: impl Fn(&serde_json::Value) -> String,
) -> Result<Vec<Attention>, sqlx::Error> {
    rows.iter()
        .map(|row| {
            let summary: serde_json::Value =
                serde_json::from_str(&text(row, 1)).unwrap_or_default();
            Ok(Attention {
                kind,
                entity: text(row, 0),
                reason: reason(&summary),
                since: row.try_get(2)?,
            })
        })
        .collect()
}

/// Each source the trail lags: rows written more than [`LAG_MS`] ago and not imported yet.
/// A source that cannot be read is listed too: a trail whose lag is unknown needs a look.
async fn trail_lag(log: &AuditLog, now: i64) -> Vec<Attention> {
    let mut list = Vec::new();
    for (source, lag) in source_lags(log).await {
        match lag {
            Ok(Some((rows, oldest))) if now - oldest > LAG_MS => list.push(Attention {
                kind: "audit trail",
                entity: source.to_owned(),
                reason: format!(
                    "the trail lags its source: {rows} rows not imported, the oldest written {} s ago",
                    (now - oldest) / 1000
                ),
                since: oldest,
            }),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(source, %error, "audit trail lag unknown");
                list.push(Attention {
                    kind: "audit trail",
                    entity: source.to_owned(),
                    reason: "lag unknown: the source cannot be read".into(),
                    since: now,
                });
            }
        }
    }
    list
}

/// For each source table the importer reads: how many rows wait past its position and when
/// the oldest was written (none when nothing waits).
pub async fn source_lags(
    log: &AuditLog,
) -> Vec<(&'static str, Result<Option<(i64, i64)>, sqlx::Error>)> {
    let mut lags = Vec::new();
    for (source, pending) in [
        (
            "decision_log",
            "SELECT COUNT(*), MIN(logged_at) FROM decision_log WHERE seq > ?",
        ),
        (
            "controller_activations",
            "SELECT COUNT(*), MIN(activated_at) FROM controller_activation_feed WHERE seq > ?",
        ),
        (
            "jobs",
            "SELECT COUNT(*), MIN(updated_at) FROM ledger_job_feed WHERE updated_at > ?",
        ),
    ] {
        lags.push((source, lag(log, source, pending).await));
    }
    lags
}

/// Rows of `source` past the importer's position, and when the oldest was written.
async fn lag(
    log: &AuditLog,
    source: &str,
    pending: &str,
) -> Result<Option<(i64, i64)>, sqlx::Error> {
    let position = log
        .import_position(source)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let row = sqlx::query(pending)
        .bind(position)
        .fetch_one(log.pool())
        .await?;
    let rows: i64 = row.try_get(0)?;
    let oldest: Option<i64> = row.try_get(1)?;
    Ok(oldest.filter(|_| rows > 0).map(|oldest| (rows, oldest)))
}

/// Source rows the importer set aside, newest first: each stays in its table, and the
/// trail records which and why.
async fn set_aside(log: &AuditLog) -> Result<Vec<Attention>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT subject, summary, occurred_at FROM audit_events WHERE kind = 'import_set_aside' \
         ORDER BY seq DESC LIMIT 50",
    )
    .fetch_all(log.pool())
    .await?;
    from_events(&rows, "audit trail", |summary| {
        format!(
            "row set aside by the importer: {}",
            summary["reason"].as_str().unwrap_or("?")
        )
    })
}
