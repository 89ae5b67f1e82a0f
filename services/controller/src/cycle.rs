//! One risk cycle: features over the window ending now, a model per entity kind (reused
//! while fresh, retrained on schedule or on demand), tiers with hysteresis, a new `risk`
//! bundle when what it enforces changed, and alerts for escalated accounts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use blindledger_store::now_ms;
use serde::Serialize;

mod scoring;

use crate::alerts::Alert;
use crate::controller::Controller;
use crate::error::Result;
use crate::features::{EntityKind, FeatureSet, FeatureWindow};
use crate::metrics;
use crate::model::TopFeature;
use crate::tier::RiskTier;

/// What one cycle did.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    /// End of the scored window (Unix ms).
    pub at: i64,
    /// The windows read.
    pub window: FeatureWindow,
    /// Decision rows read.
    pub decision_rows: u64,
    /// Job rows read.
    pub job_rows: u64,
    /// Per entity kind.
    pub kinds: Vec<KindReport>,
    /// The risk bundle served after the cycle.
    pub risk_bundle: Option<RiskBundleOutcome>,
    /// Why a new risk bundle could not be served (the previous one stays; the next cycle
    /// tries again).
    pub risk_bundle_error: Option<String>,
    /// Alerts queued.
    pub alerts_queued: usize,
    /// Wall time of the cycle.
    pub duration_ms: u64,
}

/// What a cycle did for one kind of entity.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    /// Accounts or principals.
    pub kind: EntityKind,
    /// Entities active in the window.
    pub entities: usize,
    /// The model that scored them.
    pub model_version: Option<i64>,
    /// Whether it was trained in this cycle (rather than reused).
    pub trained: bool,
    /// Why nothing was scored, when nothing was.
    pub skipped: Option<String>,
    /// Entities per tier after the cycle (all entities ever scored).
    pub tier_counts: BTreeMap<RiskTier, u64>,
    /// Tier changes of this cycle.
    pub changes: Vec<TierChange>,
}

/// One tier change.
#[derive(Debug, Clone, Serialize)]
pub struct TierChange {
    /// The entity's key.
    pub entity: String,
    /// Tier before.
    pub from: RiskTier,
    /// Tier after.
    pub to: RiskTier,
    /// The score that moved it.
    pub score: f64,
    /// Features that drove the score.
    pub top_features: Vec<TopFeature>,
}

/// The risk bundle after a cycle.
#[derive(Debug, Clone, Serialize)]
pub struct RiskBundleOutcome {
    /// Its revision.
    pub revision: String,
    /// Whether the cycle made it.
    pub new: bool,
}

impl Controller {
    /// Runs a cycle over the window ending now; `retrain` forces a new model.
    pub async fn run_cycle(&self, retrain: bool) -> Result<CycleReport> {
        self.run_cycle_at(now_ms(), retrain).await
    }

    /// Runs a cycle over the window ending at `now` (Unix ms): the scheduled cycle passes
    /// the clock, tools and tests may replay a past moment.
    pub async fn run_cycle_at(&self, now: i64, retrain: bool) -> Result<CycleReport> {
        let _serialised = self.lock.lock().await;
        let started = Instant::now();
        let result = self.cycle(now, retrain, started).await;
        metrics::cycle(started.elapsed(), result.is_ok());
        match &result {
            Ok(report) => tracing::info!(
                decision_rows = report.decision_rows,
                job_rows = report.job_rows,
                alerts = report.alerts_queued,
                duration_ms = report.duration_ms,
                "risk cycle finished"
            ),
            Err(error) => tracing::warn!(%error, "risk cycle failed"),
        }
        result
    }

    async fn cycle(&self, now: i64, retrain: bool, started: Instant) -> Result<CycleReport> {
        let window = FeatureWindow::ending_at(now, &self.config);
        let features = self.repo.scan_features(window).await?;
        let mut report = CycleReport {
            at: now,
            window,
            decision_rows: features.decision_rows,
            job_rows: features.job_rows,
            kinds: Vec::new(),
            risk_bundle: None,
            risk_bundle_error: None,
            alerts_queued: 0,
            duration_ms: 0,
        };
        let (kinds, escalations) = self.score_kinds(features, &window, retrain).await?;
        report.kinds = kinds;
        // Tiers are stored: alert before publishing, so a bundle that cannot be published
        // (reported below, retried by the next cycle) does not swallow the escalation.
        report.alerts_queued = self.raise_escalations(&escalations).await;
        let model_version = report.kinds[0].model_version.unwrap_or(0);
        match self.publish_risk(Some(model_version)).await {
            Ok(outcome) => report.risk_bundle = Some(outcome),
            Err(error) => {
                tracing::warn!(error = ?error, "risk bundle not published");
                report.risk_bundle_error = Some(error.to_string());
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// Scores accounts, then principals; returns their reports and the escalated accounts.
    async fn score_kinds(
        &self,
        features: FeatureSet,
        window: &FeatureWindow,
        retrain: bool,
    ) -> Result<(Vec<KindReport>, Vec<TierChange>)> {
        let mut reports = Vec::new();
        let mut escalations = Vec::new();
        for (kind, entities) in [
            (EntityKind::Account, features.accounts),
            (EntityKind::Principal, features.principals),
        ] {
            let report = self
                .score_kind(kind, Arc::new(entities), window, retrain)
                .await?;
            // The policy enforces account tiers: those are what the on-call channel hears of.
            if kind == EntityKind::Account {
                let up = report.changes.iter().filter(|c| c.to > c.from).cloned();
                escalations.extend(up);
            }
            reports.push(report);
        }
        Ok((reports, escalations))
    }

    /// Queues one alert per escalated account (deduplicated per account and tier).
    async fn raise_escalations(&self, escalations: &[TierChange]) -> usize {
        let mut queued = 0;
        for change in escalations {
            let alert = Alert::TierEscalation {
                kind: EntityKind::Account,
                entity: change.entity.clone(),
                from: change.from,
                to: change.to,
                score: change.score,
                top_features: change.top_features.clone(),
            };
            queued += usize::from(self.alerts.raise(&alert).await);
        }
        queued
    }
}
