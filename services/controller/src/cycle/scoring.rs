//! Scoring one kind of entity: the model (reused or trained and registered), the scores
//! and their explanations, and the tiers they move.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use blindledger_store::now_ms;

use super::{KindReport, TierChange};
use crate::controller::Controller;
use crate::error::Result;
use crate::features::{EntityFeatures, EntityKind, FeatureWindow, FEATURE_NAMES};
use crate::metrics;
use crate::model::{self, ScoringModel, TopFeature};
use crate::repo::{EntityRiskRow, TierChangeRow};
use crate::tier::RiskTier;

/// One entity's scoring result.
struct Scored {
    score: f64,
    top: Vec<TopFeature>,
}

impl Controller {
    /// Scores one kind and updates its tiers; skipped with a reason when too few entities
    /// are active to learn what is ordinary.
    pub(super) async fn score_kind(
        &self,
        kind: EntityKind,
        entities: Arc<Vec<EntityFeatures>>,
        window: &FeatureWindow,
        retrain: bool,
    ) -> Result<KindReport> {
        let mut report = KindReport {
            kind,
            entities: entities.len(),
            model_version: None,
            trained: false,
            skipped: None,
            tier_counts: BTreeMap::new(),
            changes: Vec::new(),
        };
        let mut tiers = self.repo.current_tiers(kind).await?;
        let minimum = self.config.min_training_rows.max(2);
        if entities.len() < minimum {
            tracing::info!(
                kind = kind.as_str(),
                entities = entities.len(),
                minimum,
                "too few active entities to train a model, tiers left as they are"
            );
            report.skipped = Some(format!(
                "{} active {}s, fewer than min_training_rows ({minimum}): no model, tiers left \
                 as they are",
                entities.len(),
                kind.as_str()
            ));
        } else {
            self.score_and_store(&mut report, &entities, window, retrain, &mut tiers)
                .await?;
        }
        for (tier, _) in tiers.values() {
            *report.tier_counts.entry(*tier).or_default() += 1;
        }
        metrics::tier_counts(kind, &report.tier_counts);
        Ok(report)
    }

    /// Scores `entities` with the current model, moves their tiers and stores both.
    async fn score_and_store(
        &self,
        report: &mut KindReport,
        entities: &Arc<Vec<EntityFeatures>>,
        window: &FeatureWindow,
        retrain: bool,
        tiers: &mut HashMap<String, (RiskTier, i64)>,
    ) -> Result<()> {
        let kind = report.kind;
        let (model, trained) = self.model_for(kind, entities, window, retrain).await?;
        report.model_version = Some(model.version);
        report.trained = trained;
        metrics::model_version(kind, model.version);
        let scored = score_blocking(model.clone(), entities.clone()).await?;
        let now = now_ms();
        let (rows, changes) = self.apply_tiers(&model, entities, scored, tiers, now);
        let change_rows: Vec<TierChangeRow> = changes
            .iter()
            .map(|c| TierChangeRow {
                kind,
                entity: c.entity.clone(),
                from: c.from,
                to: c.to,
                score: c.score,
                model_version: model.version,
                changed_at: now,
            })
            .collect();
        self.repo.save_risk(&rows, &change_rows).await?;
        report.changes = changes;
        Ok(())
    }

    /// The latest model of `kind` while it is younger than the retrain interval and reads
    /// today's features; otherwise a new one, registered. Says whether it was trained.
    async fn model_for(
        &self,
        kind: EntityKind,
        entities: &Arc<Vec<EntityFeatures>>,
        window: &FeatureWindow,
        retrain: bool,
    ) -> Result<(ScoringModel, bool)> {
        let wall = now_ms();
        let max_age = i64::try_from(self.config.retrain_interval_ms).unwrap_or(i64::MAX);
        if !retrain {
            if let Some(record) = self.repo.latest_model(kind).await? {
                let fresh = wall.saturating_sub(record.trained_at) < max_age;
                if let (true, Some(model)) = (fresh, model::load(&record)?) {
                    return Ok((model, false));
                }
            }
        }
        let version = self.repo.next_model_version().await?;
        let (entities, window, seed) = (entities.clone(), *window, self.config.model_seed);
        let started = Instant::now();
        let (model, record) = tokio::task::spawn_blocking(move || {
            model::train(kind, &entities, &window, version, seed, wall)
        })
        .await
        .context("training task")??;
        metrics::training(kind, started.elapsed());
        self.repo
            .insert_model(&record, self.config.model_retention)
            .await?;
        tracing::info!(
            kind = kind.as_str(),
            version,
            n_samples = record.n_samples,
            training_ms = record.training_ms,
            "model trained"
        );
        Ok((model, true))
    }

    /// Moves each scored entity's tier (with hysteresis) and returns the rows to store and
    /// the changes; `tiers` is updated in place.
    fn apply_tiers(
        &self,
        model: &ScoringModel,
        entities: &[EntityFeatures],
        scored: Vec<Scored>,
        tiers: &mut HashMap<String, (RiskTier, i64)>,
        now: i64,
    ) -> (Vec<EntityRiskRow>, Vec<TierChange>) {
        let mut rows = Vec::with_capacity(entities.len());
        let mut changes = Vec::new();
        for (entity, scored) in entities.iter().zip(scored) {
            let (current, since) = tiers
                .get(&entity.key)
                .copied()
                .unwrap_or((RiskTier::Low, now));
            let next = self.config.thresholds.next_tier(current, scored.score);
            let since = if next == current { since } else { now };
            tiers.insert(entity.key.clone(), (next, since));
            rows.push(risk_row(model, entity, &scored, next, since, now));
            if next != current {
                changes.push(TierChange {
                    entity: entity.key.clone(),
                    from: current,
                    to: next,
                    score: scored.score,
                    top_features: scored.top,
                });
            }
        }
        (rows, changes)
    }
}

/// Scores and explains `entities` on a blocking thread.
async fn score_blocking(
    model: ScoringModel,
    entities: Arc<Vec<EntityFeatures>>,
) -> Result<Vec<Scored>> {
    let task = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Scored>> {
        let scores = model::score(&model, &entities)?;
        let top = model::explain(&entities);
        Ok(scores
            .into_iter()
            .zip(top)
            .map(|(score, top)| Scored { score, top })
            .collect())
    });
    let scored = task.await.context("scoring task")??;
    Ok(scored)
}

fn risk_row(
    model: &ScoringModel,
    entity: &EntityFeatures,
    scored: &Scored,
    tier: RiskTier,
    since: i64,
    now: i64,
) -> EntityRiskRow {
    let features: BTreeMap<&str, f64> = FEATURE_NAMES.iter().copied().zip(entity.values).collect();
    EntityRiskRow {
        kind: model.kind,
        entity: entity.key.clone(),
        tier,
        score: scored.score,
        model_version: model.version,
        features: serde_json::to_string(&features).unwrap_or_default(),
        top_features: serde_json::to_string(&scored.top).unwrap_or_default(),
        tier_since: since,
        updated_at: now,
    }
}
