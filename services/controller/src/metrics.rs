//! The controller's Prometheus metrics, all named `blindledger_controller_*`. None carries
//! an amount: the controller never sees one.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::features::EntityKind;
use crate::tier::RiskTier;

/// Gauge: registry version of the model scoring each `kind`.
const MODEL_VERSION: &str = "blindledger_controller_model_version";
/// Histogram: seconds spent training a model, by `kind`.
const TRAINING_SECONDS: &str = "blindledger_controller_training_seconds";
/// Histogram: seconds per risk cycle.
const CYCLE_SECONDS: &str = "blindledger_controller_cycle_seconds";
/// Counter: failed risk cycles.
const CYCLE_FAILURES: &str = "blindledger_controller_cycle_failures_total";
/// Gauge: scored entities per `kind` and `tier`.
const TIER_ENTITIES: &str = "blindledger_controller_tier_entities";
/// Counter: bundle revisions activated, by `bundle`.
const BUNDLE_REVISIONS: &str = "blindledger_controller_bundle_revisions_total";
/// Gauge: 1 for the active revision of each `bundle` (0 for the one it replaced).
const BUNDLE_INFO: &str = "blindledger_controller_bundle_info";
/// Counter: policy pushes, by `outcome` (`activated`, `unchanged`, or the refusal reason).
const PUSHES: &str = "blindledger_controller_policy_pushes_total";
/// Counter: webhook deliveries, by `outcome` (`delivered`, `failed`).
const ALERT_DELIVERIES: &str = "blindledger_controller_alert_deliveries_total";
/// Counter: alerts queued, by `kind`.
const ALERTS_QUEUED: &str = "blindledger_controller_alerts_queued_total";
/// Gauge: bundle long polls held open, waiting for a new revision.
const LONG_POLLS_HELD: &str = "blindledger_controller_bundle_long_polls_held";
/// Counter: officers' orders not acted on because no valid signature backs them, by the
/// `table` they were read from.
const ORDERS_REFUSED: &str = "blindledger_controller_orders_refused_total";
/// Gauge: alerts waiting for delivery.
const ALERT_OUTBOX: &str = "blindledger_controller_alert_outbox";

/// Records the model now scoring `kind`.
pub fn model_version(kind: EntityKind, version: i64) {
    metrics::gauge!(MODEL_VERSION, "kind" => kind.as_str()).set(version as f64);
}

/// Records a training run.
pub fn training(kind: EntityKind, took: Duration) {
    metrics::histogram!(TRAINING_SECONDS, "kind" => kind.as_str()).record(took.as_secs_f64());
}

/// Records an officer's order refused for want of a valid signature.
pub fn order_refused(table: &'static str) {
    metrics::counter!(ORDERS_REFUSED, "table" => table).increment(1);
}

/// Records how many bundle long polls are held now.
pub fn long_polls_held(held: usize) {
    metrics::gauge!(LONG_POLLS_HELD).set(held as f64);
}

/// Records a finished cycle.
pub fn cycle(took: Duration, ok: bool) {
    metrics::histogram!(CYCLE_SECONDS).record(took.as_secs_f64());
    if !ok {
        metrics::counter!(CYCLE_FAILURES).increment(1);
    }
}

/// Records how many entities of `kind` sit in each tier.
pub fn tier_counts(kind: EntityKind, counts: &BTreeMap<RiskTier, u64>) {
    for tier in RiskTier::ALL {
        let count = counts.get(&tier).copied().unwrap_or(0);
        metrics::gauge!(TIER_ENTITIES, "kind" => kind.as_str(), "tier" => tier.as_str())
            .set(count as f64);
    }
}

/// Records that `revision` of `bundle` is now served.
pub fn bundle_active(bundle: &str, revision: &str) {
    static PREVIOUS: std::sync::Mutex<BTreeMap<String, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    let mut previous = PREVIOUS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(old) = previous.insert(bundle.to_string(), revision.to_string()) {
        metrics::gauge!(BUNDLE_INFO, "bundle" => bundle.to_string(), "revision" => old).set(0.0);
    }
    metrics::gauge!(BUNDLE_INFO, "bundle" => bundle.to_string(), "revision" => revision.to_string())
        .set(1.0);
    metrics::counter!(BUNDLE_REVISIONS, "bundle" => bundle.to_string()).increment(1);
}

/// Records a push and its outcome.
pub fn push(outcome: &str) {
    metrics::counter!(PUSHES, "outcome" => outcome.to_string()).increment(1);
}

/// Records a webhook delivery attempt.
pub fn alert_delivery(delivered: bool) {
    let outcome = if delivered { "delivered" } else { "failed" };
    metrics::counter!(ALERT_DELIVERIES, "outcome" => outcome).increment(1);
}

/// Records a queued alert.
pub fn alert_queued(kind: &'static str) {
    metrics::counter!(ALERTS_QUEUED, "kind" => kind).increment(1);
}

/// Records the outbox depth.
pub fn alert_outbox(depth: i64) {
    metrics::gauge!(ALERT_OUTBOX).set(depth as f64);
}
