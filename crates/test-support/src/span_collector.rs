//! An OTLP/gRPC trace collector, as any OTLP backend receives spans: it keeps every export
//! request, so a test can read the spans or search their encoded bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message as _;

/// A span as the collector received it.
#[derive(Debug, Clone)]
pub struct ExportedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    /// Attribute values rendered as text.
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A running collector on a loopback port; it serves until the runtime that started it ends.
pub struct SpanCollector {
    /// `http://127.0.0.1:port`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    received: Received,
}

impl SpanCollector {
    /// Listens on a free loopback port (inside a Tokio runtime).
    pub async fn start() -> SpanCollector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the span collector");
        let endpoint = format!(
            "http://{}",
            listener.local_addr().expect("the collector's address")
        );
        let received = Received::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        tokio::spawn(server);
        SpanCollector { endpoint, received }
    }

    fn requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.received
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every export request received so far, as it was encoded on the wire.
    pub fn encoded_requests(&self) -> Vec<Vec<u8>> {
        self.requests().iter().map(|r| r.encode_to_vec()).collect()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ExportedSpan> {
        let mut spans = Vec::new();
        for request in self.requests() {
            for resource in request.resource_spans {
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        let attributes = span
                            .attributes
                            .iter()
                            .map(|kv| {
                                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                    Some(Value::StringValue(s)) => s.clone(),
                                    Some(Value::IntValue(i)) => i.to_string(),
                                    Some(Value::BoolValue(b)) => b.to_string(),
                                    Some(Value::DoubleValue(d)) => d.to_string(),
                                    other => format!("{other:?}"),
                                };
                                (kv.key.clone(), value)
                            })
                            .collect();
                        spans.push(ExportedSpan {
                            name: span.name,
                            trace_id: hex::encode(&span.trace_id),
                            span_id: hex::encode(&span.span_id),
                            parent_span_id: hex::encode(&span.parent_span_id),
                            attributes,
                        });
                    }
                }
            }
        }
        spans
    }
}
