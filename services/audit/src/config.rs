//! Audit service configuration: defaults, then a TOML file, then `BLINDLEDGER_AUDIT_*`
//! environment variables (e.g. `BLINDLEDGER_AUDIT_DATABASE_URL`), loaded by
//! [`blindledger_service`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use blindledger_gate::BundleSource;
use blindledger_service::ServiceConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Everything the audit service needs to start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// HTTP listen address (dashboard, API, SSE, `/metrics`); port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// `sqlite://path?mode=rwc`, `mysql://user:password@host:port/database`, or a Galera
    /// node list `mysql://user:password@db1:3306,db2:3306,db3:3306/database` (failed over
    /// between in order): the database the ledger and controller write to.
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    /// Most database connections.
    pub max_connections: u32,
    /// Run the shared migrations at start-up.
    pub migrate: bool,
    /// Public keys (PEM or JWK files) verifying officers' sign-in tokens, by key id; or
    /// `token_jwks_url`.
    pub token_keys: BTreeMap<String, PathBuf>,
    /// Required `iss` of sign-in tokens.
    pub token_issuer: String,
    /// Required `aud` of sign-in tokens: by default this service's own, `"blindledger-audit"`, so a token
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
    /// Ships every decision-log event, besides the database copy, to a decision-log service
    /// as OPA does (gzip JSON arrays POSTed to this URL, batched, retried), e.g.
    /// `https://logs.example.com/logs`.
    pub decision_log_url: Option<String>,
    /// A file holding the bearer token sent to `decision_log_url` (re-read for each batch).
    pub decision_log_token_file: Option<PathBuf>,
    /// Appends every decision-log event to this file as a JSON line instead.
    pub decision_log_file: Option<PathBuf>,
    /// Region this instance runs in, as the policy's `context.service_region`.
    pub region: String,
    /// The `blindledger` policy bundle deciding every dashboard request: a file path, or
    /// the URL of a bundle server (the controller). Until a valid one is loaded, requests
    /// are refused with 503.
    pub policy_bundle: Option<BundleSource>,
    /// The controller's `risk` data bundle (path or URL); optional.
    pub risk_bundle: Option<BundleSource>,
    /// Ed25519 public keys (PEM files) verifying bundle signatures, by key id.
    pub bundle_keys: BTreeMap<String, PathBuf>,
    /// Keys verifying the risk bundle only (the controller's), by key id: set, they
    /// cannot sign the rules and `bundle_keys` cannot sign risk data. Unset, `bundle_keys`
    /// verify both (a warning is logged).
    pub risk_bundle_keys: BTreeMap<String, PathBuf>,
    /// Refuse unsigned bundles (never turn off outside development).
    pub require_signed_bundles: bool,
    /// Signature scope bundles must carry, if any.
    pub bundle_scope: Option<String>,
    /// How often bundle sources are polled for a new revision.
    pub policy_poll_ms: u64,
    /// How long a bundle server that supports it (the controller) is asked to hold a poll
    /// until a new revision is out (long polling), in seconds; 0 turns it off.
    pub policy_long_poll_s: u64,
    /// A file holding the bearer token sent with every bundle download (the controller
    /// serves bundles only to a token with the `bundle_reader` role and its audience); read
    /// before each request, so it can be rotated in place.
    pub bundle_token_file: Option<PathBuf>,
    /// Ed25519 public keys (PEM files) of officers allowed to sign admin commands, by key id.
    pub officer_keys: BTreeMap<String, PathBuf>,
    /// Accepted distance between a command's `issued_at` and the clock, in milliseconds.
    pub command_window_ms: i64,
    /// The Ed25519 private key (PKCS#8 PEM file) signing checkpoints; none: no checkpoints.
    pub checkpoint_key: Option<PathBuf>,
    /// Key id of `checkpoint_key`.
    pub checkpoint_key_id: String,
    /// Further public keys (PEM files) accepted on stored checkpoints (former keys).
    pub checkpoint_public_keys: BTreeMap<String, PathBuf>,
    /// How often a checkpoint is signed when the chain has grown.
    pub checkpoint_interval_ms: u64,
    /// Directory every signed checkpoint is also published to, out of the database
    /// writers' reach (another disk or host; a write-once bucket mounted there in
    /// production). Verification checks the chain against it.
    pub checkpoint_publish_dir: Option<PathBuf>,
    /// How long a row may wait for a published checkpoint before verification reports it.
    pub checkpoint_max_unpublished_ms: u64,
    /// The archive of the trail, written by `blindledger audit archive` (`file:///dir` or
    /// `s3://bucket/prefix`, credentials from `AWS_*`): verification checks its segments,
    /// then the database's rows after it (the archived ones may have been pruned).
    pub archive_url: Option<String>,
    /// How often the decision log, jobs and bundle activations are imported; 0 disables.
    pub import_interval_ms: u64,
    /// How far behind the clock sources are imported; unset: the engine's default.
    pub import_settle_ms: Option<i64>,
    /// How often new decisions are pushed to live dashboards.
    pub live_poll_ms: u64,
    /// Always mark the session cookie `Secure`. Without it, the cookie is `Secure` when the
    /// proxy in front says the request came over TLS (`X-Forwarded-Proto: https` or
    /// `Forwarded: proto=https`).
    pub secure_cookies: bool,
    /// An OpenID Connect provider officers sign in through (authorization code with PKCE);
    /// unset, officers paste a token. Its discovery document is read from
    /// `<oidc_issuer>/.well-known/openid-configuration`.
    pub oidc_issuer: Option<String>,
    /// This service's client id at the provider (the ID tokens' audience).
    pub oidc_client_id: Option<String>,
    /// A file holding the client secret, for a confidential client.
    pub oidc_client_secret_file: Option<PathBuf>,
    /// Where the provider sends officers back: `https://<dashboard>/login/callback`.
    pub oidc_redirect_url: Option<String>,
    /// Scopes asked for (`openid` is always added).
    pub oidc_scopes: String,
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
    /// CA certificates (PEM file) an HTTPS bundle server's certificate must chain to;
    /// unset: the system's roots.
    pub bundle_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM file) presented to a bundle server that requires one
    /// (mTLS); with `bundle_tls_key`.
    pub bundle_tls_cert: Option<PathBuf>,
    /// The private key of `bundle_tls_cert` (PEM file).
    pub bundle_tls_key: Option<PathBuf>,
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8088)),
            database_url: SecretString::from("sqlite://data/ledger.db?mode=rwc"),
            max_connections: 8,
            migrate: true,
            token_keys: BTreeMap::new(),
            token_issuer: "blindledger".into(),
            token_audience: blindledger_gate::audiences::AUDIT.into(),
            token_jwks_url: None,
            token_roles_claim: "roles".into(),
            token_tenants_claim: "tenants".into(),
            decision_log_url: None,
            decision_log_token_file: None,
            decision_log_file: None,
            region: "local".into(),
            policy_bundle: None,
            risk_bundle: None,
            bundle_keys: BTreeMap::new(),
            risk_bundle_keys: BTreeMap::new(),
            require_signed_bundles: true,
            bundle_scope: None,
            policy_poll_ms: 5_000,
            policy_long_poll_s: 30,
            bundle_token_file: None,
            officer_keys: BTreeMap::new(),
            command_window_ms: blindledger_audit::admin::DEFAULT_WINDOW_MS,
            checkpoint_key: None,
            checkpoint_key_id: "audit-1".into(),
            checkpoint_public_keys: BTreeMap::new(),
            checkpoint_interval_ms: 60_000,
            checkpoint_publish_dir: None,
            checkpoint_max_unpublished_ms: 600_000,
            archive_url: None,
            import_interval_ms: 1_000,
            import_settle_ms: None,
            live_poll_ms: 250,
            secure_cookies: false,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret_file: None,
            oidc_redirect_url: None,
            oidc_scopes: "openid profile email".into(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            shutdown_grace_ms: 20_000,
            metrics_addr: None,
            bundle_tls_ca: None,
            bundle_tls_cert: None,
            bundle_tls_key: None,
        }
    }
}

impl AuditConfig {
    /// The database URL with any password hidden, for logs.
    pub fn database_url_redacted(&self) -> String {
        blindledger_telemetry::redact_url(self.database_url.expose_secret())
    }
}

impl ServiceConfig for AuditConfig {
    const SERVICE: &'static str = "blindledger-audit";
    const ABOUT: &'static str =
        "The BlindLedger audit service: the compliance dashboard, audit API and audit trail.";
    const ENV_PREFIX: &'static str = "BLINDLEDGER_AUDIT_";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_reject_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.toml");
        std::fs::write(&path, "live_poll_ms = 100\nlive_pol_ms = 4\n").unwrap();
        let err = AuditConfig::from_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("live_pol_ms"), "{err}");
        std::fs::write(&path, "live_poll_ms = 100\n").unwrap();
        assert_eq!(
            AuditConfig::from_file(Some(&path)).unwrap().live_poll_ms,
            100
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let config = AuditConfig {
            database_url: SecretString::from("mysql://app:s3cret@db:3306/ledger"),
            ..AuditConfig::default()
        };
        assert_eq!(config.database_url_redacted(), "mysql://***@db:3306/ledger");
    }
}
