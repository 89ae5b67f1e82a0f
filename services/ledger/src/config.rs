//! Ledger configuration: defaults, then a TOML file, then `BLINDLEDGER_LEDGER_*`
//! environment variables (e.g. `BLINDLEDGER_LEDGER_DATABASE_URL`,
//! `BLINDLEDGER_LEDGER_LISTEN_ADDR`), loaded by [`blindledger_service`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use blindledger_fhe::{BackendError, FheBackend};
use blindledger_gate::{BundleSource, PeerGrant};
use blindledger_service::ServiceConfig;
use blindledger_telemetry::redact_url;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Everything the ledger service needs to start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// Prometheus `/metrics` listen address; `None` disables it.
    pub metrics_addr: Option<SocketAddr>,
    /// `sqlite://path?mode=rwc` or `mysql://user:password@host:port/database`.
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    /// Most database connections.
    pub max_connections: u32,
    /// Directory of the local object store holding server keys.
    pub object_store_dir: PathBuf,
    /// The object store holding server keys, instead of `object_store_dir`: `file:///dir`,
    /// or `s3://bucket/prefix` for S3 or an S3-compatible server (credentials, region and
    /// endpoint from the standard `AWS_*` variables), so that every instance shares them.
    pub object_store_url: Option<String>,
    /// Region this instance runs in (data residency).
    pub region: String,
    /// Concurrent job workers (database I/O overlaps; FHE work is serialised on the pool).
    /// 0: this instance serves the API only and other instances run the jobs.
    pub workers: usize,
    /// FHE threads of each parallel job; 0 means the machine's cores shared out among
    /// `fhe_parallel_jobs`.
    pub fhe_threads: usize,
    /// Jobs computed at once, each on its own threads with its own tenant's key; jobs on
    /// one account still run in submission order. 0: one per 8 cores, at least one (one
    /// 64-bit transfer keeps about 8 cores busy); on GPUs, one per GPU.
    pub fhe_parallel_jobs: usize,
    /// Where jobs compute: `"cpu"`, or `"gpu"` for NVIDIA GPUs through tfhe's CUDA backend
    /// (a binary built with the `gpu` feature, see `scripts/build-gpu.sh`, and the NVIDIA
    /// driver 580 or later). Job lane `i` of `fhe_parallel_jobs` runs on GPU `i` mod the
    /// number of GPUs, and each tenant key is decompressed onto every GPU used (300+ MiB
    /// each). A binary without the feature refuses `"gpu"` at start-up.
    pub fhe_backend: FheBackend,
    /// Most jobs a worker computes as one chain: a job and the later jobs queued on its
    /// accounts that wait on nothing else, run in submission order with balances passed
    /// in memory and committed in one transaction (each account's balance compressed and
    /// written once). Longer chains save a compression and a commit per job but make a
    /// chain's first job wait for its last. 1 runs every job alone.
    pub chain_jobs: usize,
    /// How often an idle instance folds the running totals aggregates read (one worker
    /// at a time), so that an aggregate finds them stored; 0 never does, and aggregates
    /// then fold what they need themselves.
    pub fold_interval_ms: u64,
    /// Memory for decompressed balances, window allowances and job results, in MiB (an
    /// FheUint64 takes about 0.5 MiB): a job on accounts whose balances are held, and a
    /// read of a held balance, decompress nothing. 0 keeps none.
    pub balance_cache_mib: usize,
    /// Decompressed server keys kept in memory (300+ MiB each).
    pub cached_server_keys: usize,
    /// How long a claimed job is reserved for its worker before another may take it;
    /// renewed every third of it while the worker computes.
    pub lease_ms: u64,
    /// Times a job may be claimed: a job released after storage failures this often, or
    /// claimed again after this many workers stopped while computing it, is failed.
    pub max_attempts: i64,
    /// How long a stopping instance (SIGTERM, Ctrl-C) waits for its calls and running jobs
    /// to finish; jobs still computing then are released for another instance and the
    /// process exits. Keep it under the orchestrator's own grace period (Kubernetes: 30 s).
    pub shutdown_grace_ms: u64,
    /// Jobs one tenant may have queued or running at once; more are refused with
    /// RESOURCE_EXHAUSTED, so one tenant cannot fill the queue for all.
    pub max_open_jobs_per_tenant: u64,
    /// `WatchJob` streams one tenant may hold open at once (each holds a task and a
    /// subscription until its job ends).
    pub max_watches_per_tenant: usize,
    /// How often the instance reads job changes made by other instances from the database,
    /// for its open `WatchJob` streams (one read per instance, not one per stream; none
    /// while no stream is open).
    pub watch_poll_ms: u64,
    /// Largest gRPC message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Name of this instance in job leases; random when unset.
    pub instance_id: Option<String>,
    /// Run migrations at start-up. Turn off where one process migrates a shared cluster.
    pub migrate: bool,
    /// The `blindledger` policy bundle (OPA tar.gz): a file path, or the `http(s)://` URL
    /// of a bundle server polled with ETags. Until a valid one is loaded, every call is
    /// refused with UNAVAILABLE.
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
    /// Public keys verifying access tokens, by key id: PEM (SPKI or PKCS#1) or JWK files of
    /// Ed25519, RSA, P-256 or P-384 keys. Required unless `token_jwks_url` is set.
    pub token_keys: BTreeMap<String, PathBuf>,
    /// Required `iss` of access tokens.
    pub token_issuer: String,
    /// Required `aud` of access tokens: by default this service's own, `"blindledger-ledger"`, so a token
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
    /// The server's certificate chain (PEM file): serve gRPC over TLS. Unset: plaintext
    /// (behind a mesh or on localhost).
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM file).
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM file) client certificates must chain to: every connection
    /// then needs one (mTLS), and its identity (URI or DNS SAN) reaches the policy as
    /// `input.peer`.
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificate identities allowed to call without a token, with the roles and
    /// tenants each is granted (needs `tls_client_ca`).
    pub peer_grants: BTreeMap<String, PeerGrant>,
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
    use secrecy::ExposeSecret;
    s.serialize_str(secret.expose_secret())
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            database_url: SecretString::from("sqlite://data/ledger.db?mode=rwc"),
            max_connections: 16,
            object_store_dir: PathBuf::from("data/objects"),
            object_store_url: None,
            region: "local".into(),
            workers: 4,
            max_open_jobs_per_tenant: 1_000,
            max_watches_per_tenant: 64,
            watch_poll_ms: 500,
            fhe_threads: 0,
            fhe_parallel_jobs: 0,
            fhe_backend: FheBackend::Cpu,
            chain_jobs: 4,
            fold_interval_ms: 60_000,
            balance_cache_mib: 256,
            cached_server_keys: 2,
            lease_ms: 30_000,
            max_attempts: 5,
            shutdown_grace_ms: 20_000,
            max_message_bytes: 8 * 1024 * 1024,
            instance_id: None,
            migrate: true,
            policy_bundle: None,
            risk_bundle: None,
            bundle_keys: BTreeMap::new(),
            risk_bundle_keys: BTreeMap::new(),
            require_signed_bundles: true,
            bundle_scope: None,
            policy_poll_ms: 5_000,
            policy_long_poll_s: 30,
            bundle_token_file: None,
            token_keys: BTreeMap::new(),
            token_issuer: "blindledger".into(),
            token_audience: blindledger_gate::audiences::LEDGER.into(),
            token_jwks_url: None,
            token_roles_claim: "roles".into(),
            token_tenants_claim: "tenants".into(),
            decision_log_url: None,
            decision_log_token_file: None,
            decision_log_file: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            peer_grants: BTreeMap::new(),
            bundle_tls_ca: None,
            bundle_tls_cert: None,
            bundle_tls_key: None,
        }
    }
}

impl LedgerConfig {
    /// The database URL with any password hidden, for logs.
    pub fn database_url_redacted(&self) -> String {
        use secrecy::ExposeSecret;
        redact_url(self.database_url.expose_secret())
    }
}

impl ServiceConfig for LedgerConfig {
    const SERVICE: &'static str = "blindledger-ledger";
    const ABOUT: &'static str =
        "The BlindLedger ledger: gRPC verbs on encrypted amounts, and the workers that compute them.";
    const ENV_PREFIX: &'static str = "BLINDLEDGER_LEDGER_";
    const FORMER_ENV_PREFIX: Option<&'static str> = Some(blindledger_service::FORMER_SHARED_PREFIX);

    fn validate(&self) -> Result<(), String> {
        if !self.fhe_backend.is_built() {
            return Err(format!("fhe_backend: {}", BackendError::GpuNotBuilt));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_reject_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.toml");
        std::fs::write(&path, "workers = 3\nworkerz = 4\n").unwrap();
        let err = LedgerConfig::from_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("workerz"), "{err}");
        std::fs::write(&path, "workers = 3\n").unwrap();
        assert_eq!(LedgerConfig::from_file(Some(&path)).unwrap().workers, 3);
    }

    #[test]
    fn the_fhe_backend_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.toml");
        let config = LedgerConfig::from_file(None).unwrap();
        assert_eq!(config.fhe_backend, FheBackend::Cpu);
        std::fs::write(&path, "fhe_backend = \"gpu\"\n").unwrap();
        match LedgerConfig::from_file(Some(&path)) {
            Ok(config) => assert_eq!(config.fhe_backend, FheBackend::Gpu),
            // A binary without the `gpu` feature says so at start-up.
            Err(err) => {
                assert!(!FheBackend::Gpu.is_built());
                assert!(err.to_string().contains("`gpu` feature"), "{err}");
            }
        }
        std::fs::write(&path, "fhe_backend = \"tpu\"\n").unwrap();
        let err = LedgerConfig::from_file(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("mysql://app:s3cret@db:3306/ledger"),
            "mysql://***@db:3306/ledger"
        );
        assert_eq!(redact_url("sqlite://data/l.db"), "sqlite://data/l.db");
    }
}
