//! `blindledger dev`: the whole system in one process on one SQLite database, for local
//! development: the ledger (gRPC), the controller (risk scores, bundle server) and the
//! audit service (dashboard, audit API), wired to each other with development keys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use blindledger_audit_service::AuditConfig;
use blindledger_controller::ControllerConfig;
use blindledger_gate::BundleSource;
use blindledger_ledger::dev::{key_pair, DevCredentials, DEV_KID};
use blindledger_ledger::{Application, LedgerConfig};
use blindledger_service::ServiceConfig as _;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::Context;

/// Key id of the development officer key (`<data-dir>/dev/officer.key`).
const DEV_OFFICER: &str = "officer";
/// The services' token for the controller's bundle routes, in `<data-dir>/dev/`.
const BUNDLE_TOKEN: &str = "bundle.token";

/// Arguments of `blindledger dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Ledger configuration file (TOML); `BLINDLEDGER_LEDGER_*` variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the SQLite database (`ledger.db`), object store (`objects/`) and
    /// development keys (`dev/`).
    #[arg(long, value_name = "DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// gRPC listen address [default: the configuration's, 127.0.0.1:50051].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The controller's listen address (bundle server, risk and policy API).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8181")]
    controller_listen: SocketAddr,
    /// The audit service's listen address (dashboard, audit API).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8088")]
    audit_listen: SocketAddr,
    /// Time between the controller's risk cycles, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    cycle_interval: u64,
    /// The policy to enforce, built and signed at start-up with development keys
    /// [default: the policy shipped in this binary, written to `<data-dir>/dev/policies`].
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
}

/// The shipped policy (`policies/` of the source tree), so `dev` runs from any directory.
static SHIPPED_POLICY: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../policies");

/// Runs the three services until Ctrl-C or SIGTERM, then shuts them down gracefully.
pub async fn run(ctx: &Context, args: DevArgs) -> anyhow::Result<()> {
    blindledger_telemetry::init_tracing(false, "blindledger-dev");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = dev_config(&args)?;
    let keys = provision(ctx, &args)?;
    let (stop, stopping) = watch::channel(false);
    let until_stopped = |mut stopping: watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };

    // The controller first: the ledger fetches its bundles from it at start-up.
    let controller_config = keys.controller_config(&args, &config);
    let controller = blindledger_controller::Application::build(controller_config)
        .await
        .context("starting the controller")?;
    let controller_url = controller.base_url();
    let handle = controller.controller();
    let controller_task = tokio::spawn(controller.run_until(until_stopped(stopping.clone())));
    keys.update_policy(&handle).await?;

    keys.configure_ledger(&mut config, &controller_url);
    let database_url = config.database_url.clone();
    let ledger = Application::build(config)
        .await
        .context("starting the ledger")?;
    let audit = blindledger_audit_service::Application::build(keys.audit_config(
        &args,
        database_url,
        &controller_url,
    ))
    .await
    .context("starting the audit service")?;
    let ready = serde_json::json!({
        "event": "ready",
        "ledger": format!("http://{}", ledger.grpc_addr()),
        "metrics": ledger.metrics_addr().map(|addr| format!("http://{addr}/metrics")),
        "controller": controller_url,
        "dashboard": format!("http://{}", audit.addr()),
        "officer_key": keys.officer_key.display().to_string(),
        "officer_kid": DEV_OFFICER,
    });
    crate::output::emit(ready, || {
        println!("ledger listening on http://{}", ledger.grpc_addr());
        match ledger.metrics_addr() {
            Some(addr) => println!("metrics at http://{addr}/metrics"),
            None => println!("metrics disabled"),
        }
        println!("controller at {controller_url} (bundles, risk scores, policy push)");
        println!(
            "dashboard at http://{} (sign in with the admin token above)",
            audit.addr()
        );
        println!(
            "officer key {} (key id {DEV_OFFICER}): blindledger admin freeze TENANT/ACCOUNT --officer-key {}",
            keys.officer_key.display(),
            keys.officer_key.display()
        );
        println!("press Ctrl-C to stop");
    });
    let audit_task = tokio::spawn(audit.run_until(until_stopped(stopping.clone())));
    let ledger_result = ledger
        .run_until(async {
            blindledger_telemetry::shutdown_signal().await;
        })
        .await;
    let _ = stop.send(true);
    let audit_result = audit_task.await.context("audit service task")?;
    let controller_result = controller_task.await.context("controller task")?;
    ledger_result.context("running the ledger")?;
    audit_result.context("running the audit service")?;
    controller_result.context("running the controller")?;
    crate::output::emit(serde_json::json!({ "event": "stopped" }), || {
        println!("stopped")
    });
    Ok(())
}

/// The development keys and the signed policy, under `<data-dir>/dev/`.
struct DevKeys {
    dir: PathBuf,
    credentials: DevCredentials,
    /// The signed policy built from `--policies` and its revision.
    policy: Vec<u8>,
    revision: String,
    officer_key: PathBuf,
}

impl DevKeys {
    /// The controller: serves the development policy and the risk bundle it signs with
    /// `controller.key`, accepts pushes signed with the development bundle key.
    fn controller_config(&self, args: &DevArgs, ledger: &LedgerConfig) -> ControllerConfig {
        ControllerConfig {
            listen_addr: args.controller_listen,
            database_url: ledger.database_url.clone(),
            signing_key: Some(self.dir.join("controller.key")),
            ci_keys: BTreeMap::from([(DEV_KID.to_owned(), self.dir.join("bundle.pub"))]),
            officer_keys: BTreeMap::from([(DEV_OFFICER.to_owned(), self.dir.join("officer.pub"))]),
            token_keys: BTreeMap::from([(DEV_KID.to_owned(), self.dir.join("token.pub"))]),
            initial_policy_bundle: Some(self.dir.join("policy.tar.gz")),
            cycle_interval_ms: args.cycle_interval.max(1) * 1000,
            ..ControllerConfig::default()
        }
    }

    /// Serves the freshly built policy when the controller still serves an older one
    /// (edited `policies/` between runs): pushed as CI would, with its tests and an impact
    /// analysis, so a policy that fails its tests is reported and not served.
    async fn update_policy(
        &self,
        controller: &blindledger_controller::Controller,
    ) -> anyhow::Result<()> {
        let active = controller
            .bundle("blindledger")
            .map(|b| b.revision().to_string());
        if active.as_deref() == Some(self.revision.as_str()) {
            return Ok(());
        }
        match controller.push(self.policy.clone(), "dev", None).await {
            Ok(report) => {
                let (replayed, changed) = report
                    .impact
                    .as_ref()
                    .map_or((0, 0), |i| (i.replayed, i.changed));
                let value = serde_json::json!({
                    "event": "policy_activated",
                    "revision": self.revision,
                    "replayed": replayed,
                    "changed": changed,
                });
                crate::output::emit(value, || {
                    println!(
                        "policy {} activated: {changed} of the last {replayed} logged decisions change",
                        self.revision
                    )
                });
            }
            Err(error) => {
                let value = serde_json::json!({
                    "event": "policy_not_activated",
                    "revision": self.revision,
                    "serving": active,
                    "error": error.to_string(),
                });
                crate::output::emit(value, || {
                    println!(
                        "policy {} NOT activated, still serving {}: {error}",
                        self.revision,
                        active.as_deref().unwrap_or("none")
                    )
                });
            }
        }
        Ok(())
    }

    /// The ledger: both bundles from the controller, the policy verified with the
    /// development bundle key only and the risk data with the controller's key only.
    fn configure_ledger(&self, config: &mut LedgerConfig, controller_url: &str) {
        self.credentials.configure(config);
        config.policy_bundle = Some(BundleSource::Http(format!(
            "{controller_url}/bundles/blindledger"
        )));
        config.risk_bundle = Some(BundleSource::Http(format!("{controller_url}/bundles/risk")));
        config.risk_bundle_keys =
            BTreeMap::from([("controller".to_owned(), self.dir.join("controller.pub"))]);
        config.bundle_token_file = Some(self.dir.join(BUNDLE_TOKEN));
        config.policy_poll_ms = 1_000;
    }

    /// The audit service: officers sign in with development tokens, which the ledger's
    /// policy (from the controller, as the ledger gets it) decides; they sign commands with
    /// `officer.key`; checkpoints are signed with `audit.key`.
    fn audit_config(
        &self,
        args: &DevArgs,
        database_url: SecretString,
        controller_url: &str,
    ) -> AuditConfig {
        AuditConfig {
            listen_addr: args.audit_listen,
            database_url,
            policy_bundle: Some(BundleSource::Http(format!(
                "{controller_url}/bundles/blindledger"
            ))),
            risk_bundle: Some(BundleSource::Http(format!("{controller_url}/bundles/risk"))),
            bundle_keys: BTreeMap::from([(DEV_KID.to_owned(), self.dir.join("bundle.pub"))]),
            risk_bundle_keys: BTreeMap::from([(
                "controller".to_owned(),
                self.dir.join("controller.pub"),
            )]),
            policy_poll_ms: 1_000,
            bundle_token_file: Some(self.dir.join(BUNDLE_TOKEN)),
            token_keys: BTreeMap::from([(DEV_KID.to_owned(), self.dir.join("token.pub"))]),
            officer_keys: BTreeMap::from([(DEV_OFFICER.to_owned(), self.dir.join("officer.pub"))]),
            checkpoint_key: Some(self.dir.join("audit.key")),
            // Beside the database in development; on another host or a write-once bucket
            // in production.
            checkpoint_publish_dir: Some(self.dir.join("published-checkpoints")),
            ..AuditConfig::default()
        }
    }
}

/// Development credentials: token, bundle, controller, officer and checkpoint keys under
/// `<data-dir>/dev/`, the policy built and signed from `--policies`, and an administrator's
/// token (valid 30 days) in the CLI's home directory, which the other verbs send.
fn provision(ctx: &Context, args: &DevArgs) -> anyhow::Result<DevKeys> {
    let dir = args.data_dir.join("dev");
    let policies = match &args.policies {
        Some(policies) => {
            anyhow::ensure!(
                policies.is_dir(),
                "no policy directory at {}",
                policies.display()
            );
            policies.clone()
        }
        None => write_shipped_policy(&dir.join("policies"))?,
    };
    let revision = policy_revision(&policies)?;
    let credentials = DevCredentials::provision(&dir, &policies, &revision)
        .context("provisioning development credentials")?;
    for name in ["controller", DEV_OFFICER, "audit"] {
        key_pair(&dir, name)?;
    }
    let token = credentials.token(
        "dev-admin",
        &["admin"],
        &[],
        std::time::Duration::from_secs(30 * 86_400),
    )?;
    // What the ledger and the audit service fetch bundles from the controller with.
    let bundle_token = credentials.token(
        "dev-services",
        &["bundle_reader"],
        &[],
        std::time::Duration::from_secs(30 * 86_400),
    )?;
    blindledger_ledger::dev::write_private(&dir.join(BUNDLE_TOKEN), bundle_token.as_bytes())?;
    let home = ctx.home()?;
    std::fs::create_dir_all(home.root())
        .with_context(|| format!("creating {}", home.root().display()))?;
    blindledger_ledger::dev::write_private(&home.token_path(), token.as_bytes())?;
    let value = serde_json::json!({
        "event": "credentials",
        "admin_token_file": home.token_path().display().to_string(),
        "token_key": dir.join("token.key").display().to_string(),
    });
    crate::output::emit(value, || {
        println!("admin token saved in {}", home.token_path().display());
        println!(
            "other tokens: blindledger token issue --sub NAME --role teller --tenant TENANT --key {}",
            dir.join("token.key").display()
        );
    });
    let policy = std::fs::read(dir.join("policy.tar.gz")).context("reading the signed policy")?;
    Ok(DevKeys {
        officer_key: dir.join(format!("{DEV_OFFICER}.key")),
        dir,
        credentials,
        policy,
        revision,
    })
}

/// Writes the shipped policy to `dir`, replacing whatever an earlier run left there (a file
/// removed from the policy must not stay in the bundle), and returns `dir`.
fn write_shipped_policy(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    SHIPPED_POLICY
        .extract(dir)
        .with_context(|| format!("writing the shipped policy to {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// `dev-` and the first 12 hex digits of the SHA-256 of the policy files (paths and
/// contents, in path order): the revision changes exactly when the policy does.
fn policy_revision(policies: &Path) -> anyhow::Result<String> {
    let mut files = Vec::new();
    let mut pending = vec![policies.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut digest = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(policies).unwrap_or(&file);
        digest.update(relative.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
        digest.update([0]);
    }
    Ok(format!("dev-{}", &hex::encode(digest.finalize())[..12]))
}

/// Loads the configuration, then points storage at the data directory: `dev` always runs
/// on a local SQLite database, whatever the file says.
fn dev_config(args: &DevArgs) -> anyhow::Result<LedgerConfig> {
    let mut config =
        LedgerConfig::load(args.config.as_deref()).context("loading the configuration")?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    // Absolute paths make the printed locations unambiguous and survive a changed cwd.
    let data_dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", args.data_dir.display()))?;
    let objects = data_dir.join("objects");
    std::fs::create_dir_all(&objects).with_context(|| format!("creating {}", objects.display()))?;
    config.database_url = SecretString::from(sqlite_url(&data_dir.join("ledger.db")));
    config.object_store_dir = objects;
    if let Some(listen) = args.listen {
        config.listen_addr = listen;
    }
    tracing::info!(data_dir = %data_dir.display(), "dev ledger storage");
    Ok(config)
}

/// Builds a SQLite URL that creates the file when missing. sqlx percent-decodes the path,
/// so the characters it would misread are encoded.
fn sqlite_url(path: &Path) -> String {
    let mut encoded = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sqlite_urls_create_the_file_and_escape_special_characters() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/data/ledger.db")),
            "sqlite:///tmp/data/ledger.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url(Path::new("/tmp/a?b#c%d/ledger.db")),
            "sqlite:///tmp/a%3Fb%23c%25d/ledger.db?mode=rwc"
        );
    }

    /// The embedded policy is the source tree's, file for file (dot files included), and
    /// its revision is the one `--policies policies/` gives.
    #[test]
    fn the_embedded_policy_is_the_shipped_one() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let dir = tempfile::tempdir().unwrap();
        let written = write_shipped_policy(&dir.path().join("policies")).unwrap();
        assert!(written.join(".manifest").is_file());
        assert!(written.join("blindledger/authz/authz.rego").is_file());
        assert_eq!(
            policy_revision(&written).unwrap(),
            policy_revision(&shipped).unwrap()
        );
        // A file left by an earlier run is removed, not signed into the bundle.
        std::fs::write(written.join("stale.rego"), "package stale").unwrap();
        let rewritten = write_shipped_policy(&written).unwrap();
        assert!(!rewritten.join("stale.rego").exists());
        assert_eq!(
            policy_revision(&rewritten).unwrap(),
            policy_revision(&shipped).unwrap()
        );
    }
}
