//! Prints, for each labelled data set, the detector's mean ROC-AUC over 5 seeds and the
//! wall time of one fit plus scoring every row (100 trees, 256 rows per tree).
//!
//! `cargo run --release -p blindledger-risk --example eval [DIR]`; DIR defaults to the
//! shared ADBench sets. `RAYON_NUM_THREADS=1` measures one core.

use std::path::PathBuf;

use blindledger_risk::{evaluate, Dataset, RiskError};

const FILES: [&str; 4] = [
    "6_cardio.csv",
    "38_thyroid.csv",
    "23_mammography.csv",
    "32_shuttle.csv",
];
const SEEDS: [u64; 5] = [0, 1, 2, 3, 4];

fn main() -> Result<(), RiskError> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/anomaly"),
        PathBuf::from,
    );
    println!("threads: {}", rayon::current_num_threads());
    println!(
        "{:<20} {:>7} {:>9} {:>10} {:>11}",
        "data set", "rows", "AUC mean", "fit ms", "fit+score ms"
    );
    for file in FILES {
        let dataset = Dataset::from_csv_path(dir.join(file))?;
        // A first run warms caches and starts the thread pool, as it would be in a service.
        evaluate(&dataset, 100, 256, &[99])?;
        let report = evaluate(&dataset, 100, 256, &SEEDS)?;
        let total = report.fit_seconds + report.score_seconds;
        println!(
            "{file:<20} {:>7} {:>9.4} {:>10.2} {:>11.2}",
            report.rows,
            report.auc_mean,
            1e3 * report.fit_seconds,
            1e3 * total
        );
    }
    Ok(())
}
