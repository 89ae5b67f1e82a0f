//! The example production configuration of `deploy/config/`, run as written: only the host
//! names, the file locations and the database change. The controller, the ledger and the
//! audit service start on those files with TLS and client certificates on every port; the
//! ledger and the audit service poll their bundles from the controller over mTLS; an
//! operator with a client certificate moves money and verifies the trail with the
//! `blindledger` CLI; a caller without a certificate gets no answer; SIGTERM-style
//! shutdowns drain each service.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use blindledger_service::ServiceConfig as _;
use blindledger_test_support::{eventually, Pki, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const BIN: &str = env!("CARGO_BIN_EXE_blindledger");

/// Where the example configuration lives in the repository.
fn deploy_config(service: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/config")
        .join(format!("{service}.toml"))
}

/// The files the example configuration names, provisioned under a temporary root that
/// stands for `/`: `/etc/blindledger/...` is `<root>/etc/blindledger/...`.
struct Host {
    root: tempfile::TempDir,
    pki: Pki,
}

impl Host {
    fn new() -> Host {
        let host = Host {
            root: tempfile::tempdir().unwrap(),
            pki: Pki::new("BlindLedger workloads CA"),
        };
        for dir in [
            "etc/blindledger/tls",
            "etc/blindledger/keys",
            "run/secrets/tls",
            "var/lib/blindledger/objects",
            "var/lib/blindledger/checkpoints",
            "home",
        ] {
            std::fs::create_dir_all(host.path(dir)).unwrap();
        }
        std::fs::copy(host.pki.ca_path(), host.path("etc/blindledger/tls/ca.pem")).unwrap();
        for service in ["ledger", "controller", "audit"] {
            // One certificate per workload: server for its own port, client for the
            // bundle server (an IP and DNS SAN for 127.0.0.1, both usages).
            let (cert, key) = host.pki.workload(service);
            std::fs::copy(
                cert,
                host.path(&format!("etc/blindledger/tls/{service}.pem")),
            )
            .unwrap();
            std::fs::copy(key, host.path(&format!("run/secrets/tls/{service}.key"))).unwrap();
        }
        let (cert, key) = host
            .pki
            .client("operator", "spiffe://bank.example/operator");
        std::fs::copy(cert, host.path("home/operator.pem")).unwrap();
        std::fs::copy(key, host.path("home/operator.key")).unwrap();
        // Key pairs: CI's bundle key, the controller's risk key, the token issuer, the
        // audit checkpoint key and an officer's.
        for (private, public) in [
            ("home/ci-bundle.key", "etc/blindledger/keys/ci-bundle.pub"),
            (
                "run/secrets/controller-risk.key",
                "etc/blindledger/keys/controller-risk.pub",
            ),
            (
                "home/token-issuer.key",
                "etc/blindledger/keys/token-issuer.pub",
            ),
            (
                "run/secrets/audit-checkpoint.key",
                "home/audit-checkpoint.pub",
            ),
            ("home/officer-1.key", "etc/blindledger/keys/officer-1.pub"),
        ] {
            host.cli_ok(&["policy", "keygen", &host.arg(private)]);
            std::fs::rename(host.path(&format!("{private}.pub")), host.path(public)).unwrap();
        }
        // CI builds and signs the rules; the controller serves them until the first push.
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let unsigned = host.arg("home/policy.tar.gz");
        host.cli_ok(&[
            "policy",
            "build",
            policies.to_str().unwrap(),
            "-o",
            &unsigned,
            "--revision",
            "deploy-1",
        ]);
        host.cli_ok(&[
            "policy",
            "sign",
            &unsigned,
            "--key",
            &host.arg("home/ci-bundle.key"),
            "--kid",
            "ci",
        ]);
        std::fs::copy(&unsigned, host.path("etc/blindledger/policy.tar.gz")).unwrap();
        // The services' token to read bundles from the controller.
        let bundle_token = host.token(&[
            "--sub",
            "workloads",
            "--role",
            "bundle_reader",
            "--audience",
            "controller",
        ]);
        std::fs::write(host.path("run/secrets/bundle-token"), bundle_token).unwrap();
        host
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn arg(&self, relative: &str) -> String {
        self.path(relative).to_str().unwrap().to_owned()
    }

    /// A token signed by the issuer the configuration trusts (key id `issuer`).
    fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token", "issue", "--key"];
        let key = self.arg("home/token-issuer.key");
        all.push(&key);
        all.extend(["--kid", "issuer", "--ttl", "1h"]);
        all.extend(args);
        self.cli_ok(&all).trim().to_owned()
    }

    /// Runs `blindledger` with this host's home directory; returns its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(BIN)
            .args(args)
            .env("BLINDLEDGER_HOME", self.path("home/cli"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "blindledger {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Reads `deploy/config/<service>.toml` and rewrites it for this host: files under
    /// `/etc/blindledger`, `/run/secrets` and `/var/lib/blindledger` to the provisioned
    /// ones, listeners to free loopback ports, `controller:8181` to the running
    /// controller, the database to the test's. Every other value stays as written.
    fn config(&self, service: &str, database_url: &str, controller: Option<&str>) -> PathBuf {
        let text = std::fs::read_to_string(deploy_config(service)).unwrap();
        let mut config: toml::Table = text.parse().unwrap();
        rewrite(&mut config, &|value: &str| {
            for prefix in [
                "/etc/blindledger/",
                "/run/secrets/",
                "/var/lib/blindledger/",
            ] {
                if let Some(rest) = value.strip_prefix('/') {
                    if value.starts_with(prefix) {
                        return Some(self.arg(rest));
                    }
                }
            }
            if let (Some(rest), Some(addr)) =
                (value.strip_prefix("https://controller:8181/"), controller)
            {
                return Some(format!("https://{addr}/{rest}"));
            }
            None
        });
        for listener in ["listen_addr", "metrics_addr"] {
            if config.contains_key(listener) {
                config.insert(listener.into(), "127.0.0.1:0".into());
            }
        }
        config.insert("database_url".into(), database_url.into());
        let path = self.path(&format!("{service}.toml"));
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        path
    }
}

/// Applies `map` to every string of `table`, recursively, where it returns a new value.
fn rewrite(table: &mut toml::Table, map: &dyn Fn(&str) -> Option<String>) {
    for (_, value) in table.iter_mut() {
        match value {
            toml::Value::String(s) => {
                if let Some(new) = map(s) {
                    *s = new;
                }
            }
            toml::Value::Table(inner) => rewrite(inner, map),
            _ => {}
        }
    }
}

/// A service running in this process until stopped as by SIGTERM.
struct Running {
    addr: String,
    metrics: Option<String>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops the service as SIGTERM does and waits for it; returns how long it took.
    async fn stop(self) -> Duration {
        let started = std::time::Instant::now();
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("drains within its grace period")
            .unwrap()
            .unwrap();
        started.elapsed()
    }
}

fn shutdown() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

async fn start_controller(file: &Path) -> Running {
    let config = blindledger_controller::ControllerConfig::from_file(Some(file)).unwrap();
    assert!(
        config.tls_client_ca.is_some(),
        "the example requires client certificates"
    );
    let app = blindledger_controller::Application::build(config)
        .await
        .unwrap();
    let (stop, signal) = shutdown();
    Running {
        addr: app.addr().to_string(),
        metrics: app.metrics_addr().map(|a| a.to_string()),
        stop,
        task: tokio::spawn(app.run_until(signal)),
    }
}

async fn start_ledger(file: &Path) -> Running {
    let config = blindledger_ledger::LedgerConfig::from_file(Some(file)).unwrap();
    assert!(
        config.tls_client_ca.is_some(),
        "the example requires client certificates"
    );
    let app = blindledger_ledger::Application::build(config)
        .await
        .unwrap();
    let (stop, signal) = shutdown();
    Running {
        addr: app.grpc_addr().to_string(),
        metrics: app.metrics_addr().map(|a| a.to_string()),
        stop,
        task: tokio::spawn(app.run_until(signal)),
    }
}

async fn start_audit(file: &Path) -> Running {
    let config = blindledger_audit_service::AuditConfig::from_file(Some(file)).unwrap();
    assert!(
        config.tls_client_ca.is_some(),
        "the example requires client certificates"
    );
    let app = blindledger_audit_service::Application::build(config)
        .await
        .unwrap();
    let (stop, signal) = shutdown();
    Running {
        addr: app.addr().to_string(),
        metrics: app.metrics_addr().map(|a| a.to_string()),
        stop,
        task: tokio::spawn(app.run_until(signal)),
    }
}

/// An HTTPS client trusting the workloads' CA, with the operator's certificate or none.
fn https(host: &Host, with_certificate: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(host.pki.ca_path()).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if with_certificate {
        let mut pem = std::fs::read(host.path("home/operator.pem")).unwrap();
        pem.extend(std::fs::read(host.path("home/operator.key")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn example_production_configs_run_with_mtls_everywhere() {
    let db = TestDatabase::mysql().await.unwrap();
    let host = tokio::task::spawn_blocking(Host::new).await.unwrap();
    // The services run with migrate = false: an administrator migrates first.
    host.cli_ok(&["db", "migrate", "--database-url", db.url()]);

    let controller = start_controller(&host.config("controller", db.url(), None)).await;
    let at = Some(controller.addr.as_str());
    let ledger = start_ledger(&host.config("ledger", db.url(), at)).await;
    let audit = start_audit(&host.config("audit", db.url(), at)).await;

    // Without a client certificate the controller and the audit service answer nothing;
    // plain HTTP is not spoken on their ports; with one, the token decides.
    let bare = https(&host, false);
    for url in [
        format!("https://{}/bundles/blindledger", controller.addr),
        format!("https://{}/api/audit/verify", audit.addr),
    ] {
        assert!(
            bare.get(&url).send().await.is_err(),
            "{url} answered without a client certificate"
        );
        let plain = format!("http://{}", url.strip_prefix("https://").unwrap());
        match reqwest::Client::new().get(&plain).send().await {
            Err(_) => {}
            Ok(response) => assert!(
                !response.status().is_success(),
                "{plain} answered over plain HTTP"
            ),
        }
    }
    let operator = https(&host, true);
    let anonymous = operator
        .get(format!("https://{}/bundles/risk", controller.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the certificate alone reads no bundle"
    );
    // Prometheus and the probes use the plain-HTTP listeners.
    for (service, path) in [
        (&controller, "/health"),
        (&audit, "/healthz"),
        (&controller, "/metrics"),
    ] {
        let url = format!("http://{}{path}", service.metrics.as_ref().unwrap());
        let response = reqwest::get(&url).await.unwrap();
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
    }

    // An operator with a certificate and a token moves money through the ledger, which
    // enforces the rules and the risk data it polled from the controller over mTLS.
    let token = host.token(&[
        "--sub",
        "ops",
        "--role",
        "admin",
        "--role",
        "auditor",
        "--tenant",
        "acme",
        "--audience",
        "all",
    ]);
    let endpoint = format!("https://{}", ledger.addr);
    let tls = [
        "--endpoint",
        &endpoint,
        "--tls-ca",
        &host.arg("etc/blindledger/tls/ca.pem"),
        "--tls-cert",
        &host.arg("home/operator.pem"),
        "--tls-key",
        &host.arg("home/operator.key"),
        "--token",
        &token,
    ]
    .map(str::to_owned);
    let cli = |args: &[&str]| {
        let mut all: Vec<String> = tls.to_vec();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let host = &host;
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        tokio::task::block_in_place(|| host.cli_ok(&all))
    };
    // The ledger serves once its policy and the risk data are active.
    eventually(
        "the ledger accepts the tenant's keys",
        Duration::from_secs(60),
        || async {
            // --force: a refused attempt may have saved the keys before registering them.
            let out = tokio::task::block_in_place(|| {
                std::process::Command::new(BIN)
                    .args(tls.iter().map(String::as_str))
                    .args(["keys", "new", "--tenant", "acme", "--region", "eu-west"])
                    .args(["--width", "32", "--force"])
                    .env("BLINDLEDGER_HOME", host.path("home/cli"))
                    .output()
                    .unwrap()
            });
            if out.status.success() {
                Some(())
            } else {
                println!("keys new: {}", String::from_utf8_lossy(&out.stderr));
                None
            }
        },
    )
    .await;
    cli(&["account", "open", "acme/alice"]);
    cli(&["deposit", "acme/alice", "12.50", "--wait"]);
    let balance = cli(&["balance", "acme/alice"]);
    assert!(balance.contains("12.50"), "{balance}");

    // The officer's view: the trail verifies through the HTTPS API.
    let audit_url = format!("https://{}", audit.addr);
    let verified = eventually("the trail verifies", Duration::from_secs(60), || async {
        let out = tokio::task::block_in_place(|| {
            let mut args: Vec<String> = tls.to_vec();
            args.extend(["audit", "verify", "--audit", &audit_url].map(str::to_owned));
            std::process::Command::new(BIN)
                .args(&args)
                .env("BLINDLEDGER_HOME", host.path("home/cli"))
                .output()
                .unwrap()
        });
        out.status
            .success()
            .then_some(String::from_utf8(out.stdout).unwrap())
    })
    .await;
    println!("audit verify: {verified}");

    for (name, service) in [
        ("audit", audit),
        ("ledger", ledger),
        ("controller", controller),
    ] {
        println!("{name} drained in {:?}", service.stop().await);
    }
    db.drop_db().await.unwrap();
}
