//! Scoring: an isolation forest ([`blindledger_risk::IsolationForest`], 100 trees of 256
//! samples) per entity kind, its registry form, and which features drove each score.

use std::time::Instant;

use anyhow::Context;
use blindledger_risk::{FeatureSchema, ForestParams, IsolationForest};
use serde::{Deserialize, Serialize};

use crate::features::{EntityFeatures, EntityKind, FeatureWindow, FEATURE_NAMES, FEATURE_VERSION};
use crate::repo::ModelRecord;

/// Trees per forest.
pub const N_TREES: usize = 100;
/// Rows drawn to grow each tree.
pub const MAX_SAMPLES: usize = 256;
/// Features reported per entity as having driven its score.
const TOP_FEATURES: usize = 3;

/// A model ready to score one kind of entity.
#[derive(Debug, Clone)]
pub struct ScoringModel {
    /// Registry version.
    pub version: i64,
    /// What it scores.
    pub kind: EntityKind,
    /// When it was trained (Unix ms).
    pub trained_at: i64,
    /// The forest.
    pub forest: IsolationForest,
}

/// A feature that set an entity apart from the others: its value and z-score against the
/// population scored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopFeature {
    /// Feature name.
    pub name: String,
    /// The entity's value.
    pub value: f64,
    /// (value − mean) / standard deviation over the entities of the cycle.
    pub z: f64,
}

/// The schema of the features extracted today.
pub fn feature_schema() -> FeatureSchema {
    FeatureSchema {
        version: FEATURE_VERSION,
        names: FEATURE_NAMES.iter().map(|n| n.to_string()).collect(),
    }
}

/// Trains a forest on `entities` (blocking: call from a blocking thread) and returns it with
/// its registry record, whose `version` is `version`.
pub fn train(
    kind: EntityKind,
    entities: &[EntityFeatures],
    window: &FeatureWindow,
    version: i64,
    seed: u64,
    now_ms: i64,
) -> anyhow::Result<(ScoringModel, ModelRecord)> {
    let started = Instant::now();
    let rows: Vec<f64> = entities.iter().flat_map(|e| e.values).collect();
    let params = ForestParams {
        n_trees: N_TREES,
        max_samples: MAX_SAMPLES,
        seed,
    };
    let forest = IsolationForest::fit(&rows, FEATURE_NAMES.len(), &params)
        .context("fitting the isolation forest")?
        .with_schema(feature_schema())
        .context("attaching the feature schema")?;
    let training_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let record = ModelRecord {
        version,
        kind,
        trained_at: now_ms,
        window_start: window.start,
        window_end: window.end,
        feature_schema: serde_json::to_string(forest.schema())?,
        params: serde_json::to_string(&params)?,
        n_samples: i64::try_from(entities.len()).unwrap_or(i64::MAX),
        training_ms,
        model: Some(bincode::serialize(&forest).context("serialising the forest")?),
    };
    let model = ScoringModel {
        version,
        kind,
        trained_at: now_ms,
        forest,
    };
    Ok((model, record))
}

/// Reads a registry record back, or `None` when its features are not today's.
pub fn load(record: &ModelRecord) -> anyhow::Result<Option<ScoringModel>> {
    let Some(bytes) = &record.model else {
        return Ok(None);
    };
    let forest: IsolationForest = bincode::deserialize(bytes).context("reading a stored forest")?;
    if forest.schema() != &feature_schema() {
        return Ok(None);
    }
    Ok(Some(ScoringModel {
        version: record.version,
        kind: record.kind,
        trained_at: record.trained_at,
        forest,
    }))
}

/// Scores `entities` (blocking: the forest scores in parallel).
pub fn score(model: &ScoringModel, entities: &[EntityFeatures]) -> anyhow::Result<Vec<f64>> {
    let rows: Vec<f64> = entities.iter().flat_map(|e| e.values).collect();
    model
        .forest
        .score_all(&rows)
        .context("scoring with the isolation forest")
}

/// For each entity, the features furthest from the population's mean, in standard
/// deviations (largest |z| first; features equal to the mean are left out).
pub fn explain(entities: &[EntityFeatures]) -> Vec<Vec<TopFeature>> {
    let n = entities.len().max(1) as f64;
    let mut mean = [0.0; FEATURE_NAMES.len()];
    let mut std = [0.0; FEATURE_NAMES.len()];
    for e in entities {
        for (m, v) in mean.iter_mut().zip(e.values) {
            *m += v;
        }
    }
    // Summed first and divided once, so a feature equal everywhere has exactly its value
    // as mean and a variance of exactly zero.
    for m in &mut mean {
        *m /= n;
    }
    for e in entities {
        for ((s, v), m) in std.iter_mut().zip(e.values).zip(mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    entities
        .iter()
        .map(|e| {
            let mut top: Vec<TopFeature> = FEATURE_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| std[*i] > 0.0)
                .map(|(i, name)| TopFeature {
                    name: name.to_string(),
                    value: e.values[i],
                    z: (e.values[i] - mean[i]) / std[i].sqrt(),
                })
                .filter(|f| f.z != 0.0)
                .collect();
            top.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
            top.truncate(TOP_FEATURES);
            top
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(key: &str, calls: f64, peers: f64) -> EntityFeatures {
        let mut values = [1.0; FEATURE_NAMES.len()];
        values[0] = calls;
        values[5] = peers;
        EntityFeatures {
            key: key.into(),
            values,
        }
    }

    #[test]
    fn outliers_score_higher_and_are_explained() {
        let mut entities: Vec<EntityFeatures> = (0..40)
            .map(|i| entity(&format!("t/a{i}"), 20.0 + f64::from(i % 5), 1.0))
            .collect();
        entities.push(entity("t/odd", 400.0, 30.0));
        let window = FeatureWindow {
            baseline_start: 0,
            start: 1,
            end: 2,
            night_start_hour: 0,
            night_end_hour: 6,
        };
        let (model, record) = train(EntityKind::Account, &entities, &window, 1, 7, 5).unwrap();
        assert_eq!(record.n_samples, 41);
        let scores = score(&model, &entities).unwrap();
        let odd = scores[40];
        assert!(scores[..40].iter().all(|s| *s < odd), "{scores:?}");
        let loaded = load(&record).unwrap().unwrap();
        assert_eq!(score(&loaded, &entities).unwrap(), scores);
        let top = &explain(&entities)[40];
        let names: Vec<&str> = top.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"calls") && names.contains(&"new_counterparties"));
    }
}
