#!/usr/bin/env python3
"""scikit-learn's IsolationForest on the labelled ADBench sets, for comparison with
`cargo run --release -p blindledger-risk --example eval`.

For each data set and each n_jobs setting (1, and -1 for all cores) it fits 100 trees on
256 rows each with random_state 0..4, scores every row with score_samples, and prints the
mean ROC-AUC of -score_samples and the mean wall time of one fit, and of fit plus scoring.
A first, untimed fit per data set warms caches and joblib's workers, as the Rust example
does with its thread pool.

    pip install scikit-learn pandas
    python3 benches/sklearn/iforest_compare.py [DIR]

DIR defaults to the shared data sets next to the repository.
"""

import os
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

FILES = ["6_cardio.csv", "38_thyroid.csv", "23_mammography.csv", "32_shuttle.csv"]
SEEDS = range(5)
DEFAULT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "datasets", "anomaly"
)


def load(path):
    """Returns the features and labels of a CSV with columns f0..fN and `label`."""
    table = pd.read_csv(path)
    labels = table.pop("label").to_numpy()
    return table.to_numpy(dtype=np.float64), labels


def fit_and_score(features, seed, n_jobs):
    """Returns -score_samples over all rows, the fit time and the fit+score time."""
    started = time.perf_counter()
    forest = IsolationForest(
        n_estimators=100, max_samples=256, random_state=seed, n_jobs=n_jobs
    ).fit(features)
    fitted = time.perf_counter()
    scores = -forest.score_samples(features)
    done = time.perf_counter()
    return scores, fitted - started, done - started


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR
    print(f"scikit-learn {sklearn.__version__}, {os.cpu_count()} cpus")
    print(f"{'data set':<20} {'n_jobs':>6} {'rows':>7} {'AUC mean':>9} {'fit ms':>10} {'fit+score ms':>12}")
    for name in FILES:
        features, labels = load(os.path.join(directory, name))
        for n_jobs in (1, -1):
            fit_and_score(features, 99, n_jobs)
            runs = [fit_and_score(features, seed, n_jobs) for seed in SEEDS]
            auc = np.mean([roc_auc_score(labels, scores) for scores, _, _ in runs])
            fit_ms = 1e3 * np.mean([fit for _, fit, _ in runs])
            total_ms = 1e3 * np.mean([total for _, _, total in runs])
            print(f"{name:<20} {n_jobs:>6} {len(labels):>7} {auc:>9.4f} {fit_ms:>10.2f} {total_ms:>12.2f}")


if __name__ == "__main__":
    main()
