//! ROC-AUC on the four labelled ADBench sets against scikit-learn's figures.

use std::path::PathBuf;

use blindledger_risk::{evaluate, Dataset};

/// scikit-learn `IsolationForest` ROC-AUC, mean of 5 seeds (100 trees, 256 rows per tree),
/// from the data sets' README.
const SKLEARN_AUC: [(&str, f64); 4] = [
    ("6_cardio.csv", 0.932),
    ("38_thyroid.csv", 0.978),
    ("23_mammography.csv", 0.859),
    ("32_shuttle.csv", 0.997),
];

/// Our mean may fall this far below scikit-learn's: the forests differ by random draws.
const TOLERANCE: f64 = 0.01;

fn datasets_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/anomaly")
}

#[test]
fn mean_auc_over_five_seeds_matches_scikit_learn() {
    let dir = datasets_dir();
    if !dir.is_dir() {
        println!("skipped: no data sets at {}", dir.display());
        return;
    }
    for (file, sklearn_auc) in SKLEARN_AUC {
        let dataset = Dataset::from_csv_path(dir.join(file)).expect("data set reads");
        let report = evaluate(&dataset, 100, 256, &[0, 1, 2, 3, 4]).expect("evaluation runs");
        println!("{file}\n{report}\n");
        assert!(
            report.auc_mean >= sklearn_auc - TOLERANCE,
            "{file}: mean ROC-AUC {:.4} below scikit-learn's {sklearn_auc} - {TOLERANCE}",
            report.auc_mean
        );
    }
}
