//! The policy gate's wiring: token keys, bundle sources and the decision log, from the
//! configuration.

use std::sync::Arc;

use anyhow::Context;

use blindledger_gate::{BundleLoader, DbDecisionSink, PolicyGate, PolicySettings, TokenVerifier};
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
    blindledger_gate::TokenSettings {
        keys: &config.token_keys,
        jwks_url: config.token_jwks_url.as_deref(),
        issuer: &config.token_issuer,
        audience: &config.token_audience,
        roles_claim: &config.token_roles_claim,
        tenants_claim: &config.token_tenants_claim,
    }
    .verifier("the ledger authenticates every call with a signed token")
}

/// The gate, logging decisions to the database, and the loader that keeps its policy
/// current from the bundle sources.
pub fn policy_gate(
    config: &LedgerConfig,
    db: Db,
) -> anyhow::Result<(PolicyGate, Arc<BundleLoader>)> {
    let decision_log = blindledger_gate::ShipTarget::from_config(
        config.decision_log_url.as_deref(),
        config.decision_log_token_file.as_deref(),
        config.decision_log_file.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let bundle_tls = blindledger_gate::ClientTls {
        ca: config.bundle_tls_ca.clone(),
        cert: config.bundle_tls_cert.clone(),
        key: config.bundle_tls_key.clone(),
    };
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
        bundle_tls: Some(&bundle_tls),
        revision_floor: Some((&db, "ledger")),
        decision_log: decision_log.as_ref(),
        instance_id: config.instance_id.as_deref(),
    };
    settings
        .build(Arc::new(DbDecisionSink::new(db.clone())))
        .context("setting up the policy gate")
}
