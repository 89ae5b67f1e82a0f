//! Per-bundle status, with the metrics and logs that go with each change.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::GateError;

/// Gauge set to 1 for each bundle's active revision (and 0 for the one it replaced).
const BUNDLE_INFO: &str = "blindledger_policy_bundle_info";
/// Counter of rejected bundle files and engine builds, labelled by `bundle`.
const RELOAD_FAILURES: &str = "blindledger_policy_reload_failures_total";
/// Gauge: 1 while the latest poll of `bundle` failed (its error is in the status), else 0.
const FAILING: &str = "blindledger_policy_bundle_failing";
/// Gauge: Unix time of the latest poll of `bundle` that succeeded (a new revision, the
/// same one, or nothing published), for "bundle stale" alerts.
const LAST_CHECK: &str = "blindledger_policy_bundle_last_check_timestamp_seconds";

/// The state of one bundle, as OPA's status API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleStatus {
    /// The bundle's name.
    pub name: String,
    /// The manifest revision in the installed engine, if the bundle was ever activated.
    pub active_revision: Option<String>,
    /// When the active revision was installed.
    pub last_successful_activation: Option<SystemTime>,
    /// Why the latest attempt to activate a new file failed; cleared by the next success or
    /// when the file is back to the active revision.
    pub last_error: Option<String>,
}

/// The statuses of all configured bundles, in configuration order.
pub(super) struct Statuses {
    entries: Mutex<Vec<BundleStatus>>,
}

impl Statuses {
    pub(super) fn new(names: impl Iterator<Item = String>) -> Self {
        let entries = names
            .map(|name| BundleStatus {
                name,
                active_revision: None,
                last_successful_activation: None,
                last_error: None,
            })
            .collect();
        Statuses {
            entries: Mutex::new(entries),
        }
    }

    pub(super) fn snapshot(&self) -> Vec<BundleStatus> {
        self.lock().clone()
    }

    /// Records that `name` now runs `revision`.
    pub(super) fn activate(&self, name: &str, revision: &str) {
        checked(name);
        self.update(name, |status| {
            if let Some(previous) = status.active_revision.replace(revision.to_string()) {
                metrics::gauge!(BUNDLE_INFO, "bundle" => name.to_string(), "revision" => previous)
                    .set(0.0);
            }
            metrics::gauge!(BUNDLE_INFO, "bundle" => name.to_string(), "revision" => revision.to_string())
                .set(1.0);
            status.last_successful_activation = Some(SystemTime::now());
            status.last_error = None;
        });
        tracing::info!(bundle = name, revision, "policy bundle activated");
    }

    /// Records that a new file for `name` was rejected; the previous revision stays.
    pub(super) fn fail(&self, name: &str, error: &GateError) {
        metrics::counter!(RELOAD_FAILURES, "bundle" => name.to_string()).increment(1);
        metrics::gauge!(FAILING, "bundle" => name.to_string()).set(1.0);
        let message = error.to_string();
        let summary = without_source(&message);
        tracing::warn!(bundle = name, error = %summary, "policy bundle rejected, keeping the previous revision");
        self.update(name, |status| status.last_error = Some(message));
    }

    /// Clears the error of `name`, whose file is back to the active revision.
    pub(super) fn clear_error(&self, name: &str) {
        checked(name);
        self.update(name, |status| status.last_error = None);
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut BundleStatus)) {
        if let Some(status) = self.lock().iter_mut().find(|s| s.name == name) {
            change(status);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<BundleStatus>> {
        // Updates are single assignments, so a poisoned lock still holds consistent data.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Records a successful poll of `name`.
fn checked(name: &str) {
    metrics::gauge!(FAILING, "bundle" => name.to_string()).set(0.0);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!(LAST_CHECK, "bundle" => name.to_string()).set(now.as_secs_f64());
}

/// Returns `message` on one line without the source excerpts (`3 | decision := {`, `| ^`)
/// that compiler errors carry: logs must not hold policy contents. The status keeps them.
fn without_source(message: &str) -> String {
    let is_excerpt = |line: &str| {
        line.split_once('|')
            .is_some_and(|(gutter, _)| gutter.trim().chars().all(|c| c.is_ascii_digit()))
    };
    let lines = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_excerpt(line));
    lines.collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::without_source;

    #[test]
    fn source_excerpts_are_left_out_of_log_lines() {
        let message = "policy 'b/a.rego' does not compile: \n--> b/a.rego:3:14\n  |\n3 | decision := {\n  |              ^\nerror: expecting expression";
        assert_eq!(
            without_source(message),
            "policy 'b/a.rego' does not compile: --> b/a.rego:3:14 error: expecting expression"
        );
    }
}
