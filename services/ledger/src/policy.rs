//! The policy gate's wiring: token keys, bundle sources and the decision log, from the
//! configuration.

use std::sync::Arc;

use anyhow::Context;

use blindledger_gate::{
    read_key_files, BundleLoader, DbDecisionSink, PolicyGate, PolicySettings, TokenVerifier,
};
use blindledger_store::Db;

use crate::config::LedgerConfig;

/// The calls that move or create value, or compute under a tenant's key: never decided
/// without the risk bundle's freezes, revoked keys and limits once one is configured.
const MONEY_METHODS: &[&str] = &[
    "/blindledger.ledger.v1.LedgerService/OpenAccount",
    "/blindledger.ledger.v1.LedgerService/Deposit",
    "/blindledger.ledger.v1.LedgerService/Withdraw",
    "/blindledger.ledger.v1.LedgerService/Transfer",
    "/blindledger.ledger.v1.LedgerService/Aggregate",
];

/// The access-token verifier; the ledger refuses to start without token keys.
pub fn token_verifier(config: &LedgerConfig) -> anyhow::Result<TokenVerifier> {
    anyhow::ensure!(
        !config.token_keys.is_empty(),
        "no token_keys configured: the ledger authenticates every call with a signed token"
    );
    let keys = read_key_files(&config.token_keys)?;
    TokenVerifier::new(&keys, &config.token_issuer, &config.token_audience)
        .context("loading token keys")
}

/// The gate, logging decisions to the database, and the loader that keeps its policy
/// current from the bundle sources.
pub fn policy_gate(
    config: &LedgerConfig,
    db: Db,
) -> anyhow::Result<(PolicyGate, Arc<BundleLoader>)> {
    let settings = PolicySettings {
        region: &config.region,
        policy_bundle: config.policy_bundle.as_ref(),
        risk_bundle: config.risk_bundle.as_ref(),
        bundle_keys: &config.bundle_keys,
        risk_bundle_keys: &config.risk_bundle_keys,
        risk_required_for: MONEY_METHODS,
        require_signed_bundles: config.require_signed_bundles,
        bundle_scope: config.bundle_scope.as_deref(),
        long_poll: std::time::Duration::from_secs(config.policy_long_poll_s),
        bundle_token_file: config.bundle_token_file.as_deref(),
        revision_floor: Some((&db, "ledger")),
    };
    settings
        .build(Arc::new(DbDecisionSink::new(db.clone())))
        .context("setting up the policy gate")
}
