//! The isolation forest (Liu, Ting and Zhou, "Isolation Forest", ICDM 2008), written to
//! match scikit-learn's `IsolationForest`: axis-parallel random splits, ψ = 256 distinct rows
//! per tree by default, height limit ceil(log2 ψ), c(n) added at external nodes, and the
//! score 2^(-E[h(x)]/c(ψ)).
//!
//! Written here rather than taken from crates.io. Checked and rejected:
//! - `extended-isolation-forest` 0.2.3 (last release 2022): the feature count is a const
//!   generic, fixed at compile time; trees are seeded from `thread_rng` only; fitting fails
//!   when there are fewer rows than the subsample size; nodes are boxed.
//! - `isolation_forest` 1.1.0: features are `u64` values looked up by name in a `HashMap`
//!   per sample, no seed, and scores are normalised by c(number of trees) instead of c(ψ).
//! - `scry-learn` 0.1.0: a single early release of a whole toolkit; subsamples are drawn
//!   with replacement and copied as `Vec<Vec<f64>>`, nodes are boxed.
//! - `rustyml` 0.17: a machine-learning and neural-network framework on ndarray, far more
//!   than one model needs; boxed recursive nodes.
//! - linfa has no isolation forest (the linfa-based `isoforest` is not on crates.io).

use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::RiskError;
use crate::layout::{ScoringLayout, LANES};
use crate::rows::{check_finite, count_rows};
use crate::tree::{average_path_length, grow_tree, Node, LEAF};

/// Rows scored per parallel task: large enough to amortise scheduling, small enough to
/// balance two to sixteen cores.
const SCORE_CHUNK: usize = 1024;

/// Parameters of a forest; the defaults are scikit-learn's and the original paper's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForestParams {
    /// Number of trees.
    pub n_trees: usize,
    /// Rows drawn, without replacement, to grow each tree (ψ); capped at the rows given.
    pub max_samples: usize,
    /// Seed of the random draws: the same rows, parameters and seed give the same forest,
    /// whatever the number of threads.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            n_trees: 100,
            max_samples: 256,
            seed: 0,
        }
    }
}

/// What the features of a model mean. The caller fills it in so that a model read back from
/// the registry can be checked against the features extracted today.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    /// Version of the feature extraction that produced the training rows.
    pub version: u32,
    /// Feature names in column order; empty when the features are unnamed.
    pub names: Vec<String>,
}

/// A fitted isolation forest. All trees share one flat node array.
#[derive(Clone, Debug, PartialEq)]
pub struct IsolationForest {
    pub(crate) params: ForestParams,
    pub(crate) n_features: usize,
    /// Rows each tree was grown on: ψ = min(max_samples, rows).
    pub(crate) sample_size: usize,
    /// c(ψ), the expected path length that maps to a score of 0.5.
    pub(crate) normaliser: f64,
    /// Index of each tree's root in `nodes`.
    pub(crate) roots: Vec<u32>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) schema: FeatureSchema,
    /// The same trees rearranged for scoring; derived from `roots` and `nodes`.
    pub(crate) layout: ScoringLayout,
}

impl IsolationForest {
    /// Fits a forest to `rows`, a row-major buffer of `n_features` values per row.
    ///
    /// Fails on an empty or ragged buffer, a single row, NaN or infinite values, and
    /// parameters out of range. Trees are grown in parallel.
    pub fn fit(rows: &[f64], n_features: usize, params: &ForestParams) -> Result<Self, RiskError> {
        let n_rows = count_rows(rows, n_features)?;
        if n_rows < 2 {
            return Err(RiskError::TooFewRows { rows: n_rows });
        }
        check_params(params)?;
        check_finite(rows, n_features)?;
        let sample_size = params.max_samples.min(n_rows);
        let trees: Vec<Vec<Node>> = (0..params.n_trees)
            .into_par_iter()
            .map(|tree| {
                grow_tree(
                    rows,
                    n_features,
                    sample_size,
                    &mut tree_rng(params.seed, tree),
                )
            })
            .collect();
        let (roots, nodes) = concatenate(trees);
        Ok(Self {
            params: params.clone(),
            n_features,
            sample_size,
            normaliser: average_path_length(sample_size),
            layout: ScoringLayout::new(&roots, &nodes),
            roots,
            nodes,
            schema: FeatureSchema::default(),
        })
    }

    /// Attaches the meaning of the features; the names must match the feature count or be
    /// empty.
    pub fn with_schema(mut self, schema: FeatureSchema) -> Result<Self, RiskError> {
        if !schema.names.is_empty() && schema.names.len() != self.n_features {
            return Err(RiskError::FeatureCount {
                expected: self.n_features,
                found: schema.names.len(),
            });
        }
        self.schema = schema;
        Ok(self)
    }

    /// Returns the anomaly score of one row, in (0, 1]: near 1 is anomalous, below 0.5 is
    /// ordinary. It equals scikit-learn's `-score_samples`.
    pub fn score(&self, row: &[f64]) -> Result<f64, RiskError> {
        if row.len() != self.n_features {
            return Err(RiskError::FeatureCount {
                expected: self.n_features,
                found: row.len(),
            });
        }
        check_finite(row, self.n_features)?;
        Ok(self.score_row(row))
    }

    /// Returns the anomaly scores of the rows of a row-major buffer, scored in parallel.
    pub fn score_all(&self, rows: &[f64]) -> Result<Vec<f64>, RiskError> {
        if !rows.len().is_multiple_of(self.n_features) {
            return Err(RiskError::RaggedRows {
                values: rows.len(),
                features: self.n_features,
            });
        }
        check_finite(rows, self.n_features)?;
        let mut scores = vec![0.0; rows.len() / self.n_features];
        scores
            .par_chunks_mut(SCORE_CHUNK)
            .zip(rows.par_chunks(SCORE_CHUNK * self.n_features))
            .for_each(|(scores, rows)| self.score_block(rows, scores));
        Ok(scores)
    }

    /// Scores checked rows [`LANES`] at a time, then the few left over one by one.
    fn score_block(&self, rows: &[f64], scores: &mut [f64]) {
        let lane_rows = rows.chunks_exact(LANES * self.n_features);
        let rest_rows = lane_rows.remainder();
        let mut lane_scores = scores.chunks_exact_mut(LANES);
        for (rows, scores) in lane_rows.zip(&mut lane_scores) {
            let totals = self
                .layout
                .total_path_lengths::<LANES>(rows, self.n_features);
            for (score, total) in scores.iter_mut().zip(totals) {
                *score = self.anomaly_score(total);
            }
        }
        let rest_scores = lane_scores.into_remainder();
        for (row, score) in rest_rows.chunks_exact(self.n_features).zip(rest_scores) {
            *score = self.score_row(row);
        }
    }

    /// Scores a row already checked for width and finiteness.
    fn score_row(&self, row: &[f64]) -> f64 {
        let [total] = self.layout.total_path_lengths::<1>(row, self.n_features);
        self.anomaly_score(total)
    }

    /// Maps the total path length over all trees to 2^(-mean / c(ψ)). Each row's total is
    /// summed in tree order, so scores are bit-identical however rows are spread over
    /// threads and lanes.
    fn anomaly_score(&self, total_path_length: f64) -> f64 {
        let mean = total_path_length / self.roots.len() as f64;
        (-mean / self.normaliser).exp2()
    }

    /// Returns the parameters the forest was fitted with.
    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    /// Returns the number of features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Returns the number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Returns the rows each tree was grown on: `max_samples`, or fewer when the training
    /// data had fewer rows.
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// Returns the number of nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Returns the meaning of the features, as attached with [`Self::with_schema`].
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }
}

fn check_params(params: &ForestParams) -> Result<(), RiskError> {
    if params.n_trees == 0 {
        return Err(RiskError::InvalidParam {
            name: "n_trees",
            reason: "must be at least 1",
        });
    }
    if params.max_samples < 2 {
        return Err(RiskError::InvalidParam {
            name: "max_samples",
            reason: "must be at least 2",
        });
    }
    // Node indices are u32: a tree on ψ rows has at most 2ψ - 1 nodes.
    let nodes = params
        .n_trees
        .checked_mul(params.max_samples.saturating_mul(2));
    if nodes.is_none_or(|nodes| nodes > u32::MAX as usize) {
        return Err(RiskError::InvalidParam {
            name: "max_samples",
            reason: "n_trees * 2 * max_samples must fit in 32 bits",
        });
    }
    Ok(())
}

/// Gives each tree its own ChaCha stream keyed by (seed, tree), so trees grown on any thread
/// in any order come out the same.
fn tree_rng(seed: u64, tree: usize) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(tree as u64).to_le_bytes());
    StdRng::from_seed(key)
}

/// Lays the trees end to end, turning their relative right-child indices into absolute ones.
fn concatenate(trees: Vec<Vec<Node>>) -> (Vec<u32>, Vec<Node>) {
    let mut roots = Vec::with_capacity(trees.len());
    let mut nodes = Vec::with_capacity(trees.iter().map(Vec::len).sum());
    for tree in trees {
        let offset = nodes.len() as u32;
        roots.push(offset);
        nodes.extend(tree.into_iter().map(|node| match node.feature {
            LEAF => node,
            _ => Node {
                right: node.right + offset,
                ..node
            },
        }));
    }
    (roots, nodes)
}

#[cfg(test)]
mod tests;
