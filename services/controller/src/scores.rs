//! The current risk picture, for `blindledger risk scores` and the dashboard: each
//! entity's tier, score and the features that drove it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::controller::Controller;
use crate::error::Result;
use crate::features::EntityKind;
use crate::repo::TierChangeRow;
use crate::risk_bundle::RISK_BUNDLE;
use crate::tier::RiskTier;

/// Most entities listed when no limit is given.
const DEFAULT_LIMIT: u32 = 100;

/// Which entities to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoresQuery {
    /// Only accounts or only principals.
    pub kind: Option<EntityKind>,
    /// Only entities at or above this tier.
    pub min_tier: Option<RiskTier>,
    /// At most this many (default 100), highest score first.
    pub limit: Option<u32>,
}

/// Scored entities and recent tier changes.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    /// The risk bundle revision served now.
    pub risk_revision: Option<String>,
    /// Entities, highest score first.
    pub entities: Vec<EntityScore>,
    /// The latest tier changes, newest first.
    pub recent_changes: Vec<TierChangeView>,
}

/// One entity's risk.
#[derive(Debug, Clone, Serialize)]
pub struct EntityScore {
    /// Account or principal.
    pub kind: EntityKind,
    /// `tenant/account` or the principal.
    pub entity: String,
    /// Current tier.
    pub tier: RiskTier,
    /// Latest score, in (0, 1]; above 0.5 is unusual.
    pub score: f64,
    /// Model that gave the score.
    pub model_version: i64,
    /// Since when the entity is in its tier (Unix ms).
    pub tier_since: i64,
    /// When it was last scored (Unix ms).
    pub updated_at: i64,
    /// Feature values by name.
    pub features: Value,
    /// The features furthest from the population (`name`, `value`, `z`).
    pub top_features: Value,
}

/// One tier change.
#[derive(Debug, Clone, Serialize)]
pub struct TierChangeView {
    /// Account or principal.
    pub kind: EntityKind,
    /// Its key.
    pub entity: String,
    /// Tier before.
    pub from: RiskTier,
    /// Tier after.
    pub to: RiskTier,
    /// The score that moved it.
    pub score: f64,
    /// When (Unix ms).
    pub changed_at: i64,
}

impl From<TierChangeRow> for TierChangeView {
    fn from(row: TierChangeRow) -> Self {
        TierChangeView {
            kind: row.kind,
            entity: row.entity,
            from: row.from,
            to: row.to,
            score: row.score,
            changed_at: row.changed_at,
        }
    }
}

impl Controller {
    /// The entities selected by `query`, with the latest tier changes.
    pub async fn scores(&self, query: &ScoresQuery) -> Result<Scores> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        let min_tier = query.min_tier.unwrap_or(RiskTier::Low);
        let rows = self.repo.risk_rows(query.kind, min_tier, limit).await?;
        let entities = rows
            .into_iter()
            .map(|row| EntityScore {
                kind: row.kind,
                features: serde_json::from_str(&row.features).unwrap_or(Value::Null),
                top_features: serde_json::from_str(&row.top_features).unwrap_or(Value::Null),
                entity: row.entity,
                tier: row.tier,
                score: row.score,
                model_version: row.model_version,
                tier_since: row.tier_since,
                updated_at: row.updated_at,
            })
            .collect();
        let recent_changes = self.repo.tier_changes(limit.min(DEFAULT_LIMIT)).await?;
        Ok(Scores {
            risk_revision: self
                .bundles
                .get(RISK_BUNDLE)
                .map(|b| b.revision().to_string()),
            entities,
            recent_changes: recent_changes.into_iter().map(Into::into).collect(),
        })
    }
}
