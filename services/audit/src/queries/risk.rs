//! Risk tiers from the controller's tables: the accounts and principals above `low`,
//! newest escalations first, each with its recent scores, and the latest tier changes.
//!
//! Elevated entities are paged by keyset on `(tier_since, kind, entity)`, read through the
//! `(tier, tier_since)` index; each one's chart reads at most [`CHART_POINTS`] rows of the
//! `(kind, entity, scored_at)` index of `controller_score_history`. The controller records
//! scores only for elevated entities or on a tier change, and keeps 30 days of them.

use blindledger_audit::AuditLog;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::text;

/// Elevated entities per page.
pub const PAGE_SIZE: i64 = 50;
/// The newest scores drawn in an entity's chart.
pub const CHART_POINTS: i64 = 120;
/// Tier changes listed.
pub const TIER_CHANGES: i64 = 50;
/// Features named per entity.
const TOP_FEATURES: usize = 3;

/// An account or principal above tier `low`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElevatedEntity {
    /// `account` or `principal`.
    pub kind: String,
    /// `tenant/account`, or the principal.
    pub entity: String,
    /// `medium`, `high` or `blocked`.
    pub tier: String,
    /// Latest score (isolation forest, 0 to 1).
    pub score: f64,
    /// Model that gave the score.
    pub model_version: i64,
    /// Features that drove the score, with their z-scores, strongest first.
    pub top_features: Vec<(String, f64)>,
    /// When it entered its tier (Unix ms).
    pub tier_since: i64,
    /// When it was last scored.
    pub updated_at: i64,
    /// Its recorded scores, oldest first.
    pub history: Vec<ScorePoint>,
}

/// One recorded score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScorePoint {
    /// When (Unix ms).
    pub at: i64,
    /// The score.
    pub score: f64,
}

/// One tier change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierChange {
    /// `account` or `principal`.
    pub kind: String,
    /// Who.
    pub entity: String,
    /// Tier before.
    pub from: String,
    /// Tier after.
    pub to: String,
    /// The score that moved it.
    pub score: f64,
    /// Model that gave the score.
    pub model_version: i64,
    /// When (Unix ms).
    pub changed_at: i64,
}

/// What the risk page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RiskView {
    /// A page of elevated entities, newest escalations first.
    pub entities: Vec<ElevatedEntity>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// The latest tier changes, newest first.
    pub changes: Vec<TierChange>,
}

/// Keyset cursor: `tier_since:kind:entity` of the last entity of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskCursor {
    tier_since: i64,
    kind: String,
    entity: String,
}

impl RiskCursor {
    /// Parses a cursor as written in the next-page link (`None` when malformed).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ':');
        let tier_since = parts.next()?.parse().ok()?;
        let (kind, entity) = (parts.next()?, parts.next()?);
        Some(RiskCursor {
            tier_since,
            kind: kind.to_owned(),
            entity: entity.to_owned(),
        })
    }
}

/// A page of elevated entities starting after `after`, with their charts, and the latest
/// tier changes.
pub async fn risk(log: &AuditLog, after: Option<&RiskCursor>) -> Result<RiskView, sqlx::Error> {
    let mut sql = String::from(
        "SELECT kind, entity, tier, score, model_version, top_features, tier_since, updated_at \
         FROM controller_risk_feed WHERE tier IN ('medium', 'high', 'blocked')",
    );
    if after.is_some() {
        sql.push_str(
            " AND (tier_since < ? OR (tier_since = ? AND (kind > ? OR (kind = ? AND entity > ?))))",
        );
    }
    sql.push_str(" ORDER BY tier_since DESC, kind, entity LIMIT ?");
    let mut query = sqlx::query(&sql);
    if let Some(c) = after {
        query = query.bind(c.tier_since).bind(c.tier_since);
        query = query.bind(c.kind.as_str()).bind(c.kind.as_str());
        query = query.bind(c.entity.as_str());
    }
    let rows = query.bind(PAGE_SIZE + 1).fetch_all(log.pool()).await?;
    let mut entities = rows.iter().map(elevated).collect::<Result<Vec<_>, _>>()?;
    let next = (entities.len() as i64 > PAGE_SIZE).then(|| {
        entities.truncate(PAGE_SIZE as usize);
        let last = &entities[entities.len() - 1];
        format!("{}:{}:{}", last.tier_since, last.kind, last.entity)
    });
    for entity in &mut entities {
        entity.history = history(log, &entity.kind, &entity.entity).await?;
    }
    Ok(RiskView {
        entities,
        next,
        changes: tier_changes(log).await?,
    })
}

fn elevated(row: &AnyRow) -> Result<ElevatedEntity, sqlx::Error> {
    Ok(ElevatedEntity {
        kind: text(row, 0),
        entity: text(row, 1),
        tier: text(row, 2),
        score: row.try_get(3)?,
        model_version: row.try_get(4)?,
        top_features: top_features(&text(row, 5)),
        tier_since: row.try_get(6)?,
        updated_at: row.try_get(7)?,
        history: Vec::new(),
    })
}

/// Names and z-scores of the controller's `top_features` JSON (`[{name, value, z}]`);
/// feature values are left out.
fn top_features(json: &str) -> Vec<(String, f64)> {
    let features: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    features
        .iter()
        .filter_map(|f| {
            Some((
                f["name"].as_str()?.to_owned(),
                f["z"].as_f64().unwrap_or(0.0),
            ))
        })
        .take(TOP_FEATURES)
        .collect()
}

/// The newest [`CHART_POINTS`] scores of one entity, oldest first.
async fn history(log: &AuditLog, kind: &str, entity: &str) -> Result<Vec<ScorePoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT scored_at, score FROM controller_score_feed WHERE kind = ? AND entity = ? \
         ORDER BY scored_at DESC LIMIT ?",
    )
    .bind(kind)
    .bind(entity)
    .bind(CHART_POINTS)
    .fetch_all(log.pool())
    .await?;
    let mut points = rows
        .iter()
        .map(|row| {
            Ok(ScorePoint {
                at: row.try_get(0)?,
                score: row.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    points.reverse();
    Ok(points)
}

async fn tier_changes(log: &AuditLog) -> Result<Vec<TierChange>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, entity, from_tier, to_tier, score, model_version, changed_at \
         FROM controller_tier_change_feed ORDER BY seq DESC LIMIT ?",
    )
    .bind(TIER_CHANGES)
    .fetch_all(log.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(TierChange {
                kind: text(row, 0),
                entity: text(row, 1),
                from: text(row, 2),
                to: text(row, 3),
                score: row.try_get(4)?,
                model_version: row.try_get(5)?,
                changed_at: row.try_get(6)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_keep_colons_in_the_entity() {
        let cursor = RiskCursor::parse("1700000000000:principal:spiffe://acme/teller").unwrap();
        assert_eq!(cursor.tier_since, 1_700_000_000_000);
        assert_eq!(cursor.kind, "principal");
        assert_eq!(cursor.entity, "spiffe://acme/teller");
        assert_eq!(RiskCursor::parse("soon:account:acme/a"), None);
        assert_eq!(RiskCursor::parse("17:account"), None);
    }

    #[test]
    fn top_features_keep_names_and_z_scores_only() {
        let json =
            r#"[{"name":"night_share","value":0.9,"z":4.25},{"name":"calls","value":3,"z":1}]"#;
        assert_eq!(
            top_features(json),
            [("night_share".to_owned(), 4.25), ("calls".to_owned(), 1.0)]
        );
        assert!(top_features("not json").is_empty());
    }
}
