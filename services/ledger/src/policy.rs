//! The policy gate's wiring: token keys, bundle sources and the decision log, from the
//! configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;

use blindledger_gate::{
    BundleConfig, BundleLoader, BundleSource, DecisionSink, PolicyGate, TokenVerifier,
};
use blindledger_policy::{BundleLimits, BundleVerifier, DecisionEvent};
use blindledger_store::{now_ms, Db, DecisionRecord};

use crate::config::LedgerConfig;

/// Writes decision-log events to the `decision_log` table before the decision takes effect.
pub struct DbDecisionSink {
    db: Db,
}

impl DecisionSink for DbDecisionSink {
    fn record<'a>(&'a self, event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let allowed = event
                .result
                .as_ref()
                .and_then(|r| r.get("allow"))
                .and_then(|a| a.as_bool())
                .unwrap_or(false);
            let revisions: BTreeMap<&str, &str> = event
                .bundles
                .iter()
                .map(|(name, b)| (name.as_str(), b.revision.as_str()))
                .collect();
            let record = DecisionRecord {
                decision_id: event.decision_id.clone(),
                logged_at: now_ms(),
                principal: event.requested_by.clone().unwrap_or_default(),
                method: method_of(event),
                allowed,
                revisions: serde_json::to_string(&revisions).map_err(|e| e.to_string())?,
                event: serde_json::to_vec(event).map_err(|e| e.to_string())?,
            };
            self.db
                .record_decision(&record)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

fn method_of(event: &DecisionEvent) -> String {
    event
        .input
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Reads the PEM files of a key map.
fn read_keys(
    keys: &BTreeMap<String, std::path::PathBuf>,
) -> anyhow::Result<BTreeMap<String, String>> {
    keys.iter()
        .map(|(kid, path)| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading key {kid} from {}", path.display()))?;
            Ok((kid.clone(), pem))
        })
        .collect()
}

/// The access-token verifier; the ledger refuses to start without token keys.
pub fn token_verifier(config: &LedgerConfig) -> anyhow::Result<TokenVerifier> {
    anyhow::ensure!(
        !config.token_keys.is_empty(),
        "no token_keys configured: the ledger authenticates every call with a signed token"
    );
    let keys = read_keys(&config.token_keys)?;
    TokenVerifier::new(&keys, &config.token_issuer, &config.token_audience)
        .context("loading token keys")
}

/// The gate and the loader that keeps its policy current from the bundle files.
pub fn policy_gate(
    config: &LedgerConfig,
    db: Db,
) -> anyhow::Result<(PolicyGate, Arc<BundleLoader>)> {
    let gate = PolicyGate::new(&config.region, Arc::new(DbDecisionSink { db }));
    let verifier = BundleVerifier::new(
        read_keys(&config.bundle_keys)?,
        config.bundle_scope.clone(),
        config.require_signed_bundles,
    )
    .context("loading bundle verification keys")?;
    let mut bundles = Vec::new();
    if let Some(source) = &config.policy_bundle {
        bundles.push(bundle("blindledger", source));
    } else {
        tracing::warn!("no policy_bundle configured: every call is refused");
    }
    if let Some(source) = &config.risk_bundle {
        bundles.push(bundle("risk", source));
    }
    let loader = BundleLoader::new(gate.clone(), bundles, verifier, BundleLimits::default())
        .context("setting up the bundle loader")?;
    Ok((gate, Arc::new(loader)))
}

fn bundle(name: &str, source: &BundleSource) -> BundleConfig {
    BundleConfig {
        name: name.to_owned(),
        source: source.clone(),
    }
}
