//! The checks of a pushed bundle and how their failures read.

use std::path::Path;

use anyhow::Context;
use blindledger_policy::{run_tests, Bundle, BundleError, PolicyError, TestReport};

use super::TestSummary;
use crate::bundles::RISK_BUNDLE;
use crate::error::ControllerError;

/// Longest accepted revision label.
const MAX_REVISION_LEN: usize = 255;

/// Why a push is refused.
pub(super) struct Refusal {
    pub(super) reason: &'static str,
    pub(super) message: String,
}

pub(super) fn refuse(reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        message: message.into(),
    }
}

/// Why vetting stopped: the bundle is refused, or the controller itself failed.
pub(super) enum Vetting {
    Refused(Refusal),
    Failed(ControllerError),
}

impl From<Refusal> for Vetting {
    fn from(refusal: Refusal) -> Self {
        Vetting::Refused(refusal)
    }
}

impl<E: Into<ControllerError>> From<E> for Vetting {
    fn from(error: E) -> Self {
        Vetting::Failed(error.into())
    }
}

pub(super) fn empty_risk_bundle() -> std::result::Result<Bundle, BundleError> {
    let mut bundle = Bundle::new(RISK_BUNDLE);
    let manifest = serde_json::json!({"revision": "", "roots": [RISK_BUNDLE]});
    bundle.insert_file(".manifest", manifest.to_string().into_bytes())?;
    Ok(bundle)
}

pub(super) fn check_revision(revision: &str) -> std::result::Result<(), Refusal> {
    if revision.is_empty() {
        return Err(refuse("invalid_bundle", "the manifest has no revision"));
    }
    if revision.len() > MAX_REVISION_LEN || revision.chars().any(char::is_control) {
        let message = format!("revisions are at most {MAX_REVISION_LEN} printable characters");
        return Err(refuse("invalid_bundle", message));
    }
    Ok(())
}

pub(super) fn test_refusal(error: &PolicyError) -> Refusal {
    match error {
        PolicyError::Compile { .. } => refuse("invalid_policy", error.to_string()),
        _ => refuse("tests_failed", error.to_string()),
    }
}

pub(super) fn signature_refusal(error: &BundleError) -> Refusal {
    let reason = match error {
        BundleError::Unsigned => "unsigned",
        BundleError::UnknownKeyId { .. } => "unknown_key",
        _ => "signature",
    };
    refuse(reason, error.to_string())
}

/// Runs the bundle's `test_*` rules from a temporary copy of its files, on a blocking
/// thread (the test runner reads a directory).
pub(super) async fn test_blocking(
    bundle: Bundle,
) -> std::result::Result<std::result::Result<TestReport, PolicyError>, ControllerError> {
    let task = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let dir = tempfile::tempdir().context("creating a directory for the tests")?;
        for (path, bytes) in bundle.files() {
            write_file(dir.path(), path, bytes)?;
        }
        Ok(run_tests(dir.path()))
    });
    let result = task
        .await
        .map_err(|e| ControllerError::Internal(anyhow::anyhow!("test task: {e}")))?;
    Ok(result?)
}

/// Writes a bundle file under `dir`; bundle paths are already sanitised (relative, no
/// `..`), so they stay inside it.
fn write_file(dir: &Path, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let target = dir.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).context("creating a test directory")?;
    }
    std::fs::write(&target, bytes).context("writing a bundle file for the tests")
}

pub(super) fn summarise(tests: &TestReport) -> TestSummary {
    let failed = tests
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| match &r.error {
            Some(error) => format!("{}.{} ({error})", r.package, r.name),
            None => format!("{}.{}", r.package, r.name),
        })
        .collect();
    TestSummary {
        passed: tests.results.iter().filter(|r| r.passed).count(),
        failed,
        coverage_percent: tests.coverage.percent,
    }
}
