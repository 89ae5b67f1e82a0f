//! Logging, tracing and metrics shared by every BlindLedger service.

mod catalog;
mod grpc_metrics;
mod http_server;
pub mod traces;

use std::net::SocketAddr;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

pub use catalog::{referenced_metrics, METRICS};
pub use grpc_metrics::{code_name, GrpcMetricsLayer, GrpcType, MeteredBody};
pub use http_server::{serve_http, TlsFiles};
pub use traces::shutdown_tracing;

/// Installs the process-wide tracing subscriber: human-readable lines, or JSON when
/// `json` is set, filtered by `RUST_LOG` (default `info`); and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans exported over OTLP as `service` (see
/// [`traces`]). Safe to call more than once: the first call wins.
pub fn init_tracing(json: bool, service: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    traces::install_propagator();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = if json {
        lines.json().boxed()
    } else {
        lines.boxed()
    };
    // Spans are exported at the levels logged (RUST_LOG), not every library's trace spans.
    let exported = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry()
        .with(traces::otlp_layer(service).map(|layer| layer.with_filter(exported)))
        .with(lines.with_filter(filter));
    // A second call (tests, `blindledger dev` embedding services) keeps the first subscriber.
    drop(registry.try_init());
}

/// Runs a service process's `main`: logs and traces set up as `service` (JSON lines with
/// `BLINDLEDGER_LOG_JSON`), then `main`, then the spans still buffered exported.
pub async fn service_main<T>(service: &str, main: impl std::future::Future<Output = T>) -> T {
    init_tracing(std::env::var_os("BLINDLEDGER_LOG_JSON").is_some(), service);
    let result = main.await;
    traces::shutdown_tracing();
    result
}

/// Resolves when the process is asked to stop: SIGTERM (what orchestrators send) or SIGINT
/// (Ctrl-C). A signal that cannot be listened for is logged and never fires.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                    result = tokio::signal::ctrl_c() => match result {
                        Ok(()) => tracing::info!("SIGINT received, shutting down"),
                        Err(error) => {
                            tracing::error!(%error, "cannot listen for SIGINT");
                            std::future::pending::<()>().await;
                        }
                    },
                }
                return;
            }
            Err(error) => tracing::error!(%error, "cannot listen for SIGTERM"),
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Installs span export only, without log lines (the CLI, whose output is its own): spans
/// are exported as `service` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the trace
/// context reaches the services it calls.
pub fn init_trace_export(service: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    traces::install_propagator();
    if let Some(layer) = traces::otlp_layer(service) {
        let exported = tracing_subscriber::filter::LevelFilter::INFO;
        drop(
            tracing_subscriber::registry()
                .with(layer.with_filter(exported))
                .try_init(),
        );
    }
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle, used to
/// render `/metrics`.
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0,
                ])
                .expect("static bucket list is not empty")
                .install_recorder();
            match handle {
                Ok(handle) => {
                    catalog::describe_all();
                    handle
                }
                // Another recorder is installed (embedding application): render an empty one.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Serves `GET /metrics` in the Prometheus text format on `addr` until the process ends.
/// Returns the bound address (`addr` may use port 0, which the exporter's own listener
/// cannot report).
pub async fn serve_metrics(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    serve_operations(addr, axum::Router::new()).await
}

/// Serves `GET /metrics` and the routes of `extra` (a health check) in plain HTTP on `addr`
/// until the process ends: the listener Prometheus and an orchestrator's probes use when
/// the service's own port requires client certificates they do not have. Returns the bound
/// address.
pub async fn serve_operations(
    addr: SocketAddr,
    extra: axum::Router,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let handle = prometheus();
    let router = extra.route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { metrics_response(&handle) }
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    Ok(bound)
}

/// The `/metrics` answer: the text format with its content type.
pub fn metrics_response(handle: &PrometheusHandle) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Returns a database URL with its credentials hidden (`mysql://***@db:3306/x`), for logs
/// and error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}
