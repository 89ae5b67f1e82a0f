//! The model registry and the per-entity risk state (tiers, scores, their history).

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::Row;

use blindledger_store::{retry_transaction, StoreError};

use super::{placeholders, score_history, text, Repo, BATCH_ROWS};
use crate::features::EntityKind;
use crate::tier::RiskTier;

/// One trained model in the registry.
#[derive(Debug, Clone)]
pub struct ModelRecord {
    /// Registry version, shared by the models of one training round.
    pub version: i64,
    /// What it scores.
    pub kind: EntityKind,
    /// When it was trained (Unix ms).
    pub trained_at: i64,
    /// Start of the training window.
    pub window_start: i64,
    /// End of the training window.
    pub window_end: i64,
    /// The feature schema (JSON: version and names).
    pub feature_schema: String,
    /// The forest parameters (JSON).
    pub params: String,
    /// Rows it was trained on.
    pub n_samples: i64,
    /// Training time.
    pub training_ms: i64,
    /// The serialised forest; `None` once older than the retention.
    pub model: Option<Vec<u8>>,
}

/// The risk state of one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRiskRow {
    /// Account or principal.
    pub kind: EntityKind,
    /// `tenant/account` or the principal.
    pub entity: String,
    /// Current tier (after hysteresis).
    pub tier: RiskTier,
    /// Latest score.
    pub score: f64,
    /// Model that gave the score.
    pub model_version: i64,
    /// Feature values by name (JSON object).
    pub features: String,
    /// Features that drove the score (JSON array).
    pub top_features: String,
    /// When the entity entered its tier.
    pub tier_since: i64,
    /// When the score was written.
    pub updated_at: i64,
}

/// One tier change, for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct TierChangeRow {
    /// Account or principal.
    pub kind: EntityKind,
    /// Its key.
    pub entity: String,
    /// Tier before.
    pub from: RiskTier,
    /// Tier after.
    pub to: RiskTier,
    /// Score that moved it.
    pub score: f64,
    /// Model that gave the score.
    pub model_version: i64,
    /// When (Unix ms).
    pub changed_at: i64,
}

const RISK_COLUMNS: &str = "kind, entity, tier, score, model_version, features, top_features, \
                            tier_since, updated_at";

impl Repo {
    /// The version the next trained models get.
    pub async fn next_model_version(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 FROM controller_models")
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Registers a model, and drops the serialised forests of versions older than the
    /// `retention` latest (their metadata stays).
    pub async fn insert_model(&self, m: &ModelRecord, retention: u32) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO controller_models (version, kind, trained_at, window_start, window_end, \
             feature_schema, params, n_samples, training_ms, model) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.kind.as_str())
        .bind(m.trained_at)
        .bind(m.window_start)
        .bind(m.window_end)
        .bind(&m.feature_schema)
        .bind(&m.params)
        .bind(m.n_samples)
        .bind(m.training_ms)
        .bind(m.model.clone())
        .execute(self.db.pool())
        .await?;
        sqlx::query(
            "UPDATE controller_models SET model = NULL WHERE version <= ? AND model IS NOT NULL",
        )
        .bind(m.version - i64::from(retention.max(1)))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// The latest model of `kind` that still has its forest.
    pub async fn latest_model(&self, kind: EntityKind) -> Result<Option<ModelRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT version, trained_at, window_start, window_end, feature_schema, params, \
             n_samples, training_ms, model FROM controller_models \
             WHERE kind = ? AND model IS NOT NULL ORDER BY version DESC LIMIT 1",
        )
        .bind(kind.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(ModelRecord {
                version: row.try_get(0)?,
                kind,
                trained_at: row.try_get(1)?,
                window_start: row.try_get(2)?,
                window_end: row.try_get(3)?,
                feature_schema: text(&row, 4)?,
                params: text(&row, 5)?,
                n_samples: row.try_get(6)?,
                training_ms: row.try_get(7)?,
                model: row.try_get(8)?,
            })
        })
        .transpose()
    }

    /// The current tier and its start time of every entity of `kind`.
    pub async fn current_tiers(
        &self,
        kind: EntityKind,
    ) -> Result<HashMap<String, (RiskTier, i64)>, StoreError> {
        let mut rows = sqlx::query(
            "SELECT entity, tier, tier_since FROM controller_entity_risk WHERE kind = ?",
        )
        .bind(kind.as_str())
        .fetch(self.db.pool());
        let mut tiers = HashMap::new();
        while let Some(row) = rows.try_next().await? {
            let tier: &str = row.try_get(1)?;
            let tier = tier.parse().map_err(|e: String| decode_error(e))?;
            tiers.insert(row.try_get::<String, _>(0)?, (tier, row.try_get(2)?));
        }
        Ok(tiers)
    }

    /// Writes the scored entities, the tier changes and the score history of one cycle, in
    /// one transaction.
    pub async fn save_risk(
        &self,
        rows: &[EntityRiskRow],
        changes: &[TierChangeRow],
    ) -> Result<(), StoreError> {
        retry_transaction("controller_save_risk", || self.try_save_risk(rows, changes)).await
    }

    async fn try_save_risk(
        &self,
        rows: &[EntityRiskRow],
        changes: &[TierChangeRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        for chunk in rows.chunks(BATCH_ROWS) {
            let sql = format!(
                "REPLACE INTO controller_entity_risk ({RISK_COLUMNS}) VALUES {}",
                placeholders(chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for r in chunk {
                query = query
                    .bind(r.kind.as_str())
                    .bind(&r.entity)
                    .bind(r.tier.as_str())
                    .bind(r.score)
                    .bind(r.model_version)
                    .bind(&r.features)
                    .bind(&r.top_features)
                    .bind(r.tier_since)
                    .bind(r.updated_at);
            }
            query.execute(&mut *tx).await?;
        }
        for c in changes {
            sqlx::query(
                "INSERT INTO controller_tier_changes (kind, entity, from_tier, to_tier, score, \
                 model_version, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.kind.as_str())
            .bind(&c.entity)
            .bind(c.from.as_str())
            .bind(c.to.as_str())
            .bind(c.score)
            .bind(c.model_version)
            .bind(c.changed_at)
            .execute(&mut *tx)
            .await?;
        }
        score_history::append(&mut tx, rows, changes).await?;
        Ok(tx.commit().await?)
    }

    /// Entities of `kind` (all kinds when `None`) whose tier is at least `min_tier`, highest
    /// score first, at most `limit`.
    pub async fn risk_rows(
        &self,
        kind: Option<EntityKind>,
        min_tier: RiskTier,
        limit: u32,
    ) -> Result<Vec<EntityRiskRow>, StoreError> {
        let tiers: Vec<&str> = RiskTier::ALL
            .iter()
            .filter(|t| **t >= min_tier)
            .map(|t| t.as_str())
            .collect();
        let kinds: Vec<&str> = match kind {
            Some(kind) => vec![kind.as_str()],
            None => EntityKind::ALL.iter().map(|k| k.as_str()).collect(),
        };
        let sql = format!(
            "SELECT {RISK_COLUMNS} FROM controller_entity_risk WHERE tier IN ({}) AND kind IN ({}) \
             ORDER BY score DESC, entity LIMIT ?",
            vec!["?"; tiers.len()].join(", "),
            vec!["?"; kinds.len()].join(", "),
        );
        let mut query = sqlx::query(&sql);
        for value in tiers.iter().chain(&kinds) {
            query = query.bind(*value);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(risk_row).collect()
    }

    /// The latest tier changes, newest first.
    pub async fn tier_changes(&self, limit: u32) -> Result<Vec<TierChangeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, entity, from_tier, to_tier, score, model_version, changed_at \
             FROM controller_tier_changes ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TierChangeRow {
                    kind: parse_kind(row.try_get(0)?)?,
                    entity: row.try_get(1)?,
                    from: parse_tier(row.try_get(2)?)?,
                    to: parse_tier(row.try_get(3)?)?,
                    score: row.try_get(4)?,
                    model_version: row.try_get(5)?,
                    changed_at: row.try_get(6)?,
                })
            })
            .collect()
    }
}

fn risk_row(row: &AnyRow) -> Result<EntityRiskRow, StoreError> {
    Ok(EntityRiskRow {
        kind: parse_kind(row.try_get(0)?)?,
        entity: row.try_get(1)?,
        tier: parse_tier(row.try_get(2)?)?,
        score: row.try_get(3)?,
        model_version: row.try_get(4)?,
        features: text(row, 5)?,
        top_features: text(row, 6)?,
        tier_since: row.try_get(7)?,
        updated_at: row.try_get(8)?,
    })
}

fn parse_tier(text: &str) -> Result<RiskTier, StoreError> {
    text.parse().map_err(decode_error)
}

fn parse_kind(text: &str) -> Result<EntityKind, StoreError> {
    EntityKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| decode_error(format!("unknown entity kind '{text}'")))
}

fn decode_error(message: String) -> StoreError {
    StoreError::Other(sqlx::Error::Decode(message.into()))
}
