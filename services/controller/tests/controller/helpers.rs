//! `spawn_app` and friends: a database per test, real keys, the controller on a loopback
//! port, and a real webhook receiver.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use blindledger_audit::admin::{generate_officer_keypair, sign_command, Command, CommandPayload};
use blindledger_controller::{Application, Controller, ControllerConfig, TierThresholds};
use blindledger_gate::TokenIssuer;
use blindledger_policy::{sign_bundle, Bundle, SigningKey};
use blindledger_test_support::TestDatabase;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

/// Key id of the CI key the controller trusts.
pub const CI_KID: &str = "ci";
/// Key id of the controller's risk-bundle key.
pub const CONTROLLER_KID: &str = "controller";
/// Key id of the officer whose orders the controller carries out.
pub const OFFICER_KID: &str = "officer-1";

/// Sends logs to the output of failing tests (RUST_LOG to change the filter).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,blindledger_controller=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The shipped policy, `policies/` at the repository root.
pub fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

/// Keys of one test: the controller's, CI's, and the API token issuer's, as PEM files.
pub struct TestKeys {
    pub dir: tempfile::TempDir,
    pub controller: SigningKey,
    pub ci: SigningKey,
    pub issuer: TokenIssuer,
    /// The officer's private key (PKCS#8 PEM).
    pub officer: String,
}

impl TestKeys {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let controller = SigningKey::generate();
        let ci = SigningKey::generate();
        write(
            dir.path(),
            "controller.key",
            controller.to_pem().unwrap().expose_secret(),
        );
        write(dir.path(), "ci.pub", &ci.public_key_pem().unwrap());
        let (token_private, token_public) = blindledger_gate::generate_keypair().unwrap();
        write(dir.path(), "token.pub", &token_public);
        let issuer = TokenIssuer::new(
            &token_private,
            "test",
            "blindledger",
            blindledger_gate::audiences::CONTROLLER,
        )
        .unwrap();
        let (officer, officer_public) = generate_officer_keypair().unwrap();
        write(dir.path(), "officer.pub", &officer_public);
        TestKeys {
            dir,
            controller,
            ci,
            issuer,
            officer,
        }
    }

    /// `command` on `target` as the officer signs it and the audit service stores it
    /// (the `signed_command` column): `SignedCommand` JSON.
    pub fn order(&self, command: Command, target: &str) -> String {
        let payload = CommandPayload::new(command, target, "review", OFFICER_KID);
        serde_json::to_string(&sign_command(&payload, &self.officer).unwrap()).unwrap()
    }

    /// A token of `subject` with `roles`, valid for an hour.
    pub fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.token_for(subject, roles, Duration::from_secs(3600))
    }

    /// A token of `subject` with `roles`, valid for `ttl`.
    pub fn token_for(&self, subject: &str, roles: &[&str], ttl: Duration) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.issuer.issue(subject, &roles, &[], ttl).unwrap()
    }

    /// A file holding a service's token for the bundle routes (`bundle_token_file`).
    pub fn bundle_token_file(&self) -> PathBuf {
        let path = self.dir.path().join("bundle.token");
        std::fs::write(&path, self.token("ledger-1", &["bundle_reader"])).unwrap();
        path
    }

    /// The keys a service trusts: CI for policy, the controller for risk.
    pub fn service_keys(&self) -> std::collections::BTreeMap<String, String> {
        [
            (CI_KID.to_string(), self.ci.public_key_pem().unwrap()),
            (
                CONTROLLER_KID.to_string(),
                self.controller.public_key_pem().unwrap(),
            ),
        ]
        .into()
    }

    /// The shipped policy as bundle `blindledger` at `revision`, signed by CI.
    pub fn signed_policy(&self, revision: &str) -> Vec<u8> {
        let bundle = Bundle::from_dir("blindledger", &policies_dir(), revision).unwrap();
        signed(bundle, &self.ci, CI_KID)
    }
}

/// Signs `bundle` with `key` as `kid` and returns its archive.
pub fn signed(mut bundle: Bundle, key: &SigningKey, kid: &str) -> Vec<u8> {
    sign_bundle(&mut bundle, key, kid, None).unwrap();
    bundle.to_tar_gz().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The revision of the policy every test instance starts with.
pub const INITIAL_REVISION: &str = "v0";

/// The configuration of a test instance: ephemeral port, cycles on demand only, a one-hour
/// window with night from 00:00 to 06:00 UTC, fast alert retries.
pub fn config(db: &TestDatabase, keys: &TestKeys, webhook: Option<String>) -> ControllerConfig {
    let dir = keys.dir.path();
    // The first policy of a fresh installation: the controller's own API is decided by it.
    let initial = dir.join("initial-policy.tar.gz");
    std::fs::write(&initial, keys.signed_policy(INITIAL_REVISION)).unwrap();
    ControllerConfig {
        initial_policy_bundle: Some(initial),
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: SecretString::from(db.url().to_string()),
        signing_key: Some(dir.join("controller.key")),
        signing_kid: CONTROLLER_KID.into(),
        ci_keys: [(CI_KID.to_string(), dir.join("ci.pub"))].into(),
        officer_keys: [(OFFICER_KID.to_string(), dir.join("officer.pub"))].into(),
        token_keys: [("test".to_string(), dir.join("token.pub"))].into(),
        cycle_interval_ms: 0,
        window_ms: 3_600_000,
        baseline_ms: 86_400_000,
        min_training_rows: 8,
        model_seed: 7,
        thresholds: TierThresholds {
            medium: 0.62,
            high: 0.68,
            blocked: 0.95,
            margin: 0.05,
        },
        alert_webhook_url: webhook.map(SecretString::from),
        alert_timeout_ms: 500,
        alert_backoff_initial_ms: 50,
        alert_backoff_max_ms: 200,
        impact_replay: 500,
        ..ControllerConfig::default()
    }
}

/// A running controller.
pub struct TestApp {
    pub base_url: String,
    pub controller: Arc<Controller>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(config: ControllerConfig) -> TestApp {
        init_logs();
        // reqwest is built without a default TLS provider in this workspace.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app = Application::build(config).await.expect("controller builds");
        let base_url = app.base_url();
        let controller = app.controller();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            base_url,
            controller,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the instance gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// The JSON body of a response.
pub async fn json(response: reqwest::Response) -> serde_json::Value {
    let bytes = response.bytes().await.unwrap();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}
