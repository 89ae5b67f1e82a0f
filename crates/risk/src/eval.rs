//! Evaluation of the detector on a labelled data set: ROC-AUC per seed and timings.

use std::fmt;
use std::time::Instant;

use crate::auc::roc_auc;
use crate::dataset::Dataset;
use crate::error::RiskError;
use crate::forest::{ForestParams, IsolationForest};

/// Outcome of [`evaluate`]: the data set's shape, ROC-AUC per seed and mean timings.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Rows in the data set.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// Rows labelled anomalous.
    pub anomalies: usize,
    /// Trees per forest.
    pub n_trees: usize,
    /// Rows drawn per tree.
    pub max_samples: usize,
    /// Seeds evaluated, in order.
    pub seeds: Vec<u64>,
    /// ROC-AUC of the forest fitted with each seed, scored on all rows.
    pub auc_per_seed: Vec<f64>,
    /// Mean of `auc_per_seed`.
    pub auc_mean: f64,
    /// Mean wall time of one fit, in seconds.
    pub fit_seconds: f64,
    /// Mean wall time of scoring all rows once, in seconds.
    pub score_seconds: f64,
}

/// Fits one forest per seed on all rows of a labelled data set (the detector is
/// unsupervised: labels are only used to judge it), scores every row, and reports the
/// ROC-AUC of each forest with mean fit and scoring times.
pub fn evaluate(
    dataset: &Dataset,
    n_trees: usize,
    max_samples: usize,
    seeds: &[u64],
) -> Result<EvalReport, RiskError> {
    let labels = dataset.labels().ok_or(RiskError::MissingLabels)?;
    if seeds.is_empty() {
        return Err(RiskError::InvalidParam {
            name: "seeds",
            reason: "needs at least one seed",
        });
    }
    let (mut fit_seconds, mut score_seconds) = (0.0, 0.0);
    let mut auc_per_seed = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let params = ForestParams {
            n_trees,
            max_samples,
            seed,
        };
        let started = Instant::now();
        let forest = IsolationForest::fit(dataset.values(), dataset.n_features(), &params)?;
        let fitted = Instant::now();
        let scores = forest.score_all(dataset.values())?;
        score_seconds += fitted.elapsed().as_secs_f64();
        fit_seconds += (fitted - started).as_secs_f64();
        auc_per_seed.push(roc_auc(&scores, labels)?);
    }
    let runs = seeds.len() as f64;
    Ok(EvalReport {
        rows: dataset.rows(),
        features: dataset.n_features(),
        anomalies: labels.iter().filter(|&&label| label).count(),
        n_trees,
        max_samples,
        seeds: seeds.to_vec(),
        auc_mean: auc_per_seed.iter().sum::<f64>() / runs,
        auc_per_seed,
        fit_seconds: fit_seconds / runs,
        score_seconds: score_seconds / runs,
    })
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = 100.0 * self.anomalies as f64 / self.rows as f64;
        writeln!(
            f,
            "data:   {} rows, {} features, {} anomalies ({share:.1}%)",
            self.rows, self.features, self.anomalies
        )?;
        writeln!(
            f,
            "forest: {} trees, {} rows per tree",
            self.n_trees, self.max_samples
        )?;
        writeln!(f, "{:>6}  {:>7}", "seed", "ROC-AUC")?;
        for (seed, auc) in self.seeds.iter().zip(&self.auc_per_seed) {
            writeln!(f, "{seed:>6}  {auc:>7.4}")?;
        }
        writeln!(f, "{:>6}  {:>7.4}", "mean", self.auc_mean)?;
        write!(
            f,
            "time per seed: fit {:.1} ms, score {:.1} ms",
            1e3 * self.fit_seconds,
            1e3 * self.score_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_with_outliers() -> Dataset {
        // 200 points on a grid near the origin, 4 far away.
        let mut values = Vec::new();
        for i in 0..200 {
            values.extend([f64::from(i % 20) * 0.1, f64::from(i / 20) * 0.1]);
        }
        values.extend([9.0, 9.0, -8.0, 7.0, 10.0, -9.0, -7.5, -7.5]);
        let labels = (0..204).map(|i| i >= 200).collect();
        Dataset::new(vec!["x".into(), "y".into()], values, Some(labels)).unwrap()
    }

    #[test]
    fn reports_auc_per_seed_and_prints_a_table() {
        let report = evaluate(&grid_with_outliers(), 50, 64, &[1, 2, 3]).unwrap();
        assert_eq!(
            (report.rows, report.features, report.anomalies),
            (204, 2, 4)
        );
        assert_eq!(report.auc_per_seed.len(), 3);
        assert!(report.auc_mean > 0.99, "{report}");
        let table = report.to_string();
        assert!(
            table.contains("204 rows, 2 features, 4 anomalies (2.0%)"),
            "{table}"
        );
        assert!(table.contains("mean"), "{table}");
    }

    #[test]
    fn needs_labels_and_seeds() {
        let data = Dataset::new(vec!["x".into()], vec![1.0, 2.0, 3.0], None).unwrap();
        assert!(matches!(
            evaluate(&data, 10, 8, &[0]),
            Err(RiskError::MissingLabels)
        ));
        let data = grid_with_outliers();
        assert!(matches!(
            evaluate(&data, 10, 8, &[]),
            Err(RiskError::InvalidParam { .. })
        ));
    }
}
