//! Start-up and shutdown: what `main`, `blindledger dev` and the tests all run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use blindledger_gate::TokenVerifier;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::alerts::{AlertDelivery, AlertOutbox};
use crate::config::ControllerConfig;
use crate::controller::Controller;
use crate::http;
use crate::repo::Repo;

/// A built controller: storage connected and migrated, keys and active bundles loaded,
/// port bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    controller: Arc<Controller>,
    router: Router,
    delivery: Option<AlertDelivery>,
    cycle_interval: Option<Duration>,
    admin_interval: Option<Duration>,
    tls: Option<Arc<rustls::ServerConfig>>,
    grace: Duration,
    metrics_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects to storage, migrates, loads keys and bundles, and binds the HTTP port.
    pub async fn build(config: ControllerConfig) -> anyhow::Result<Self> {
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        let url = config.database_url.expose_secret().to_string();
        let redacted_url = config.database_url_redacted();
        if let Some(dir) = blindledger_store::sqlite_dir(&url) {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tokens = token_verifier(&config)?;
        let tls = blindledger_telemetry::TlsFiles {
            cert: config.tls_cert.as_deref(),
            key: config.tls_key.as_deref(),
            client_ca: config.tls_client_ca.as_deref(),
        }
        .server_config()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        // Installed before anything is recorded, so `/metrics` misses nothing.
        blindledger_telemetry::prometheus();
        let repo = Repo::connect(&url, config.max_connections, config.migrate)
            .await
            .with_context(|| format!("connecting to {redacted_url}"))?;
        let outbox = AlertOutbox::new(repo.clone(), &config);
        let delivery = AlertDelivery::new(&outbox, &config).context("setting up alerts")?;
        let cycle_interval =
            (config.cycle_interval_ms > 0).then(|| Duration::from_millis(config.cycle_interval_ms));
        let admin_interval =
            (config.admin_sync_ms > 0).then(|| Duration::from_millis(config.admin_sync_ms));
        let listen_addr = config.listen_addr;
        let config_metrics_addr = config.metrics_addr;
        let controller = Arc::new(Controller::new(config, repo, outbox).await?);
        let listener = TcpListener::bind(listen_addr)
            .await
            .with_context(|| format!("binding {listen_addr}"))?;
        let addr = listener.local_addr()?;
        // The gate's own small pool: decisions are written as requests arrive, beside the
        // cycle's long scans.
        let decisions = blindledger_store::Db::connect(&url, 2)
            .await
            .with_context(|| format!("connecting to {redacted_url}"))?;
        let gate = http::auth::policy_gate(&controller, decisions).await;
        let router = http::router(controller.clone(), tokens, gate);
        let metrics_addr = match config_metrics_addr {
            Some(addr) => {
                let health = Router::new().route("/health", axum::routing::get(|| async { "ok" }));
                Some(
                    blindledger_telemetry::serve_operations(addr, health)
                        .await
                        .with_context(|| format!("binding the metrics listener {addr}"))?,
                )
            }
            None => None,
        };
        Ok(Application {
            listener,
            addr,
            controller,
            router,
            delivery,
            cycle_interval,
            admin_interval,
            tls,
            grace,
            metrics_addr,
        })
    }

    /// The bound HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound address of the plain-HTTP metrics and health listener, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The base URL of the server (`http://127.0.0.1:PORT`, `https://` with TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The controller behind the server, e.g. to run a cycle at a chosen time.
    pub fn controller(&self) -> Arc<Controller> {
        self.controller.clone()
    }

    /// Serves HTTP, runs scheduled cycles and delivers alerts until `shutdown` completes;
    /// then finishes the requests and the cycle in progress and returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(interval) = self.cycle_interval {
            let controller = self.controller.clone();
            tasks.push(tokio::spawn(run_cycles(
                controller,
                interval,
                stop_rx.clone(),
            )));
        }
        if let Some(interval) = self.admin_interval {
            let controller = self.controller.clone();
            tasks.push(tokio::spawn(run_admin_sync(
                controller,
                interval,
                stop_rx.clone(),
            )));
        }
        if let Some(delivery) = self.delivery {
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(delivery.run(async move {
                let _ = stop.changed().await;
            })));
        }
        tracing::info!(addr = %self.addr, tls = self.tls.is_some(), "controller serving");
        let controller = self.controller.clone();
        blindledger_telemetry::serve_http(
            self.listener,
            self.router,
            self.tls,
            async move {
                shutdown.await;
                tracing::info!("draining");
                // Long polls would hold the graceful shutdown for their whole wait.
                controller.served().close();
            },
            self.grace,
        )
        .await
        .context("serving HTTP")?;
        let _ = stop_tx.send(true);
        for task in tasks {
            let _ = task.await;
        }
        self.controller.repo().close().await;
        tracing::info!("controller stopped");
        Ok(())
    }
}

/// The process `blindledger-controller` runs: see [`blindledger_service::main`].
impl blindledger_service::Service for Application {
    type Config = ControllerConfig;

    fn build(config: ControllerConfig) -> impl Future<Output = anyhow::Result<Self>> {
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

/// Runs `pass` now and then every `interval` until `stop` changes. After a slow pass it
/// waits a full interval instead of running a burst of them.
async fn every<F, Fut>(interval: Duration, mut stop: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticker.tick() => pass().await,
        }
    }
}

/// Runs a risk cycle every `interval`. A failed cycle is logged and counted by the cycle
/// itself; the next one runs on schedule.
async fn run_cycles(controller: Arc<Controller>, interval: Duration, stop: watch::Receiver<bool>) {
    every(interval, stop, || async {
        let _ = controller.run_cycle(false).await;
    })
    .await
}

/// Carries out officers' commands every `interval`. A failed pass is logged; the next one
/// tries again.
async fn run_admin_sync(
    controller: Arc<Controller>,
    interval: Duration,
    stop: watch::Receiver<bool>,
) {
    every(interval, stop, || async {
        match controller.sync_admin().await {
            Ok(sync) => {
                let published = sync.risk_bundle.as_ref().is_some_and(|b| b.new);
                if published || !sync.rollbacks.is_empty() {
                    tracing::info!(
                        rollbacks = sync.rollbacks.len(),
                        "officers' commands carried out"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "officers' commands not carried out"),
        }
    })
    .await
}

/// The API token verifier; the controller refuses to start without token keys.
fn token_verifier(config: &ControllerConfig) -> anyhow::Result<TokenVerifier> {
    blindledger_gate::TokenSettings {
        keys: &config.token_keys,
        jwks_url: config.token_jwks_url.as_deref(),
        issuer: &config.token_issuer,
        audience: &config.token_audience,
        roles_claim: &config.token_roles_claim,
        tenants_claim: &config.token_tenants_claim,
    }
    .verifier("the controller authenticates every API call with a token")
}
