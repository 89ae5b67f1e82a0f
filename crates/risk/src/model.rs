//! The stored form of a forest, for the model registry.
//!
//! Reading a model back validates every node, so a corrupt or hand-edited model fails to
//! load instead of panicking or looping while scoring. Thresholds are plain `f64`s: a format
//! that writes and parses them exactly (serde_json with `float_roundtrip`, bincode, CBOR)
//! gives back a forest with bit-identical scores.

use serde::{Deserialize, Serialize, Serializer};

use crate::error::RiskError;
use crate::forest::{FeatureSchema, ForestParams, IsolationForest};
use crate::layout::ScoringLayout;
use crate::tree::{average_path_length, Node, LEAF};

/// Version of the stored layout, bumped whenever it changes meaning.
pub const MODEL_FORMAT: u32 = 1;

#[derive(Serialize)]
struct StoredForestRef<'a> {
    format: u32,
    params: &'a ForestParams,
    n_features: usize,
    sample_size: usize,
    schema: &'a FeatureSchema,
    roots: &'a [u32],
    nodes: &'a [Node],
}

#[derive(Deserialize)]
struct StoredForest {
    format: u32,
    params: ForestParams,
    n_features: usize,
    sample_size: usize,
    schema: FeatureSchema,
    roots: Vec<u32>,
    nodes: Vec<Node>,
}

impl Serialize for IsolationForest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredForestRef {
            format: MODEL_FORMAT,
            params: &self.params,
            n_features: self.n_features,
            sample_size: self.sample_size,
            schema: &self.schema,
            roots: &self.roots,
            nodes: &self.nodes,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IsolationForest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredForest::deserialize(deserializer)?;
        from_stored(stored).map_err(serde::de::Error::custom)
    }
}

fn from_stored(stored: StoredForest) -> Result<IsolationForest, RiskError> {
    if stored.format != MODEL_FORMAT {
        return Err(invalid(format!(
            "format {} (expected {MODEL_FORMAT})",
            stored.format
        )));
    }
    if stored.n_features == 0 || stored.sample_size < 2 {
        return Err(invalid(
            "needs at least 1 feature and a sample size of 2".into(),
        ));
    }
    let names = stored.schema.names.len();
    if names != 0 && names != stored.n_features {
        return Err(invalid(format!(
            "{names} feature names for {} features",
            stored.n_features
        )));
    }
    check_trees(&stored.roots, &stored.nodes, stored.n_features)?;
    Ok(IsolationForest {
        params: stored.params,
        n_features: stored.n_features,
        sample_size: stored.sample_size,
        normaliser: average_path_length(stored.sample_size),
        layout: ScoringLayout::new(&stored.roots, &stored.nodes),
        roots: stored.roots,
        nodes: stored.nodes,
        schema: stored.schema,
    })
}

/// Checks that the trees tile the node array and that every walk ends at a leaf: children
/// lie after their parent and inside its tree, so indices only grow and stay in bounds.
fn check_trees(roots: &[u32], nodes: &[Node], n_features: usize) -> Result<(), RiskError> {
    if roots.is_empty() || roots[0] != 0 {
        return Err(invalid("the first tree must start at node 0".into()));
    }
    let ends = roots
        .iter()
        .skip(1)
        .map(|&root| root as usize)
        .chain([nodes.len()]);
    for (&start, end) in roots.iter().zip(ends) {
        let start = start as usize;
        if start >= end || end > nodes.len() {
            return Err(invalid(format!(
                "tree at node {start} is empty, out of order or past the last node"
            )));
        }
        for (at, node) in nodes.iter().enumerate().take(end).skip(start) {
            check_node(at, node, end, n_features)?;
        }
    }
    Ok(())
}

fn check_node(at: usize, node: &Node, end: usize, n_features: usize) -> Result<(), RiskError> {
    if !node.value.is_finite() {
        return Err(invalid(format!(
            "node {at} holds a value that is not finite"
        )));
    }
    if node.feature == LEAF {
        return Ok(());
    }
    let right = node.right as usize;
    if node.feature as usize >= n_features || right <= at + 1 || right >= end {
        return Err(invalid(format!(
            "node {at} points outside its tree or features"
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> RiskError {
    RiskError::InvalidModel(reason)
}
