//! `spawn_app` and friends.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use blindledger_client::{LedgerClient, TlsSettings};
use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::{decrypt_value, TenantKeys};
use blindledger_ledger::dev::DevCredentials;
use blindledger_ledger::{Application, LedgerConfig};
use blindledger_proto::ledger::v1 as pb;
use blindledger_test_support::{TestDatabase, TestKeys};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Width of the test ledgers: 32 bits halves FHE time and nothing here needs 64.
pub const WIDTH: LedgerWidth = LedgerWidth::U32;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    MySql,
    Sqlite,
}

/// A running ledger instance.
pub struct TestApp {
    pub client: LedgerClient,
    pub addr: std::net::SocketAddr,
    /// The instance's ledger, for what only the process sees (its caches).
    pub ledger: Arc<blindledger_ledger::Ledger>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Stops the instance gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("ledger task panicked")
                .expect("ledger failed");
        }
    }
}

/// A database, object store and credentials shared by the instances of one test.
pub struct TestEnv {
    pub db: TestDatabase,
    pub objects: tempfile::TempDir,
    pub keys: Arc<TenantKeys>,
    /// Token keys and the shipped policy, signed; in `objects/credentials`.
    pub credentials: DevCredentials,
}

/// Sends the ledger's logs to the output of failing tests (RUST_LOG to change the filter).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,blindledger=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The shipped policy, `policies/` at the repository root.
pub fn policies_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        init_logs();
        let db = match backend {
            Backend::MySql => TestDatabase::mysql()
                .await
                .expect("MariaDB for tests (scripts/test.sh starts one)"),
            Backend::Sqlite => TestDatabase::sqlite().expect("sqlite test database"),
        };
        let keys = Arc::new(
            tokio::task::spawn_blocking(TestKeys::load_or_generate)
                .await
                .unwrap()
                .expect("test keys"),
        );
        let objects = tempfile::tempdir().expect("temp dir");
        let credentials =
            DevCredentials::provision(&objects.path().join("credentials"), &policies_dir(), "test")
                .expect("credentials");
        Self {
            db,
            objects,
            keys,
            credentials,
        }
    }

    pub fn config(&self) -> LedgerConfig {
        let mut config = config_for(self.db.url(), self.objects.path());
        self.credentials.configure(&mut config);
        config
    }

    /// A token of `subject` with `roles` on `tenants`, valid for an hour.
    pub fn token(&self, subject: &str, roles: &[&str], tenants: &[&str]) -> String {
        self.credentials
            .token(subject, roles, tenants, Duration::from_secs(3600))
            .expect("token")
    }

    /// An administrator's token.
    pub fn admin_token(&self) -> String {
        self.token("admin", &["admin"], &[])
    }

    pub async fn spawn(&self) -> TestApp {
        spawn_with(self.config(), &self.admin_token()).await
    }
}

/// The configuration of a test instance: ephemeral port, short leases.
pub fn config_for(url: &str, objects: &Path) -> LedgerConfig {
    LedgerConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_addr: None,
        database_url: SecretString::from(url.to_string()),
        object_store_dir: objects.to_path_buf(),
        workers: 2,
        cached_server_keys: 1,
        lease_ms: 3_000,
        ..LedgerConfig::default()
    }
}

/// Starts an instance; its client sends `token`.
pub async fn spawn_with(config: LedgerConfig, token: &str) -> TestApp {
    let app = Application::build(config).await.expect("ledger builds");
    spawn_app_from(app, token).await
}

/// Runs a built instance; its client sends `token`.
pub async fn spawn_app_from(app: Application, token: &str) -> TestApp {
    spawn_app_over(app, None, Some(token)).await
}

/// Runs a built instance; its client connects over `tls` (plaintext when `None`) and sends
/// `token`, if any.
pub async fn spawn_app_over(
    app: Application,
    tls: Option<TlsSettings>,
    token: Option<&str>,
) -> TestApp {
    let addr = app.grpc_addr();
    let ledger = app.ledger();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut client = LedgerClient::connect_with(&format!("{scheme}://{addr}"), tls)
        .await
        .expect("client connects");
    if let Some(token) = token {
        client = client.with_token(token).expect("token is a header value");
    }
    TestApp {
        client,
        addr,
        ledger,
        stop: Some(stop),
        task: Some(task),
    }
}

/// Registers the test keys for `tenant` and opens `accounts`.
pub async fn tenant_with_accounts(
    app: &TestApp,
    keys: &TenantKeys,
    tenant: &str,
    accounts: &[&str],
) {
    app.client
        .register_keys(tenant, "local", WIDTH, keys, |_, _| {})
        .await
        .expect("keys register");
    for account in accounts {
        app.client
            .open_account(tenant, account, None)
            .await
            .expect("account opens");
    }
}

pub fn encrypt(keys: &TenantKeys, value: u64) -> Vec<u8> {
    encrypt_amount(&keys.public_key, WIDTH, value).expect("amount encrypts")
}

pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Waits for a job to finish and asserts it committed.
pub async fn committed(app: &TestApp, job: pb::Job) -> pb::Job {
    let done = tokio::time::timeout(Duration::from_secs(300), app.client.wait_finished(&job.id))
        .await
        .expect("job finishes in time")
        .expect("job can be watched");
    assert_eq!(
        done.state(),
        pb::JobState::Committed,
        "job {} failed: {}",
        done.id,
        done.failure_reason
    );
    done
}

/// Waits for a movement (transfer, withdrawal) to commit and decrypts what it did: the
/// amount moved and whether it was allowed (covered and within the limits).
pub async fn movement(app: &TestApp, keys: &TenantKeys, job: pb::Job) -> (u64, bool) {
    let done = committed(app, job).await;
    let full = app
        .client
        .job(&done.id, true)
        .await
        .expect("job with results");
    let Some(pb::job::Result::Movement(result)) = full.result else {
        panic!("movement results missing")
    };
    let moved = decrypt_value(&keys.client_key, WIDTH, &result.moved).expect("moved decrypts");
    let ok =
        blindledger_keyholder::decrypt_flag(&keys.client_key, &result.ok).expect("flag decrypts");
    (moved, ok)
}

/// Fetches and decrypts a balance.
pub async fn balance(app: &TestApp, keys: &TenantKeys, tenant: &str, account: &str) -> u64 {
    let (width, bytes, _) = app.client.balance(tenant, account).await.expect("balance");
    decrypt_value(&keys.client_key, width, &bytes).expect("balance decrypts")
}

/// The gRPC status code of a failed client call.
pub fn code<T: std::fmt::Debug>(result: Result<T, blindledger_client::ClientError>) -> tonic::Code {
    match result {
        Err(blindledger_client::ClientError::Status(status)) => status.code(),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// Starts `blindledger-ledger` as a process and returns it once it listens.
pub async fn start_process(env: &TestEnv) -> (Child, LedgerClient) {
    start_process_with(env, &[]).await
}

/// Starts `blindledger-ledger` with further environment variables
/// (`BLINDLEDGER_LEDGER_*` settings, `AWS_*` object store credentials).
pub async fn start_process_with(env: &TestEnv, settings: &[(&str, &str)]) -> (Child, LedgerClient) {
    let (child, client, _) = start_process_metered(env, settings).await;
    (child, client)
}

/// Starts `blindledger-ledger` as [`start_process_with`] does; also returns the address of
/// its `/metrics` listener.
pub async fn start_process_metered(
    env: &TestEnv,
    settings: &[(&str, &str)],
) -> (Child, LedgerClient, String) {
    // Keys and bundle paths come from a config file, the rest from the environment.
    let config_file = env.objects.path().join("ledger.toml");
    std::fs::write(&config_file, toml::to_string(&env.config()).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blindledger-ledger"))
        .arg("--config")
        .arg(&config_file)
        .env("BLINDLEDGER_LEDGER_LISTEN_ADDR", "127.0.0.1:0")
        .env("BLINDLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0")
        .env("BLINDLEDGER_LEDGER_DATABASE_URL", env.db.url())
        .env("BLINDLEDGER_LEDGER_OBJECT_STORE_DIR", env.objects.path())
        .env("BLINDLEDGER_LEDGER_LEASE_MS", "2000")
        .env("RUST_LOG", "warn")
        .envs(settings.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ledger binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut metrics = String::new();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .expect("stdout readable")
            .expect("ledger printed its address");
        if let Some(addr) = line.strip_prefix("metrics ") {
            metrics = addr.to_string();
        }
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.to_string();
        }
    };
    let client = LedgerClient::connect(&format!("http://{addr}"))
        .await
        .expect("client connects")
        .with_token(&env.admin_token())
        .unwrap();
    (child, client, metrics)
}
