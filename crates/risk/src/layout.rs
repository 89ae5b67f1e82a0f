//! The forest rearranged for fast scoring.
//!
//! A walk that stops at leaves branches on data it cannot predict, twice per level. Here a
//! leaf becomes a step whose children are itself, so every walk takes exactly `depth`
//! steps, each a compare and a load with no branch. Without branches the core runs the
//! walks of [`LANES`] rows side by side, overlapping their memory latencies.

use crate::tree::{Node, LEAF};

/// Rows walked through a tree together.
pub(crate) const LANES: usize = 16;

/// One node of the scoring layout: rows with `row[feature] <= threshold` go to
/// `children[0]`, the others to `children[1]`. Indexing by the comparison, rather than
/// choosing between two indices, keeps the compiler from turning the choice into a branch.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    threshold: f64,
    feature: u32,
    children: [u32; 2],
}

/// Steps for all trees, with each leaf's path length kept apart because only the last
/// step of a walk reads it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScoringLayout {
    steps: Vec<Step>,
    path_lengths: Vec<f64>,
    roots: Vec<u32>,
    /// Deepest leaf over all trees: steps per walk.
    depth: usize,
}

impl ScoringLayout {
    /// Builds the layout from validated trees (see `model::check_trees`).
    pub(crate) fn new(roots: &[u32], nodes: &[Node]) -> Self {
        let mut steps = Vec::with_capacity(nodes.len());
        let mut path_lengths = vec![0.0; nodes.len()];
        let mut depths = vec![0usize; nodes.len()];
        let mut depth = 0;
        for (at, node) in nodes.iter().enumerate() {
            let (feature, threshold, children) = if node.feature == LEAF {
                path_lengths[at] = node.value;
                depth = depth.max(depths[at]);
                (0, f64::NEG_INFINITY, [at as u32; 2])
            } else {
                // Children follow their parent, so their depths are set before they are read.
                depths[at + 1] = depths[at] + 1;
                depths[node.right as usize] = depths[at] + 1;
                (node.feature, node.value, [at as u32 + 1, node.right])
            };
            steps.push(Step {
                threshold,
                feature,
                children,
            });
        }
        Self {
            steps,
            path_lengths,
            roots: roots.to_vec(),
            depth,
        }
    }

    /// Returns the sum over trees of the path lengths of `N` rows (row-major in `rows`,
    /// `n_features` each, all finite).
    #[inline]
    pub(crate) fn total_path_lengths<const N: usize>(
        &self,
        rows: &[f64],
        n_features: usize,
    ) -> [f64; N] {
        let rows: [&[f64]; N] =
            std::array::from_fn(|lane| &rows[lane * n_features..(lane + 1) * n_features]);
        let mut totals = [0.0; N];
        for &root in &self.roots {
            let mut at = [root as usize; N];
            for _ in 0..self.depth {
                for lane in 0..N {
                    let step = self.steps[at[lane]];
                    let right = rows[lane][step.feature as usize] > step.threshold;
                    at[lane] = step.children[usize::from(right)] as usize;
                }
            }
            for lane in 0..N {
                totals[lane] += self.path_lengths[at[lane]];
            }
        }
        totals
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::{ForestParams, IsolationForest};

    use super::*;

    /// Walks a tree of plain nodes to its leaf, stopping there.
    fn reference_path_length(nodes: &[Node], root: usize, row: &[f64]) -> f64 {
        let mut at = root;
        while nodes[at].feature != LEAF {
            let node = nodes[at];
            let left = row[node.feature as usize] <= node.value;
            at = if left { at + 1 } else { node.right as usize };
        }
        nodes[at].value
    }

    #[test]
    fn lanes_agree_with_a_plain_walk() {
        let mut rng = StdRng::seed_from_u64(11);
        let rows: Vec<f64> = (0..300 * 3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let params = ForestParams {
            n_trees: 20,
            max_samples: 64,
            seed: 4,
        };
        let forest = IsolationForest::fit(&rows, 3, &params).unwrap();
        let lanes = &rows[..LANES * 3];
        let totals = forest.layout.total_path_lengths::<LANES>(lanes, 3);
        for (row, total) in lanes.chunks_exact(3).zip(totals) {
            let expected: f64 = forest
                .roots
                .iter()
                .map(|&root| reference_path_length(&forest.nodes, root as usize, row))
                .sum();
            assert_eq!(total, expected);
            assert_eq!(forest.layout.total_path_lengths::<1>(row, 3), [expected]);
        }
    }
}
