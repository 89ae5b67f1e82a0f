use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::MODEL_FORMAT;

/// `n` rows of `features` values uniform in [-1, 1), then one row at 6 in every feature.
fn cloud_with_outlier(n: usize, features: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(42);
    let mut rows: Vec<f64> = (0..n * features)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    rows.extend(std::iter::repeat_n(6.0, features));
    rows
}

fn params(seed: u64) -> ForestParams {
    ForestParams {
        seed,
        ..ForestParams::default()
    }
}

#[test]
fn an_obvious_outlier_scores_above_every_inlier() {
    let rows = cloud_with_outlier(1000, 3);
    let forest = IsolationForest::fit(&rows, 3, &params(1)).unwrap();
    let scores = forest.score_all(&rows).unwrap();
    let (outlier, inliers) = scores.split_last().unwrap();
    assert!(*outlier > 0.7, "outlier scored {outlier}");
    assert!(inliers.iter().all(|score| score < outlier && *score > 0.0));
    assert_eq!(forest.score(&[6.0, 6.0, 6.0]).unwrap(), *outlier);
}

#[test]
fn the_same_seed_gives_the_same_forest_on_any_thread_count() {
    let rows = cloud_with_outlier(500, 4);
    let forest = IsolationForest::fit(&rows, 4, &params(9)).unwrap();
    let single_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let again = single_thread
        .install(|| IsolationForest::fit(&rows, 4, &params(9)))
        .unwrap();
    assert_eq!(forest, again);
    let other = IsolationForest::fit(&rows, 4, &params(10)).unwrap();
    assert_ne!(forest.nodes, other.nodes);
}

#[test]
fn trees_respect_sample_size_and_height_limit() {
    let rows = cloud_with_outlier(1000, 2);
    let forest = IsolationForest::fit(&rows, 2, &params(3)).unwrap();
    assert_eq!((forest.n_trees(), forest.sample_size()), (100, 256));
    assert!(forest.n_nodes() <= 100 * 511);
    // A leaf's value is its depth plus c(n ≤ 256), so at most 8 + c(256).
    let deepest = forest
        .nodes
        .iter()
        .filter(|node| node.feature == LEAF)
        .map(|node| node.value);
    assert!(deepest.fold(0.0, f64::max) <= 8.0 + average_path_length(256));
}

#[test]
fn a_serde_round_trip_scores_identically() {
    let rows = cloud_with_outlier(600, 3);
    let schema = FeatureSchema {
        version: 2,
        names: vec!["a".into(), "b".into(), "c".into()],
    };
    let forest = IsolationForest::fit(&rows, 3, &params(5))
        .unwrap()
        .with_schema(schema)
        .unwrap();
    let json = serde_json::to_string(&forest).unwrap();
    let restored: IsolationForest = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, forest);
    assert_eq!(restored.schema().version, 2);
    let (before, after) = (
        forest.score_all(&rows).unwrap(),
        restored.score_all(&rows).unwrap(),
    );
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn a_corrupt_stored_model_is_rejected() {
    let rows = cloud_with_outlier(100, 2);
    let forest = IsolationForest::fit(&rows, 2, &params(5)).unwrap();
    let mut json: serde_json::Value = serde_json::to_value(&forest).unwrap();
    let split = json["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|node| node["f"] != LEAF);
    split.unwrap()["r"] = serde_json::json!(1_000_000);
    let error = serde_json::from_value::<IsolationForest>(json.clone()).unwrap_err();
    assert!(error.to_string().contains("outside its tree"), "{error}");
    json["format"] = serde_json::json!(MODEL_FORMAT + 1);
    assert!(serde_json::from_value::<IsolationForest>(json).is_err());
    let mut json: serde_json::Value = serde_json::to_value(&forest).unwrap();
    json["roots"][1] = serde_json::json!(1_000_000);
    let error = serde_json::from_value::<IsolationForest>(json).unwrap_err();
    assert!(error.to_string().contains("past the last node"), "{error}");
}

#[test]
fn constant_features_score_every_row_one_half() {
    let rows = vec![3.0; 50 * 2];
    let forest = IsolationForest::fit(&rows, 2, &params(0)).unwrap();
    // Every tree is one leaf of all rows, at path length c(ψ): 2^(-1).
    for row in [[3.0, 3.0], [-1e9, 1e9]] {
        assert!((forest.score(&row).unwrap() - 0.5).abs() < 1e-12);
    }
}

#[test]
fn fewer_rows_than_max_samples_use_them_all() {
    let rows = cloud_with_outlier(30, 2);
    let forest = IsolationForest::fit(&rows, 2, &params(0)).unwrap();
    assert_eq!(forest.sample_size(), 31);
    let scores = forest.score_all(&rows).unwrap();
    assert!(scores.iter().all(|score| *score > 0.0 && *score <= 1.0));
}

#[test]
fn rejects_unusable_training_data() {
    let fit = |rows: &[f64], features| IsolationForest::fit(rows, features, &params(0));
    assert!(matches!(fit(&[], 3), Err(RiskError::NoRows)));
    assert!(matches!(fit(&[1.0, 2.0], 0), Err(RiskError::NoFeatures)));
    assert!(matches!(
        fit(&[1.0, 2.0, 3.0], 2),
        Err(RiskError::RaggedRows { .. })
    ));
    assert!(matches!(
        fit(&[1.0, 2.0], 2),
        Err(RiskError::TooFewRows { rows: 1 })
    ));
    let error = fit(&[1.0, 2.0, 3.0, f64::NAN], 2).unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 1, feature 1: value NaN is not a finite number"
    );
}

#[test]
fn rejects_parameters_out_of_range() {
    let rows = cloud_with_outlier(10, 1);
    for (n_trees, max_samples) in [(0, 256), (100, 1), (usize::MAX, 256)] {
        let params = ForestParams {
            n_trees,
            max_samples,
            seed: 0,
        };
        let result = IsolationForest::fit(&rows, 1, &params);
        assert!(
            matches!(result, Err(RiskError::InvalidParam { .. })),
            "{params:?}"
        );
    }
}

#[test]
fn rejects_unusable_rows_at_scoring() {
    let rows = cloud_with_outlier(10, 2);
    let forest = IsolationForest::fit(&rows, 2, &params(0)).unwrap();
    let wrong_width = forest.score(&[1.0]);
    assert!(matches!(
        wrong_width,
        Err(RiskError::FeatureCount {
            expected: 2,
            found: 1
        })
    ));
    assert!(matches!(
        forest.score(&[1.0, f64::INFINITY]),
        Err(RiskError::NonFinite { .. })
    ));
    assert!(matches!(
        forest.score_all(&[1.0, 2.0, 3.0]),
        Err(RiskError::RaggedRows { .. })
    ));
    let error = forest.score_all(&[1.0, 2.0, f64::NAN, 0.0]).unwrap_err();
    assert!(matches!(
        error,
        RiskError::NonFinite {
            row: 1,
            feature: 0,
            ..
        }
    ));
    assert_eq!(forest.score_all(&[]).unwrap(), Vec::<f64>::new());
    let names = FeatureSchema {
        version: 1,
        names: vec!["only one".into()],
    };
    assert!(forest.with_schema(names).is_err());
}
