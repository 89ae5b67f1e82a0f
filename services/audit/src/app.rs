//! Start-up and shutdown: what `main`, `blindledger dev` and the tests all run.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use blindledger_audit::admin::{AdminCommands, OfficerKeys};
use blindledger_audit::{
    AuditLog, CheckpointKeys, CheckpointSigner, Importer, PublishedCheckpoints,
};
use blindledger_gate::{read_key_files, BundleLoader, DbDecisionSink, PolicySettings};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::config::AuditConfig;
use crate::live::run_feed;
use crate::routes::router;
use crate::state::AppState;

/// How often the planner's statistics of the trail are refreshed.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the import lag gauges are refreshed.
const LAG_INTERVAL: Duration = Duration::from_secs(15);
/// Decisions buffered for a slow live client before it skips some.
const LIVE_BUFFER: usize = 1024;

/// A built audit service: storage connected and migrated, keys loaded, port bound.
pub struct Application {
    config: AuditConfig,
    state: AppState,
    signer: Option<CheckpointSigner>,
    bundles: Arc<BundleLoader>,
    listener: TcpListener,
    addr: SocketAddr,
    /// Set once shutdown begins: ends the background tasks and open event streams.
    stop: Arc<watch::Sender<bool>>,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Application {
    /// Loads keys, connects to storage (migrating when configured) and binds the port.
    pub async fn build(config: AuditConfig) -> anyhow::Result<Self> {
        // Installed before anything is recorded (the first bundle's gauges among them), so
        // `/metrics` misses nothing.
        blindledger_telemetry::prometheus();
        let tokens = blindledger_gate::TokenSettings {
            keys: &config.token_keys,
            jwks_url: config.token_jwks_url.as_deref(),
            issuer: &config.token_issuer,
            audience: &config.token_audience,
            roles_claim: &config.token_roles_claim,
            tenants_claim: &config.token_tenants_claim,
        }
        .verifier("officers sign in with signed tokens")?;
        let officers = OfficerKeys::from_pems(&read_key_files(&config.officer_keys)?)
            .context("loading officer keys")?;
        if officers.is_empty() {
            tracing::warn!("no officer_keys configured: every admin command is refused");
        }
        let signer = match &config.checkpoint_key {
            Some(path) => Some(CheckpointSigner::from_pem(
                &read(path)?,
                &config.checkpoint_key_id,
            )?),
            None => None,
        };
        let checkpoint_keys = checkpoint_keys(&config, signer.as_ref())?;
        let tls = blindledger_telemetry::TlsFiles {
            cert: config.tls_cert.as_deref(),
            key: config.tls_key.as_deref(),
            client_ca: config.tls_client_ca.as_deref(),
        }
        .server_config()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
        let url = config.database_url.expose_secret().to_string();
        if let Some(dir) = blindledger_store::sqlite_dir(&url) {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log = AuditLog::connect(&url, config.max_connections, config.migrate)
            .await
            .with_context(|| format!("connecting to {}", config.database_url_redacted()))?;
        let (gate, bundles) = policy_gate(&config, &url).await?;
        let commands = AdminCommands::new(log.clone(), officers, config.command_window_ms);
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let addr = listener.local_addr()?;
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let (stop, stopping) = watch::channel(false);
        // Served over TLS, every request came over TLS.
        let secure_cookies = config.secure_cookies || tls.is_some();
        let oidc = oidc_client(&config)?;
        let published = match &config.checkpoint_publish_dir {
            Some(dir) => Some((
                PublishedCheckpoints::local(dir)
                    .with_context(|| format!("opening {}", dir.display()))?,
                i64::try_from(config.checkpoint_max_unpublished_ms).unwrap_or(i64::MAX),
            )),
            None => None,
        };
        let archive = match &config.archive_url {
            Some(url) => Some(blindledger_audit::Archive::new(
                blindledger_store::open_object_store(url).context("opening the archive")?,
            )),
            None => None,
        };
        let state = AppState {
            log,
            tokens,
            gate,
            commands,
            checkpoint_keys,
            published,
            archive,
            live,
            secure_cookies,
            oidc,
            stopping,
        };
        let metrics_addr = match config.metrics_addr {
            Some(addr) => {
                let health = axum::Router::new()
                    .route("/healthz", axum::routing::get(crate::api::health))
                    .with_state(state.clone());
                Some(
                    blindledger_telemetry::serve_operations(addr, health)
                        .await
                        .with_context(|| format!("binding the metrics listener {addr}"))?,
                )
            }
            None => None,
        };
        Ok(Self {
            config,
            state,
            signer,
            bundles,
            listener,
            addr,
            stop: Arc::new(stop),
            tls,
            metrics_addr,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the plain-HTTP metrics and health listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The audit trail this service serves.
    pub fn log(&self) -> AuditLog {
        self.state.log.clone()
    }

    /// Serves HTTP(S) and runs the importer, the checkpoint signer and the live feed until
    /// `shutdown` completes; then finishes open requests (for at most `shutdown_grace_ms`)
    /// and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop_rx = self.state.stopping.clone();
        let mut tasks = Vec::new();
        let poll = Duration::from_millis(self.config.policy_poll_ms.max(100));
        tasks.push(tokio::spawn(
            self.bundles.clone().run(poll, stopped(stop_rx.clone())),
        ));
        let live_poll = Duration::from_millis(self.config.live_poll_ms.max(20));
        tasks.push(tokio::spawn(run_feed(
            self.state.log.clone(),
            self.state.live.clone(),
            live_poll,
            stop_rx.clone(),
        )));
        if self.config.import_interval_ms > 0 {
            let mut importer = Importer::new(self.state.log.clone());
            if let Some(settle) = self.config.import_settle_ms {
                importer = importer.with_settle_ms(settle);
            }
            let interval = Duration::from_millis(self.config.import_interval_ms);
            tasks.push(tokio::spawn(
                importer.run(interval, stopped(stop_rx.clone())),
            ));
        }
        tasks.push(tokio::spawn(refresh_statistics(
            self.state.log.clone(),
            stop_rx.clone(),
        )));
        tasks.push(tokio::spawn(report_import_lag(
            self.state.log.clone(),
            stop_rx.clone(),
        )));
        if let Some(signer) = self.signer {
            let interval = Duration::from_millis(self.config.checkpoint_interval_ms.max(1_000));
            tasks.push(tokio::spawn(sign_checkpoints(
                self.state.log.clone(),
                signer,
                self.state.published.as_ref().map(|(p, _)| p.clone()),
                interval,
                stop_rx.clone(),
            )));
        }
        tracing::info!(addr = %self.addr, tls = self.tls.is_some(), "audit service serving");
        let app = router(self.state.clone());
        let stop = self.stop.clone();
        let result = blindledger_telemetry::serve_http(
            self.listener,
            app,
            self.tls,
            async move {
                shutdown.await;
                tracing::info!("draining");
                // Open event streams never end by themselves: this ends them, so the
                // graceful shutdown can finish.
                let _ = stop.send(true);
            },
            Duration::from_millis(self.config.shutdown_grace_ms),
        )
        .await;
        let _ = self.stop.send(true);
        for task in tasks {
            let _ = task.await;
        }
        self.state.log.close().await;
        tracing::info!("audit service stopped");
        Ok(result?)
    }
}

/// The process `blindledger-audit` runs: see [`blindledger_service::main`].
impl blindledger_service::Service for Application {
    type Config = AuditConfig;

    fn build(config: AuditConfig) -> impl Future<Output = anyhow::Result<Self>> {
        Application::build(config)
    }

    fn listen_addr(&self) -> SocketAddr {
        self.addr()
    }

    fn metrics_addr(&self) -> Option<SocketAddr> {
        Application::metrics_addr(self)
    }

    fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> {
        Application::run_until(self, shutdown)
    }
}

/// The gate deciding every request, logging its decisions to the `decision_log` table the
/// importer reads, and its bundle loader, tried once now: a bad or missing bundle is not
/// fatal (requests are refused with 503 until a good one appears).
async fn policy_gate(
    config: &AuditConfig,
    url: &str,
) -> anyhow::Result<(blindledger_gate::PolicyGate, Arc<BundleLoader>)> {
    // Its own small pool: decisions are written as they are made, apart from the reads.
    let db = blindledger_store::Db::connect(url, 2)
        .await
        .with_context(|| format!("connecting to {}", config.database_url_redacted()))?;
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
        // The audit service moves no money; it reads and records.
        risk_required_for: &[],
        require_signed_bundles: config.require_signed_bundles,
        bundle_scope: config.bundle_scope.as_deref(),
        long_poll: std::time::Duration::from_secs(config.policy_long_poll_s),
        bundle_token_file: config.bundle_token_file.as_deref(),
        bundle_tls: Some(&bundle_tls),
        revision_floor: Some((&db, "audit")),
        decision_log: decision_log.as_ref(),
        instance_id: None,
    };
    let (gate, bundles) = settings
        .build(Arc::new(DbDecisionSink::new(db.clone())))
        .context("setting up the policy gate")?;
    if let Err(err) = bundles.reload().await {
        tracing::error!(error = %err, "no policy active at start-up");
    }
    Ok((gate, bundles))
}

/// Resolves once `stop` changes.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.changed().await;
}

/// Signs a checkpoint every `interval` while the chain grows, and once more at shutdown;
/// publishes each outside the database when `published` is set (one that could not be
/// published is tried again at the next tick).
async fn sign_checkpoints(
    log: AuditLog,
    signer: CheckpointSigner,
    published: Option<PublishedCheckpoints>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut unpublished = Vec::new();
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = stop.changed() => true,
        };
        match log.checkpoint(&signer).await {
            Ok(Some(checkpoint)) => {
                unpublished.push(checkpoint);
                covered_now();
            }
            // Nothing appended since the last checkpoint: the chain is covered as of now.
            Ok(None) => covered_now(),
            Err(err) => tracing::warn!(error = %err, "audit checkpoint failed"),
        }
        if let Some(published) = &published {
            while let Some(checkpoint) = unpublished.first() {
                if let Err(err) = published.publish(checkpoint).await {
                    metrics::counter!("blindledger_audit_checkpoint_publish_failures_total")
                        .increment(1);
                    tracing::warn!(error = %err, size = checkpoint.size, "audit checkpoint not published");
                    break;
                }
                unpublished.remove(0);
            }
        }
        metrics::gauge!("blindledger_audit_checkpoints_unpublished").set(unpublished.len() as f64);
        if stopping {
            return;
        }
    }
}

/// Records that every row of the chain is covered by a signed checkpoint as of now.
fn covered_now() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!("blindledger_audit_checkpoint_covered_timestamp_seconds")
        .set(now.as_secs_f64());
}

/// Publishes how far the trail lags each source table, every [`LAG_INTERVAL`]: the age of
/// the oldest row not imported yet (0 when none waits; +Inf when the source cannot be
/// read, so that a lag alert fires).
async fn report_import_lag(log: AuditLog, mut stop: watch::Receiver<bool>) {
    loop {
        let now = blindledger_audit::now_ms();
        for (source, lag) in crate::queries::attention::source_lags(&log).await {
            let seconds = match lag {
                Ok(Some((_, oldest))) => (now - oldest).max(0) as f64 / 1000.0,
                Ok(None) => 0.0,
                Err(_) => f64::INFINITY,
            };
            metrics::gauge!("blindledger_audit_import_lag_seconds", "source" => source)
                .set(seconds);
        }
        tokio::select! {
            _ = tokio::time::sleep(LAG_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Refreshes the planner's statistics at start-up and every [`STATISTICS_INTERVAL`].
async fn refresh_statistics(log: AuditLog, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(err) = log.refresh_statistics().await {
            tracing::warn!(error = %err, "audit table statistics not refreshed");
        }
        tokio::select! {
            _ = tokio::time::sleep(STATISTICS_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

fn checkpoint_keys(
    config: &AuditConfig,
    signer: Option<&CheckpointSigner>,
) -> anyhow::Result<CheckpointKeys> {
    let mut pems = read_key_files(&config.checkpoint_public_keys)?;
    if let Some(signer) = signer {
        pems.insert(signer.key_id().to_owned(), signer.public_key_pem()?);
    }
    Ok(CheckpointKeys::from_pems(&pems)?)
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The OpenID Connect client, when `oidc_issuer` is set (with a client id and redirect URL).
fn oidc_client(config: &AuditConfig) -> anyhow::Result<Option<Arc<crate::oidc::Oidc>>> {
    let Some(issuer) = &config.oidc_issuer else {
        return Ok(None);
    };
    let (Some(client_id), Some(redirect_url)) = (&config.oidc_client_id, &config.oidc_redirect_url)
    else {
        anyhow::bail!("oidc_issuer needs oidc_client_id and oidc_redirect_url");
    };
    let settings = crate::oidc::OidcSettings {
        issuer: issuer.clone(),
        client_id: client_id.clone(),
        client_secret_file: config.oidc_client_secret_file.clone(),
        redirect_url: redirect_url.clone(),
        scopes: config.oidc_scopes.clone(),
        claims: blindledger_gate::ClaimNames {
            roles: config.token_roles_claim.clone(),
            tenants: config.token_tenants_claim.clone(),
        },
    };
    Ok(Some(Arc::new(crate::oidc::Oidc::new(settings)?)))
}
