//! Policy bundles pushed by CI: accepted only when signed by a trusted CI key, when their
//! Rego tests pass, when they build with the active risk data, and when the impact analysis
//! stays within the threshold. The report of every push, accepted or not, is stored.

use anyhow::Context;
use blindledger_policy::Bundle;
use blindledger_store::now_ms;

mod checks;

use checks::{
    check_revision, empty_risk_bundle, refuse, signature_refusal, summarise, test_blocking,
    test_refusal, Refusal, Vetting,
};

use crate::alerts::Alert;
use crate::bundles::{ServedBundle, POLICY_BUNDLE, RISK_BUNDLE};
use crate::controller::Controller;
use crate::error::{ControllerError, Result};
use crate::impact::{self, ImpactReport};
use crate::metrics;
pub use crate::push_report::{PushReport, TestSummary};
use crate::repo::PushReportRow;

impl Controller {
    /// Verifies, tests and analyses the bundle in `archive`, pushed by `pushed_by`, and
    /// activates it unless refused. A pusher's `max_changed` can only tighten the operator's
    /// `impact_max_changed`: the stricter of the two applies.
    pub async fn push(
        &self,
        archive: Vec<u8>,
        pushed_by: &str,
        max_changed: Option<u64>,
    ) -> Result<PushReport> {
        let _serialised = self.lock.lock().await;
        let mut report = PushReport {
            max_changed: stricter(max_changed, self.config.impact_max_changed),
            ..PushReport::default()
        };
        let refusal = self
            .vet_and_activate(archive, &mut report, pushed_by)
            .await?;
        report.active_revision = self
            .bundles
            .get(POLICY_BUNDLE)
            .map(|b| b.revision().to_string());
        self.store_report(&report, pushed_by).await?;
        match refusal {
            None => {
                metrics::push(&report.outcome);
                tracing::info!(revision = %report.revision, pushed_by,
                    outcome = %report.outcome, "policy push");
                Ok(report)
            }
            Some(refusal) => Err(self.refused(report, refusal, pushed_by).await),
        }
    }

    /// Vets the bundle and activates it when it passes; returns the refusal otherwise.
    async fn vet_and_activate(
        &self,
        archive: Vec<u8>,
        report: &mut PushReport,
        pushed_by: &str,
    ) -> Result<Option<Refusal>> {
        let (outcome, refusal) = match self.vet(archive, report).await {
            Ok(Some(served)) => {
                self.activate(served, "push", "activate", pushed_by).await?;
                ("activated", None)
            }
            Ok(None) => ("unchanged", None),
            Err(Vetting::Failed(error)) => return Err(error),
            Err(Vetting::Refused(refusal)) => {
                report.reason = Some(refusal.reason.into());
                report.message = Some(refusal.message.clone());
                ("refused", Some(refusal))
            }
        };
        report.outcome = outcome.into();
        Ok(refusal)
    }

    /// Counts, logs and alerts a refusal, and returns it as the caller's error.
    async fn refused(
        &self,
        report: PushReport,
        refusal: Refusal,
        pushed_by: &str,
    ) -> ControllerError {
        metrics::push(refusal.reason);
        tracing::warn!(revision = %report.revision, pushed_by, reason = refusal.reason,
            "policy push refused");
        let alert = Alert::BundleRefused {
            bundle: POLICY_BUNDLE.into(),
            revision: report.revision.clone(),
            reason: refusal.message.clone(),
        };
        self.alerts.raise(&alert).await;
        ControllerError::PushRefused {
            reason: refusal.reason,
            message: refusal.message,
            report: Box::new(report),
        }
    }

    /// Runs every check, filling `report`; `Ok(None)` when the bundle is already active.
    async fn vet(
        &self,
        archive: Vec<u8>,
        report: &mut PushReport,
    ) -> std::result::Result<Option<ServedBundle>, Vetting> {
        let served = ServedBundle::from_archive(POLICY_BUNDLE, archive)
            .map_err(|e| refuse("invalid_bundle", e.to_string()))?;
        report.revision = served.revision().to_string();
        check_revision(&report.revision)?;
        self.ci_verifier
            .verify(&served.bundle)
            .map_err(|e| signature_refusal(&e))?;
        let Some(served) = self.against_stored(served).await? else {
            return Ok(None);
        };
        let tests = test_blocking(served.bundle.clone())
            .await?
            .map_err(|e| test_refusal(&e))?;
        report.tests = Some(summarise(&tests));
        if !tests.all_passed() {
            let failed = report.tests.as_ref().map(|t| t.failed.join(", "));
            let message = format!("tests failed: {}", failed.unwrap_or_default());
            return Err(refuse("tests_failed", message).into());
        }
        let impact = self.impact(&served.bundle).await?;
        let changed = impact.changed;
        let mismatches = impact.evaluator_mismatches;
        report.impact = Some(impact);
        if mismatches > 0 {
            let message = format!(
                "the compiled policy decides {mismatches} replayed inputs differently from \
                 the interpreter"
            );
            return Err(refuse("evaluator_mismatch", message).into());
        }
        if let Some(max) = report.max_changed.filter(|max| changed > *max) {
            let message =
                format!("{changed} replayed decisions would change, over the threshold of {max}");
            return Err(refuse("impact_over_threshold", message).into());
        }
        Ok(Some(served))
    }

    /// The bundle to vet for a pushed revision: the pushed one when the revision is new;
    /// when it is stored already (a CI re-run re-signs it, so the bytes differ), the stored
    /// archive, which stays the one served for it, or `None` when it is the active one.
    /// Other contents under a stored revision are refused.
    async fn against_stored(
        &self,
        served: ServedBundle,
    ) -> std::result::Result<Option<ServedBundle>, Vetting> {
        let revision = served.revision().to_string();
        let Some(stored) = self.repo.bundle(POLICY_BUNDLE, &revision).await? else {
            return Ok(Some(served));
        };
        let stored = ServedBundle::from_archive(POLICY_BUNDLE, stored.archive)?;
        if !stored.bundle.files().eq(served.bundle.files()) {
            let message = format!("revision {revision} exists with other contents");
            return Err(refuse("revision_exists", message).into());
        }
        let active = self.bundles.get(POLICY_BUNDLE);
        Ok(active
            .is_none_or(|a| a.sha256 != stored.sha256)
            .then_some(stored))
    }

    /// Replays the last logged decisions against the active bundles and against the
    /// candidate, both with the active risk data.
    async fn impact(&self, candidate: &Bundle) -> std::result::Result<ImpactReport, Vetting> {
        // Without a risk bundle yet, an empty one still claims its root, so a candidate that
        // claims `risk` (or everything) is refused now rather than breaking the next cycle.
        let risk = match self.bundles.get(RISK_BUNDLE) {
            Some(active) => active.bundle.clone(),
            None => empty_risk_bundle()?,
        };
        let with_risk = |policy: Bundle| vec![policy, risk.clone()];
        let candidate = self
            .check_engine(with_risk(candidate.clone()))
            .await
            .map_err(|e| refuse("invalid_policy", e.to_string()))?;
        let active = match self.bundles.get(POLICY_BUNDLE) {
            // An active policy that no longer builds compares as "deny everything".
            Some(active) => self
                .check_engine(with_risk(active.bundle.clone()))
                .await
                .ok(),
            None => None,
        };
        let inputs = self.repo.recent_inputs(self.config.impact_replay).await?;
        let task = tokio::task::spawn_blocking(move || {
            impact::replay(active.as_ref(), &candidate, &inputs)
        });
        let report = task.await.context("replay task")?;
        Ok(report)
    }

    async fn store_report(&self, report: &PushReport, pushed_by: &str) -> Result<()> {
        let row = PushReportRow {
            revision: report.revision.clone(),
            pushed_by: pushed_by.to_string(),
            pushed_at: now_ms(),
            outcome: report.outcome.clone(),
            reason: report.reason.clone().unwrap_or_default(),
            report: serde_json::to_string(report).context("encoding the push report")?,
        };
        Ok(self.repo.insert_push_report(&row).await?)
    }
}

/// The stricter of two optional thresholds (none: no threshold).
fn stricter(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
