//! Start-up and shutdown: what `main`, `blindledger dev` and the tests all run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use blindledger_fhe::FheExecutor;
use blindledger_gate::{AuthLayer, BundleLoader, PolicyGate, TokenVerifier};
use blindledger_proto::ledger::v1::ledger_service_server::LedgerServiceServer;
use blindledger_store::{Db, KeyBlobStore};
use blindledger_telemetry::{GrpcMetricsLayer, GrpcType};

use crate::config::LedgerConfig;
use crate::grpc::LedgerGrpc;
use crate::ledger::{Ledger, TenantQuotas};
use crate::policy::{policy_gate, token_verifier};
use crate::worker::{run_worker, WorkerSettings};

/// A built ledger service: storage connected and migrated, ports bound, not yet serving.
pub struct Application {
    config: LedgerConfig,
    ledger: Arc<Ledger>,
    listener: TcpListener,
    grpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    owner: String,
    tokens: TokenVerifier,
    /// TLS (and client certificates) when configured.
    tls: Option<ServerTlsConfig>,
    gate: PolicyGate,
    bundles: Arc<BundleLoader>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("grpc_addr", &self.grpc_addr)
            .finish()
    }
}

impl Application {
    /// Connects to storage, migrates, and binds the gRPC and metrics ports.
    pub async fn build(config: LedgerConfig) -> anyhow::Result<Self> {
        // Installed before anything is recorded (the first bundle's gauges among them), so
        // `/metrics` misses nothing.
        blindledger_telemetry::prometheus();
        let url = config.database_url.expose_secret().to_string();
        if let Some(path) = blindledger_store::sqlite_dir(&url) {
            std::fs::create_dir_all(&path)
                .with_context(|| format!("creating {}", path.display()))?;
        }
        let tokens = token_verifier(&config)?;
        let tls = server_tls(&config)?;
        let db = Db::connect(&url, config.max_connections)
            .await
            .with_context(|| format!("connecting to {}", config.database_url_redacted()))?;
        if config.migrate {
            db.migrate().await.context("running migrations")?;
        }
        let (gate, bundles) = policy_gate(&config, db.clone())?;
        // A bad bundle at start-up is not fatal: calls are refused (UNAVAILABLE) until a
        // good one appears, and the loader's status says why.
        if let Err(err) = bundles.reload().await {
            tracing::error!(error = %err, "no policy active at start-up");
        }
        let blobs = match &config.object_store_url {
            Some(url) => KeyBlobStore::from_url(url),
            None => KeyBlobStore::local(&config.object_store_dir),
        }
        .context("opening the object store")?;
        let fhe = FheExecutor::on_backend(
            config.fhe_backend,
            config.fhe_parallel_jobs,
            config.fhe_threads,
            config.cached_server_keys,
        )
        .with_context(|| format!("starting FHE work (fhe_backend = {})", config.fhe_backend))?;
        tracing::info!(
            backend = %fhe.backend(),
            lanes = fhe.lanes(),
            threads = fhe.threads(),
            gpus = fhe.gpus(),
            "fhe executor started"
        );
        let fhe = Arc::new(fhe);
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let grpc_addr = listener.local_addr()?;
        let metrics_addr = match config.metrics_addr {
            Some(addr) => Some(
                blindledger_telemetry::serve_metrics(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?,
            ),
            None => None,
        };
        let owner = config
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("ledger-{}", uuid::Uuid::new_v4().simple()));
        let quotas = TenantQuotas::new(
            config.max_open_jobs_per_tenant,
            config.max_watches_per_tenant,
        );
        let ledger = Arc::new(
            Ledger::new(db, blobs, fhe)
                .with_quotas(quotas)
                .with_value_cache(config.balance_cache_mib.saturating_mul(1 << 20)),
        );
        Ok(Self {
            config,
            ledger,
            listener,
            grpc_addr,
            metrics_addr,
            owner,
            tokens,
            tls,
            gate,
            bundles,
        })
    }

    /// The policy gate, e.g. to read the active bundle revisions.
    pub fn gate(&self) -> PolicyGate {
        self.gate.clone()
    }

    /// The bundle loader: its status, or an immediate reload.
    pub fn bundles(&self) -> Arc<BundleLoader> {
        self.bundles.clone()
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound Prometheus address, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The ledger behind the service.
    pub fn ledger(&self) -> Arc<Ledger> {
        self.ledger.clone()
    }

    /// Serves gRPC and runs the job workers until `shutdown` completes; then drains: health
    /// turns NOT_SERVING, new connections and calls are refused, workers take no new job and
    /// finish the one they compute. Whatever still runs when `shutdown_grace_ms` is over is
    /// cut: open calls end, running jobs are released for another instance. Then it returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (abandon_tx, abandon_rx) = watch::channel(false);
        let grace = std::time::Duration::from_millis(self.config.shutdown_grace_ms);
        let stopping = self.ledger.clone();
        let drain = tokio::spawn(async move {
            shutdown.await;
            tracing::info!(grace_ms = grace.as_millis() as u64, "draining");
            // Streams would hold the graceful shutdown open until their jobs end.
            stopping.begin_shutdown();
            let _ = stop_tx.send(true);
            tokio::time::sleep(grace).await;
            let _ = abandon_tx.send(true);
            // Held until the drain is over, so the receivers never see a closed channel.
            std::future::pending::<()>().await;
        });
        let workers = self.spawn_workers(&stop_rx, &abandon_rx);
        let depth = tokio::spawn(report_queue_depth(self.ledger.clone(), stop_rx.clone()));
        let feed = tokio::spawn(crate::feed::run(
            self.ledger.clone(),
            std::time::Duration::from_millis(self.config.watch_poll_ms.max(10)),
            stop_rx.clone(),
        ));
        let (health, health_service) = tonic_health::server::health_reporter();
        let health_task = tokio::spawn(report_health(
            health,
            self.ledger.db().serving(),
            self.gate.clone(),
            stop_rx.clone(),
        ));
        // Reflection in both versions: v1, and v1alpha, which grpcurl before 1.9, Python's
        // grpcio-reflection, Postman and Evans still speak.
        let schema = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(blindledger_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection = schema().build_v1()?;
        let reflection_v1alpha = schema().build_v1alpha()?;
        let max = self.config.max_message_bytes;
        let poll = std::time::Duration::from_millis(self.config.policy_poll_ms.max(100));
        let mut loader_stop = stop_rx.clone();
        let loader = tokio::spawn(self.bundles.clone().run(poll, async move {
            let _ = loader_stop.changed().await;
        }));
        let grpc = LedgerGrpc::new(self.ledger.clone(), self.gate.clone(), self.bundles.clone());
        let service = LedgerServiceServer::new(grpc)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        tracing::info!(addr = %self.grpc_addr, owner = %self.owner, "ledger serving");
        let mut stop_signal = stop_rx.clone();
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = self.tls.clone() {
            server = server.tls_config(tls).context("setting up TLS")?;
        }
        let serving = server
            // Outermost: every RPC counted and timed, including rejected ones.
            .layer(GrpcMetricsLayer::new(served_methods()?))
            // Then authentication: no ledger method runs for an unauthenticated caller.
            // Health checks and reflection (the schema only) stay open to probes and tools.
            .layer(
                AuthLayer::new(self.tokens.clone())
                    .peer_grants(self.config.peer_grants.clone())
                    .public_path_prefix("/grpc.health.v1.Health/")
                    .public_path_prefix("/grpc.reflection.v1.ServerReflection/")
                    .public_path_prefix("/grpc.reflection.v1alpha.ServerReflection/"),
            )
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), async move {
                let _ = stop_signal.wait_for(|stop| *stop).await;
            });
        let mut cut = abandon_rx.clone();
        tokio::select! {
            served = serving => {
                if let Err(err) = served {
                    drain.abort();
                    return Err(err.into());
                }
            }
            _ = async { drop(cut.wait_for(|cut| *cut).await) } => {
                tracing::warn!("grace period over: open calls cut")
            }
        }
        for worker in workers {
            let _ = worker.await;
        }
        drain.abort();
        let _ = depth.await;
        let _ = feed.await;
        let _ = loader.await;
        let _ = health_task.await;
        self.ledger.db().close().await;
        tracing::info!("ledger stopped");
        Ok(())
    }

    fn spawn_workers(
        &self,
        stop: &watch::Receiver<bool>,
        abandon: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let settings = WorkerSettings {
            owner: self.owner.clone(),
            lease_ms: self.config.lease_ms as i64,
            max_attempts: self.config.max_attempts,
            chain_jobs: self.config.chain_jobs.max(1),
            fold_interval_ms: i64::try_from(self.config.fold_interval_ms).unwrap_or(i64::MAX),
        };
        (0..self.config.workers)
            .map(|_| {
                tokio::spawn(run_worker(
                    self.ledger.clone(),
                    settings.clone(),
                    stop.clone(),
                    abandon.clone(),
                ))
            })
            .collect()
    }
}

/// The process `blindledger-ledger` runs: see [`blindledger_service::main`].
impl blindledger_service::Service for Application {
    type Config = LedgerConfig;

    fn build(config: LedgerConfig) -> impl Future<Output = anyhow::Result<Self>> {
        Application::build(config)
    }

    fn listen_addr(&self) -> SocketAddr {
        self.grpc_addr()
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

/// Every method this server serves, with its streaming type: these alone get their own
/// metric labels.
fn served_methods() -> anyhow::Result<Vec<(String, GrpcType)>> {
    let sets = [
        blindledger_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = Vec::new();
    for set in sets {
        let declared = blindledger_proto::methods(set).context("reading a descriptor set")?;
        methods.extend(declared.into_iter().map(|m| {
            let kind = GrpcType::of(m.client_streaming, m.server_streaming);
            (m.path, kind)
        }));
    }
    Ok(methods)
}

/// Publishes the number of unfinished jobs, by state, and the database pool's use every few
/// seconds.
async fn report_queue_depth(ledger: Arc<Ledger>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok((pending, running)) = ledger.db().jobs_by_state().await {
            metrics::gauge!("blindledger_jobs_queue_depth").set((pending + running) as f64);
            metrics::gauge!("blindledger_jobs_open", "state" => "pending").set(pending as f64);
            metrics::gauge!("blindledger_jobs_open", "state" => "running").set(running as f64);
        }
        let (open, idle, max) = ledger.db().pool_stats();
        metrics::gauge!("blindledger_db_pool_connections", "state" => "idle").set(idle as f64);
        metrics::gauge!("blindledger_db_pool_connections", "state" => "in_use")
            .set(open.saturating_sub(idle as u32) as f64);
        metrics::gauge!("blindledger_db_pool_max_connections").set(f64::from(max));
        if let Ok(waited) = ledger.db().probe_acquire().await {
            metrics::histogram!("blindledger_db_pool_acquire_seconds").record(waited.as_secs_f64());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Keeps the gRPC health status, of the ledger service and of the server as a whole (`""`,
/// what load balancers and Kubernetes probes ask by default), in step with what the ledger
/// needs to answer: a database with a healthy node (a Galera primary component) and an
/// active policy. NOT_SERVING otherwise, and from the moment the ledger starts stopping, so
/// traffic moves elsewhere while it drains.
async fn report_health(
    health: tonic_health::server::HealthReporter,
    mut serving: watch::Receiver<bool>,
    gate: PolicyGate,
    mut stop: watch::Receiver<bool>,
) {
    use tonic_health::ServingStatus;
    // The policy state has no change notification: it is looked at this often.
    const POLICY_CHECK: std::time::Duration = std::time::Duration::from_millis(500);
    let mut last = None;
    loop {
        let database = *serving.borrow_and_update();
        let policy = gate.revisions().is_some();
        metrics::gauge!("blindledger_db_serving").set(if database { 1.0 } else { 0.0 });
        let status = if database && policy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            health
                .set_service_status(LEDGER_HEALTH_SERVICE, status)
                .await;
            health.set_service_status("", status).await;
            last = Some(status);
        }
        tokio::select! {
            changed = serving.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(POLICY_CHECK) => {}
            _ = stop.changed() => break,
        }
    }
    health
        .set_service_status(LEDGER_HEALTH_SERVICE, ServingStatus::NotServing)
        .await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
}

/// The ledger's name in the gRPC health service.
const LEDGER_HEALTH_SERVICE: &str = "blindledger.ledger.v1.LedgerService";

/// The TLS settings of the gRPC server, when a certificate is configured; with a client CA
/// every connection must present a certificate chaining to it.
fn server_tls(config: &LedgerConfig) -> anyhow::Result<Option<ServerTlsConfig>> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    anyhow::ensure!(
        config.peer_grants.is_empty() || config.tls_client_ca.is_some(),
        "peer_grants need tls_client_ca: without client certificates no caller has an identity"
    );
    let (cert, key) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (read(cert)?, read(key)?),
        (None, None) => {
            anyhow::ensure!(
                config.tls_client_ca.is_none(),
                "tls_client_ca needs tls_cert and tls_key: client certificates are checked over TLS"
            );
            return Ok(None);
        }
        _ => anyhow::bail!("tls_cert and tls_key go together"),
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}
