//! Traces over OpenTelemetry: spans exported with OTLP (gRPC) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the other standard `OTEL_*` variables, such as
//! `OTEL_SERVICE_NAME` and `OTEL_EXPORTER_OTLP_HEADERS`, are honoured by the exporter), and
//! the W3C trace context (`traceparent`) carried on every hop.
//!
//! Span fields never hold an amount, a balance, a ciphertext or an outcome: the services
//! record only names, ids, sizes and counts (a test checks the exported spans).

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The OpenTelemetry layer exporting spans as `service` (or `OTEL_SERVICE_NAME`), when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set and a Tokio runtime is running (the gRPC exporter
/// needs one); none otherwise, or when one was installed already in this process.
pub(crate) fn otlp_layer<S>(
    service: &str,
) -> Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())?;
    if PROVIDER.get().is_some() {
        return None;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        eprintln!(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but no Tokio runtime runs: traces are not exported"
        );
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("traces are not exported: {error}");
            return None;
        }
    };
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("blindledger");
    opentelemetry::global::set_tracer_provider(provider.clone());
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Uses the W3C trace context on every hop (set whether or not spans are exported, so a
/// service in the middle passes its callers' context on).
pub(crate) fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// Exports the spans still buffered and stops the exporter; call before the process exits.
pub fn shutdown_tracing() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    }
}

/// Makes the trace context in `headers` (`traceparent`) the parent of `span`. Without one,
/// the span starts a trace.
pub fn set_parent_from(span: &tracing::Span, headers: &HeaderMap) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Writes the current span's trace context into `headers` (`traceparent`, `tracestate`).
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    inject(&context, headers);
}

fn inject(context: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(context, &mut HeaderInjector(headers));
    });
}

/// The current span's trace context as a `traceparent` value, if it is sampled into a
/// trace: what a queued job keeps to continue its request's trace.
pub fn current_traceparent() -> Option<String> {
    let mut headers = HeaderMap::new();
    inject_current(&mut headers);
    let value = headers.get("traceparent")?.to_str().ok()?;
    Some(value.to_owned())
}

/// Makes the trace of a stored `traceparent` (from [`current_traceparent`]) the parent of
/// `span`; an invalid or missing value leaves the span where it is.
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent.and_then(|v| HeaderValue::from_str(v).ok()) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", value);
    set_parent_from(span, &headers);
}

/// The trace and span ids (hex) of the current span, when it belongs to a trace: what a
/// decision-log event records (`trace_id`, `span_id`).
pub fn current_ids() -> Option<(String, String)> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Axum middleware giving each HTTP request its span (`http.request`), in the caller's
/// trace when it sent a `traceparent`. Add it with `route_layer`, so that the span is named
/// by the matched route, never by the raw path a caller sent.
pub async fn trace_http(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "http.request",
        "otel.name" = %format_args!("{} {route}", request.method()),
        "otel.kind" = "server",
        "http.request.method" = %request.method(),
        "http.route" = %route,
        "http.response.status_code" = tracing::field::Empty,
    );
    set_parent_from(&span, request.headers());
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}
