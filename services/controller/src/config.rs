//! Controller configuration: defaults, then a TOML file, then `BLINDLEDGER_CONTROLLER_*`
//! environment variables (e.g. `BLINDLEDGER_CONTROLLER_LISTEN_ADDR`,
//! `BLINDLEDGER_CONTROLLER_CYCLE_INTERVAL_MS`), loaded by [`blindledger_service`]. Nested
//! values take figment's inline syntax in the environment:
//! `BLINDLEDGER_CONTROLLER_THRESHOLDS='{medium=0.6,high=0.7,blocked=0.8,margin=0.05}'`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use blindledger_service::ServiceConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::tier::{RiskTier, TierLimits, TierThresholds};

/// Everything the controller needs to start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// HTTP listen address (bundles, JSON API, `/metrics`); port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// The ledger's database, read for decision logs and job metadata:
    /// `sqlite://path?mode=rwc`, `mysql://user:password@host:port/database`, or a Galera
    /// node list `mysql://user:password@db1:3306,db2:3306,db3:3306/database` (failed over
    /// between in order).
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    /// Most database connections (at least 4: a cycle reads on three at once).
    pub max_connections: u32,
    /// Run the shared migrations at start-up.
    pub migrate: bool,
    /// Ed25519 private key (PKCS#8 PEM file) signing the `risk` bundle.
    pub signing_key: Option<PathBuf>,
    /// Key id written in the risk bundle's signature; services map it to the public key.
    pub signing_kid: String,
    /// Scope written in the risk bundle's signature, if the services require one.
    pub signing_scope: Option<String>,
    /// Ed25519 public keys (PEM files) of CI, by key id: pushed bundles must verify with one.
    pub ci_keys: BTreeMap<String, PathBuf>,
    /// Scope pushed bundles must carry, if any.
    pub ci_scope: Option<String>,
    /// Ed25519 public keys (PEM files) of the officers, by key id (the audit service's
    /// `officer_keys`): a freeze, key revocation or rollback is carried out only when the
    /// officer's signature on the stored command verifies with one. None: no order is.
    pub officer_keys: BTreeMap<String, PathBuf>,
    /// Oldest officer-ordered rollback carried out, from the time the officer signed it: a
    /// copy of an old order written into `admin_actions` again is not carried out twice.
    pub rollback_max_age_ms: u64,
    /// Public keys (PEM or JWK files) verifying API tokens, by key id. Required unless
    /// `token_jwks_url` is set.
    pub token_keys: BTreeMap<String, PathBuf>,
    /// Required `iss` of API tokens.
    pub token_issuer: String,
    /// Required `aud` of API tokens: by default this service's own, `"blindledger-controller"`, so a token
    /// issued for another service is refused here.
    pub token_audience: String,
    /// An identity provider's JWKS URL: tokens signed with its keys (RS256, ES256, EdDSA...)
    /// are accepted too. Fetched at start, every 5 minutes, and when a token names a key id
    /// not yet known (at most every 10 s).
    pub token_jwks_url: Option<String>,
    /// The claim roles are read from (a dotted path reaches into objects, e.g.
    /// `realm_access.roles`); an array of strings or a space-separated string.
    pub token_roles_claim: String,
    /// The claim tenants are read from, as `token_roles_claim`.
    pub token_tenants_claim: String,
    /// A signed `blindledger` bundle served when none was ever pushed (verified with
    /// `ci_keys`, no tests or impact analysis): the first policy of a fresh installation.
    pub initial_policy_bundle: Option<PathBuf>,
    /// Time between scheduled risk cycles; 0 runs cycles only on demand.
    pub cycle_interval_ms: u64,
    /// How often officers' accepted commands (freezes, bundle rollbacks) are picked up from
    /// the audit tables and carried out; 0 disables.
    pub admin_sync_ms: u64,
    /// Age after which a cycle trains a new model instead of reusing the latest one.
    pub retrain_interval_ms: u64,
    /// Length of the feature window, ending at the cycle's time.
    pub window_ms: u64,
    /// Length of the baseline window before it (what "new counterparty" is measured against).
    pub baseline_ms: u64,
    /// First hour (UTC) counted as night.
    pub night_start_hour: u32,
    /// Hour (UTC) at which night ends; may be less than the start (night spans midnight).
    pub night_end_hour: u32,
    /// Fewest entities of a kind needed to train a model; below it tiers stay as they are.
    pub min_training_rows: usize,
    /// Seed of the isolation forest.
    pub model_seed: u64,
    /// Model versions that keep their serialised forest in the registry.
    pub model_retention: u32,
    /// Score thresholds of the tiers, with the hysteresis margin.
    pub thresholds: TierThresholds,
    /// Limits enforced per tier (obligations of the shipped policy), e.g. `medium`, `high`.
    pub tier_limits: BTreeMap<RiskTier, TierLimits>,
    /// Slack-compatible incoming-webhook URL for alerts; none disables alerts.
    #[serde(serialize_with = "expose_opt")]
    pub alert_webhook_url: Option<SecretString>,
    /// The same alert key (account and tier, bundle and revision) is sent at most once in
    /// this period.
    pub alert_dedupe_ms: u64,
    /// Timeout of one webhook delivery.
    pub alert_timeout_ms: u64,
    /// First retry delay of a failed delivery; doubled per attempt.
    pub alert_backoff_initial_ms: u64,
    /// Longest retry delay.
    pub alert_backoff_max_ms: u64,
    /// Logged decisions replayed by the impact analysis of a pushed bundle.
    pub impact_replay: u32,
    /// Default refusal threshold of a push: most decisions allowed to change (none: report
    /// only). A push may tighten it with `?max_changed=`, never loosen it.
    pub impact_max_changed: Option<u64>,
    /// Certificate chain (PEM file) of this service's HTTPS listener; with `tls_key`,
    /// HTTPS only. Unset: plain HTTP (behind a TLS-terminating proxy only).
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM file).
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM file): every client must present a certificate chaining to
    /// them (mTLS); needs `tls_cert`.
    pub tls_client_ca: Option<PathBuf>,
    /// How long a stopping service (SIGTERM, Ctrl-C) lets open requests finish before it
    /// closes their connections and exits. Keep it under the orchestrator's own grace
    /// period (Kubernetes: 30 s).
    pub shutdown_grace_ms: u64,
    /// A second, plain-HTTP listener serving only `/metrics` and the health check, for
    /// Prometheus and an orchestrator's probes when the main port requires client
    /// certificates (`tls_client_ca`); port 0 picks a free port. Unset: none.
    pub metrics_addr: Option<SocketAddr>,
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_opt<S: serde::Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8181)),
            database_url: SecretString::from("sqlite://data/ledger.db?mode=rwc"),
            max_connections: 4,
            migrate: true,
            signing_key: None,
            signing_kid: "controller".into(),
            signing_scope: None,
            ci_keys: BTreeMap::new(),
            officer_keys: BTreeMap::new(),
            rollback_max_age_ms: 3_600_000,
            ci_scope: None,
            token_keys: BTreeMap::new(),
            token_issuer: "blindledger".into(),
            token_audience: blindledger_gate::audiences::CONTROLLER.into(),
            token_jwks_url: None,
            token_roles_claim: "roles".into(),
            token_tenants_claim: "tenants".into(),
            initial_policy_bundle: None,
            cycle_interval_ms: 60_000,
            admin_sync_ms: 1_000,
            retrain_interval_ms: 3_600_000,
            window_ms: 3_600_000,
            baseline_ms: 86_400_000,
            night_start_hour: 0,
            night_end_hour: 6,
            min_training_rows: 16,
            model_seed: 0,
            model_retention: 48,
            thresholds: TierThresholds::default(),
            tier_limits: TierLimits::defaults(),
            alert_webhook_url: None,
            alert_dedupe_ms: 86_400_000,
            alert_timeout_ms: 10_000,
            alert_backoff_initial_ms: 1_000,
            alert_backoff_max_ms: 300_000,
            impact_replay: 1_000,
            impact_max_changed: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            shutdown_grace_ms: 20_000,
            metrics_addr: None,
        }
    }
}

impl ControllerConfig {
    /// Checks values that types alone cannot: ordered thresholds, hours of a day, limits
    /// only for the tiers that take them.
    pub fn validate(&self) -> Result<(), String> {
        self.thresholds.validate()?;
        if self.night_start_hour > 23 || self.night_end_hour > 24 {
            return Err("night_start_hour must be 0-23 and night_end_hour 0-24".into());
        }
        if self.window_ms < 60_000 {
            return Err("window_ms must be at least one minute".into());
        }
        for tier in self.tier_limits.keys() {
            if !matches!(tier, RiskTier::Medium | RiskTier::High) {
                return Err(format!(
                    "tier_limits: tier {tier} takes no limits (only medium and high)"
                ));
            }
        }
        Ok(())
    }

    /// The database URL with any password hidden, for logs.
    pub fn database_url_redacted(&self) -> String {
        blindledger_telemetry::redact_url(self.database_url.expose_secret())
    }
}

impl ServiceConfig for ControllerConfig {
    const SERVICE: &'static str = "blindledger-controller";
    const ABOUT: &'static str =
        "The BlindLedger controller: risk scores, the risk bundle, the bundle server and policy pushes.";
    const ENV_PREFIX: &'static str = "BLINDLEDGER_CONTROLLER_";
    const FORMER_ENV_PREFIX: Option<&'static str> = Some(blindledger_service::FORMER_SHARED_PREFIX);
    fn validate(&self) -> Result<(), String> {
        ControllerConfig::validate(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_reject_unknown_keys_and_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("controller.toml");
        std::fs::write(&path, "window_ms = 120000\nwindow_mz = 4\n").unwrap();
        let err = ControllerConfig::from_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("window_mz"), "{err}");
        let toml = "[thresholds]\nmedium = 0.9\nhigh = 0.7\nblocked = 0.95\nmargin = 0.05\n";
        std::fs::write(&path, toml).unwrap();
        let err = ControllerConfig::from_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("thresholds"), "{err}");
        let toml = "[tier_limits.low]\nmax_amount = 1\nwindow_limit = 1\nwindow_seconds = 1\n";
        std::fs::write(&path, toml).unwrap();
        assert!(ControllerConfig::from_file(Some(&path)).is_err());
        let toml = "[tier_limits.high]\nmax_amount = 5\nwindow_limit = 10\nwindow_seconds = 60\n";
        std::fs::write(&path, toml).unwrap();
        let config = ControllerConfig::from_file(Some(&path)).unwrap();
        assert_eq!(config.tier_limits[&RiskTier::High].max_amount, 5);
    }

    #[test]
    fn passwords_are_redacted() {
        let config = ControllerConfig {
            database_url: SecretString::from("mysql://app:s3cret@db:3306/ledger"),
            ..ControllerConfig::default()
        };
        assert_eq!(config.database_url_redacted(), "mysql://***@db:3306/ledger");
    }
}
