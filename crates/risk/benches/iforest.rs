//! Fit plus scoring every row, per labelled data set (100 trees, 256 rows per tree).

use std::path::PathBuf;

use blindledger_risk::{Dataset, ForestParams, IsolationForest};
use criterion::{criterion_group, criterion_main, Criterion};

const FILES: [&str; 4] = [
    "6_cardio.csv",
    "38_thyroid.csv",
    "23_mammography.csv",
    "32_shuttle.csv",
];

fn fit_and_score(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/anomaly");
    if !dir.is_dir() {
        println!("skipped: no data sets at {}", dir.display());
        return;
    }
    let mut group = c.benchmark_group("iforest_fit_and_score");
    group.sample_size(20);
    for file in FILES {
        let dataset = Dataset::from_csv_path(dir.join(file)).expect("data set reads");
        let params = ForestParams::default();
        group.bench_function(file, |b| {
            b.iter(|| {
                let forest = IsolationForest::fit(dataset.values(), dataset.n_features(), &params)
                    .expect("fit succeeds");
                forest
                    .score_all(dataset.values())
                    .expect("scoring succeeds")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fit_and_score);
criterion_main!(benches);
