//! One isolation tree, grown on a subsample.
//!
//! Nodes are laid out in pre-order in one flat array: a split's left child is the next
//! node, so only the right child's index is stored. This is the stored form; scoring uses
//! the layout built from it in `layout`.

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Euler–Mascheroni constant, for the harmonic-number approximation in c(n).
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Marks a leaf in [`Node::feature`].
pub(crate) const LEAF: u32 = u32::MAX;

/// A split or a leaf of an isolation tree, 16 bytes so four share a cache line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    /// Feature compared at a split, or [`LEAF`].
    #[serde(rename = "f")]
    pub(crate) feature: u32,
    /// Index of a split's right child in the forest's node array; 0 for a leaf.
    #[serde(rename = "r")]
    pub(crate) right: u32,
    /// A split's threshold (rows with `x <= value` go left), or a leaf's path length:
    /// its depth plus c(rows that reached it), precomputed so scoring only adds.
    #[serde(rename = "v")]
    pub(crate) value: f64,
}

/// Returns c(n), the average path length of an unsuccessful search in a binary search tree
/// of `n` points (Liu, Ting and Zhou, 2008), with scikit-learn's values for n ≤ 2.
///
/// It normalises path lengths into scores, and it stands in for the subtree that a leaf
/// holding `n` training rows would have grown without the height limit.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Returns ceil(log2(n)), the height limit of trees grown on `n` rows.
pub(crate) fn height_limit(n: usize) -> usize {
    (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize
}

/// Grows one tree on `sample_size` distinct rows drawn from the row-major `rows`.
///
/// Right-child indices are relative to the tree's first node; the forest offsets them.
pub(crate) fn grow_tree(
    rows: &[f64],
    n_features: usize,
    sample_size: usize,
    rng: &mut impl Rng,
) -> Vec<Node> {
    let n_rows = rows.len() / n_features;
    let chosen = rand::seq::index::sample(rng, n_rows, sample_size);
    // A feature-major copy of the subsample: finding a node's range and partitioning it read
    // one feature of a few hundred rows, which then sit in a couple of cache lines.
    let mut columns = vec![0.0; n_features * sample_size];
    for (i, row) in chosen.iter().enumerate() {
        for (f, value) in rows[row * n_features..(row + 1) * n_features]
            .iter()
            .enumerate()
        {
            columns[f * sample_size + i] = *value;
        }
    }
    let mut grower = TreeGrower {
        columns: &columns,
        sample_size,
        max_depth: height_limit(sample_size),
        features: (0..n_features as u32).collect(),
        nodes: Vec::with_capacity(2 * sample_size),
        rng,
    };
    let mut members: Vec<u32> = (0..sample_size as u32).collect();
    grower.grow(&mut members, 0);
    grower.nodes
}

/// State of one tree's growth: the subsample and the nodes emitted so far.
struct TreeGrower<'a, R> {
    columns: &'a [f64],
    sample_size: usize,
    max_depth: usize,
    /// Feature indices, shuffled in place at each split.
    features: Vec<u32>,
    nodes: Vec<Node>,
    rng: &'a mut R,
}

impl<'a, R: Rng> TreeGrower<'a, R> {
    /// Emits the subtree for the subsample rows in `members` (indices into the columns).
    fn grow(&mut self, members: &mut [u32], depth: usize) {
        let split = if depth < self.max_depth && members.len() > 1 {
            self.pick_split(members)
        } else {
            None
        };
        let Some((feature, threshold)) = split else {
            let value = depth as f64 + average_path_length(members.len());
            self.nodes.push(Node {
                feature: LEAF,
                right: 0,
                value,
            });
            return;
        };
        let at = self.nodes.len();
        self.nodes.push(Node {
            feature: feature as u32,
            right: 0,
            value: threshold,
        });
        let mid = partition(members, self.column(feature), threshold);
        let (left, right) = members.split_at_mut(mid);
        self.grow(left, depth + 1);
        self.nodes[at].right = self.nodes.len() as u32;
        self.grow(right, depth + 1);
    }

    /// Draws features in random order until one varies among `members`, then a threshold
    /// uniformly in [min, max): scikit-learn's random splitter with `max_features=1`. A node
    /// where every feature is constant cannot be split and becomes a leaf.
    fn pick_split(&mut self, members: &[u32]) -> Option<(usize, f64)> {
        let n_features = self.features.len();
        for k in 0..n_features {
            let pick = self.rng.random_range(k..n_features);
            self.features.swap(k, pick);
            let feature = self.features[k] as usize;
            let (low, high) = min_max(self.column(feature), members);
            if low < high {
                let u: f64 = self.rng.random();
                // Interpolating rather than `low + u * (high - low)`: the width of a range
                // spanning most of f64 overflows, its endpoints do not.
                let threshold = (low * (1.0 - u) + high * u).max(low);
                // Rounding can land on `high`, which would leave the right side empty.
                let threshold = if threshold < high { threshold } else { low };
                return Some((feature, threshold));
            }
        }
        None
    }

    fn column(&self, feature: usize) -> &'a [f64] {
        let columns = self.columns;
        &columns[feature * self.sample_size..(feature + 1) * self.sample_size]
    }
}

fn min_max(column: &[f64], members: &[u32]) -> (f64, f64) {
    members
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &m| {
            let value = column[m as usize];
            (low.min(value), high.max(value))
        })
}

/// Moves the members with `value <= threshold` to the front and returns how many there are.
fn partition(members: &mut [u32], column: &[f64], threshold: f64) -> usize {
    let mut mid = 0;
    for i in 0..members.len() {
        if column[members[i] as usize] <= threshold {
            members.swap(mid, i);
            mid += 1;
        }
    }
    mid
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn average_path_length_matches_reference_values() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // 2 (H(n-1)) - 2 (n-1)/n with H(k) ≈ ln k + γ; values from scikit-learn's
        // `_average_path_length`.
        assert!((average_path_length(3) - 1.207_392_357_589_623).abs() < 1e-12);
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn height_limit_is_ceil_log2() {
        let cases = [(2, 1), (3, 2), (4, 2), (5, 3), (255, 8), (256, 8), (257, 9)];
        for (n, limit) in cases {
            assert_eq!(height_limit(n), limit, "n = {n}");
        }
    }

    #[test]
    fn constant_rows_make_a_single_leaf() {
        let rows = vec![1.5; 3 * 40];
        let mut rng = StdRng::seed_from_u64(7);
        let nodes = grow_tree(&rows, 3, 32, &mut rng);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].feature, LEAF);
        assert_eq!(nodes[0].value, average_path_length(32));
    }

    #[test]
    fn splits_ignore_a_constant_feature() {
        let rows: Vec<f64> = (0..64).flat_map(|i| [7.0, f64::from(i)]).collect();
        let mut rng = StdRng::seed_from_u64(3);
        let nodes = grow_tree(&rows, 2, 64, &mut rng);
        assert!(nodes.len() > 1);
        assert!(nodes
            .iter()
            .all(|node| node.feature == LEAF || node.feature == 1));
    }
}
