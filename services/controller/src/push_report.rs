//! The report of a policy push: what the controller answers and stores, and what a refused
//! push's error carries.

use serde::{Deserialize, Serialize};

use crate::impact::ImpactReport;

/// What happened to a pushed bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushReport {
    /// The pushed revision (empty when the archive could not be read).
    pub revision: String,
    /// `activated`, `unchanged` (already the active revision) or `refused`.
    pub outcome: String,
    /// Why it was refused: `invalid_bundle`, `unsigned`, `unknown_key`, `signature`,
    /// `revision_exists`, `tests_failed`, `invalid_policy`, `evaluator_mismatch`,
    /// `impact_over_threshold`.
    pub reason: Option<String>,
    /// The refusal in words.
    pub message: Option<String>,
    /// The Rego test results.
    pub tests: Option<TestSummary>,
    /// The impact analysis.
    pub impact: Option<ImpactReport>,
    /// The threshold applied to `impact.changed`, if any.
    pub max_changed: Option<u64>,
    /// The active `blindledger` revision after the push.
    pub active_revision: Option<String>,
}

/// Test results of a pushed bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestSummary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed, as `package.rule` with the error if evaluation failed.
    pub failed: Vec<String>,
    /// Line coverage of the non-test policies, in percent.
    pub coverage_percent: f64,
}
