//! A tower layer recording gRPC server metrics named like go-grpc-prometheus:
//! `grpc_server_started_total`, `grpc_server_handled_total{grpc_code}` and
//! `grpc_server_handling_seconds`, labelled by service and method.
//!
//! It runs before authentication, on whatever path a caller sends: only the methods the
//! server declares get their own labels, every other path is counted as `unknown`, so that
//! no caller can create metric series.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

/// The label value of a path that is not one of the server's methods.
pub const UNKNOWN: &str = "unknown";

/// Adds gRPC request metrics to a service.
#[derive(Debug, Clone, Default)]
pub struct GrpcMetricsLayer {
    methods: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Labels the requests for `methods` (paths, `/package.Service/Method`) by service and
    /// method, and every other request as [`UNKNOWN`].
    pub fn new(methods: impl IntoIterator<Item = String>) -> Self {
        GrpcMetricsLayer {
            methods: Arc::new(methods.into_iter().collect()),
        }
    }

    /// The `grpc_service` and `grpc_method` labels of a request for `path`.
    fn labels(&self, path: &str) -> (String, String) {
        if !self.methods.contains(path) {
            return (UNKNOWN.to_owned(), UNKNOWN.to_owned());
        }
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default().to_string();
        let method = parts.next().unwrap_or_default().to_string();
        (service, method)
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service built by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, RB> Service<Request<B>> for GrpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (service, method) = self.layer.labels(request.uri().path());
        let labels = vec![("grpc_service", service), ("grpc_method", method)];
        metrics::counter!("grpc_server_started_total", &labels).increment(1);
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            let code = match &response {
                // tonic puts the status of unary errors in the headers; streaming and
                // successful calls report theirs in trailers, counted as OK here.
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Internal,
            };
            let elapsed = started.elapsed().as_secs_f64();
            metrics::histogram!("grpc_server_handling_seconds", &labels).record(elapsed);
            let mut with_code = labels;
            with_code.push(("grpc_code", format!("{code:?}")));
            metrics::counter!("grpc_server_handled_total", &with_code).increment(1);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_methods_get_their_own_labels() {
        let layer = GrpcMetricsLayer::new(["/pkg.Svc/Call".to_string()]);
        assert_eq!(
            layer.labels("/pkg.Svc/Call"),
            ("pkg.Svc".to_string(), "Call".to_string())
        );
        for path in [
            "/pkg.Svc/Other",
            "/made.Up/x1",
            "/",
            &format!("/{}", "x".repeat(10_000)),
        ] {
            assert_eq!(
                layer.labels(path),
                (UNKNOWN.to_string(), UNKNOWN.to_string()),
                "{path}"
            );
        }
    }
}
