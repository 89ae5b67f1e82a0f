//! Policy and risk bundle revisions from the controller's tables: the active revision of
//! each bundle, the activation history, and the policy push reports with their tests and
//! impact analysis.
//!
//! `controller_activations` is append-only: a bundle's active revision is its latest row,
//! found through the `(name, seq)` index. Both lists are paged by keyset on `seq`. Push
//! reports are read for their counts only: their example decisions carry obligations
//! (limits), which the dashboard never shows.

use std::collections::BTreeMap;

use blindledger_audit::AuditLog;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::text;

/// Activations per page.
pub const ACTIVATIONS_PAGE: i64 = 50;
/// Push reports per page.
pub const PUSHES_PAGE: i64 = 20;

/// One activation of a bundle revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    /// Its seq (the paging key).
    pub seq: i64,
    /// `blindledger` or `risk`.
    pub name: String,
    /// The revision served from then on.
    pub revision: String,
    /// `activate`, `rollback`, ...
    pub action: String,
    /// Who or what activated it.
    pub actor: String,
    /// When (Unix ms).
    pub activated_at: i64,
}

/// One policy push and its report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushReport {
    /// Its seq (the paging key).
    pub seq: i64,
    /// The pushed revision.
    pub revision: String,
    /// Who pushed it.
    pub pushed_by: String,
    /// When (Unix ms).
    pub pushed_at: i64,
    /// `activated`, `unchanged` or `refused`.
    pub outcome: String,
    /// Why it was refused (empty otherwise).
    pub reason: String,
    /// The Rego test results, when the tests ran.
    pub tests: Option<TestSummary>,
    /// The impact analysis, when it ran.
    pub impact: Option<Impact>,
}

/// The Rego test results of a push.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestSummary {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed, by name.
    pub failed: Vec<String>,
    /// Line coverage of the non-test policies, in percent.
    pub coverage_percent: f64,
}

/// How a pushed policy would have decided the recent past differently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Impact {
    /// The active revision compared against.
    pub baseline_revision: Option<String>,
    /// Decisions replayed.
    pub replayed: u64,
    /// Decisions whose outcome or obligations change.
    pub changed: u64,
    /// Allowed before, denied after.
    pub allow_to_deny: u64,
    /// Denied before, allowed after.
    pub deny_to_allow: u64,
    /// Allowed by both, with other obligations.
    pub obligations_changed: u64,
    /// Changed decisions per gRPC method.
    pub by_method: BTreeMap<String, u64>,
    /// Changed decisions per principal.
    pub by_principal: BTreeMap<String, u64>,
}

/// The parts of a stored report the dashboard reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StoredReport {
    tests: Option<TestSummary>,
    impact: Option<Impact>,
}

/// What the bundles page shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BundlesView {
    /// The latest activation of each bundle, by name.
    pub active: Vec<Activation>,
    /// A page of activations, newest first.
    pub activations: Vec<Activation>,
    /// The seq to list older activations before, when there are more.
    pub activations_next: Option<i64>,
    /// A page of push reports, newest first.
    pub pushes: Vec<PushReport>,
    /// The seq to list older push reports before, when there are more.
    pub pushes_next: Option<i64>,
}

/// The active revisions, and the pages of activations and push reports before the given
/// seqs (from the newest when `None`).
pub async fn bundles(
    log: &AuditLog,
    activations_before: Option<i64>,
    pushes_before: Option<i64>,
) -> Result<BundlesView, sqlx::Error> {
    let active = sqlx::query(
        "SELECT a.seq, a.name, a.revision, a.action, a.actor, a.activated_at \
         FROM controller_activation_feed a JOIN (SELECT name, MAX(seq) AS seq \
         FROM controller_activation_feed GROUP BY name) latest ON a.seq = latest.seq ORDER BY a.name",
    )
    .fetch_all(log.pool())
    .await?;
    let active = active.iter().map(activation).collect::<Result<_, _>>()?;
    let rows = sqlx::query(
        "SELECT seq, name, revision, action, actor, activated_at FROM controller_activation_feed \
         WHERE seq < ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(activations_before.unwrap_or(i64::MAX))
    .bind(ACTIVATIONS_PAGE + 1)
    .fetch_all(log.pool())
    .await?;
    let mut activations: Vec<Activation> = rows.iter().map(activation).collect::<Result<_, _>>()?;
    let activations_next = next_page(&mut activations, ACTIVATIONS_PAGE, |a| a.seq);
    let mut pushes = push_reports(log, pushes_before).await?;
    let pushes_next = next_page(&mut pushes, PUSHES_PAGE, |p| p.seq);
    Ok(BundlesView {
        active,
        activations,
        activations_next,
        pushes,
        pushes_next,
    })
}

/// Cuts `rows` (fetched one over `size`) to a page; the last seq kept when more follow.
fn next_page<T>(rows: &mut Vec<T>, size: i64, seq: impl Fn(&T) -> i64) -> Option<i64> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    (rows.len() > size).then(|| {
        rows.truncate(size);
        seq(&rows[size - 1])
    })
}

fn activation(row: &AnyRow) -> Result<Activation, sqlx::Error> {
    Ok(Activation {
        seq: row.try_get(0)?,
        name: text(row, 1),
        revision: text(row, 2),
        action: text(row, 3),
        actor: text(row, 4),
        activated_at: row.try_get(5)?,
    })
}

async fn push_reports(log: &AuditLog, before: Option<i64>) -> Result<Vec<PushReport>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, revision, pushed_by, pushed_at, outcome, reason, report \
         FROM controller_push_report_feed WHERE seq < ? ORDER BY seq DESC LIMIT ?",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(PUSHES_PAGE + 1)
    .fetch_all(log.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let report: StoredReport = serde_json::from_str(&text(row, 6)).unwrap_or_default();
            Ok(PushReport {
                seq: row.try_get(0)?,
                revision: text(row, 1),
                pushed_by: text(row, 2),
                pushed_at: row.try_get(3)?,
                outcome: text(row, 4),
                reason: text(row, 5),
                tests: report.tests,
                impact: report.impact,
            })
        })
        .collect()
}
