//! gRPC server metrics exactly as go-grpc-prometheus names and labels them, so that stock
//! gRPC dashboards and SLO rules read them:
//!
//! - `grpc_server_started_total{grpc_type,grpc_service,grpc_method}`
//! - `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`
//! - `grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}` (histogram)
//! - `grpc_server_msg_received_total{grpc_type,grpc_service,grpc_method}`
//! - `grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}`
//!
//! `grpc_type` is `unary`, `client_stream`, `server_stream` or `bidi_stream`; `grpc_code` is
//! the status as Go spells it (`OK`, `Canceled`, `PermissionDenied`, ...). A call is handled
//! when its status is known: from the response headers of a trailers-only answer (errors),
//! otherwise from the trailers at the end of the response body, so a streaming call is
//! counted with the status it really ended with and timed over its whole life. A call whose
//! client goes away before the end is `Canceled`. Messages are counted from the gRPC
//! length-prefixed framing of the request and response bodies.
//!
//! Each request also gets its span (`grpc.request`), continuing the caller's trace when the
//! request carries a W3C `traceparent`.
//!
//! It runs before authentication, on whatever path a caller sends: only the methods the
//! server declares get their own labels, every other path is counted as `unknown`, so that
//! no caller can create metric series.
//
// Written here rather than taken from a crate: the tonic/tower metrics crates we checked
// (tower-http's metrics, autometrics) neither label like go-grpc-prometheus nor read the
// status of streaming calls from their trailers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;
use tower::{Layer, Service};

/// The label value of a path that is not one of the server's methods.
pub const UNKNOWN: &str = "unknown";

const STARTED: &str = "grpc_server_started_total";
const HANDLED: &str = "grpc_server_handled_total";
const HANDLING_SECONDS: &str = "grpc_server_handling_seconds";
const MSG_RECEIVED: &str = "grpc_server_msg_received_total";
const MSG_SENT: &str = "grpc_server_msg_sent_total";

/// How a method streams, as go-grpc-prometheus's `grpc_type` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcType {
    /// One request, one response.
    Unary,
    /// A stream of requests, one response.
    ClientStream,
    /// One request, a stream of responses.
    ServerStream,
    /// Streams both ways.
    BidiStream,
}

impl GrpcType {
    /// The type of a method from its descriptor's streaming flags.
    pub fn of(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => GrpcType::Unary,
            (true, false) => GrpcType::ClientStream,
            (false, true) => GrpcType::ServerStream,
            (true, true) => GrpcType::BidiStream,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            GrpcType::Unary => "unary",
            GrpcType::ClientStream => "client_stream",
            GrpcType::ServerStream => "server_stream",
            GrpcType::BidiStream => "bidi_stream",
        }
    }
}

/// A status code as Go's `codes.Code.String()` spells it, which go-grpc-prometheus uses.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The labels every series of one method carries.
#[derive(Debug)]
struct MethodLabels {
    grpc_type: &'static str,
    service: String,
    method: String,
}

impl MethodLabels {
    fn unknown() -> Self {
        MethodLabels {
            grpc_type: UNKNOWN,
            service: UNKNOWN.to_owned(),
            method: UNKNOWN.to_owned(),
        }
    }

    fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("grpc_type", self.grpc_type.to_owned()),
            ("grpc_service", self.service.clone()),
            ("grpc_method", self.method.clone()),
        ]
    }
}

/// Adds gRPC server metrics to a tonic server.
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    methods: Arc<HashMap<String, Arc<MethodLabels>>>,
    unknown: Arc<MethodLabels>,
}

impl Default for GrpcMetricsLayer {
    fn default() -> Self {
        GrpcMetricsLayer::new(std::iter::empty())
    }
}

impl GrpcMetricsLayer {
    /// Labels the requests for `methods` (paths, `/package.Service/Method`, with their
    /// type) by type, service and method, and every other request as [`UNKNOWN`].
    pub fn new(methods: impl IntoIterator<Item = (String, GrpcType)>) -> Self {
        let methods = methods
            .into_iter()
            .map(|(path, grpc_type)| {
                let mut parts = path.trim_start_matches('/').splitn(2, '/');
                let labels = MethodLabels {
                    grpc_type: grpc_type.as_str(),
                    service: parts.next().unwrap_or_default().to_owned(),
                    method: parts.next().unwrap_or_default().to_owned(),
                };
                (path, Arc::new(labels))
            })
            .collect();
        GrpcMetricsLayer {
            methods: Arc::new(methods),
            unknown: Arc::new(MethodLabels::unknown()),
        }
    }

    fn labels_of(&self, path: &str) -> Arc<MethodLabels> {
        self.methods
            .get(path)
            .cloned()
            .unwrap_or_else(|| self.unknown.clone())
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

impl<S, RB> Service<Request<tonic::body::Body>> for GrpcMetrics<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<RB>>,
    S::Future: Send + 'static,
    RB: Body<Data = Bytes>,
{
    type Response = Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let labels = self.layer.labels_of(request.uri().path());
        metrics::counter!(STARTED, &labels.labels()).increment(1);
        // The request's span, in the caller's trace when it sent one (`traceparent`); named
        // by the declared method only, like the metrics.
        let span = tracing::info_span!(
            "grpc.request",
            "otel.name" = %format_args!("{}/{}", labels.service, labels.method),
            "otel.kind" = "server",
            "rpc.system" = "grpc",
            "rpc.service" = %labels.service,
            "rpc.method" = %labels.method,
        );
        crate::traces::set_parent_from(&span, request.headers());
        let call = Call {
            labels,
            started: Instant::now(),
            ended: false,
        };
        let request = request.map(|body| {
            tonic::body::Body::new(ReceivedBody {
                inner: body,
                frames: FrameCounter::default(),
                labels: call.labels.clone(),
            })
        });
        let future = span.in_scope(|| self.inner.call(request));
        let handled = async move {
            let mut call = call;
            match future.await {
                Ok(response) => {
                    // A trailers-only answer (an error, usually) has its status here.
                    let status = grpc_status(response.headers());
                    if let Some(code) = status {
                        call.end(code);
                    }
                    Ok(response.map(|inner| MeteredBody {
                        inner,
                        frames: FrameCounter::default(),
                        call,
                    }))
                }
                Err(error) => {
                    call.end(Code::Internal);
                    Err(error)
                }
            }
        };
        Box::pin(tracing::Instrument::instrument(handled, span))
    }
}

/// One call in progress: handled (once) when its status is known.
#[derive(Debug)]
struct Call {
    labels: Arc<MethodLabels>,
    started: Instant,
    ended: bool,
}

impl Call {
    fn end(&mut self, code: Code) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let labels = self.labels.labels();
        metrics::histogram!(HANDLING_SECONDS, &labels).record(self.started.elapsed().as_secs_f64());
        let mut with_code = labels;
        with_code.push(("grpc_code", code_name(code).to_owned()));
        metrics::counter!(HANDLED, &with_code).increment(1);
    }
}

impl Drop for Call {
    /// A response body dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

/// The `grpc-status` of a header or trailer map.
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    value.parse::<i32>().ok().map(Code::from)
}

/// Counts gRPC messages in a body's bytes: each is a 1-byte flag and a 4-byte big-endian
/// length, then that many bytes; frames may split anywhere.
#[derive(Debug, Default)]
struct FrameCounter {
    header: [u8; 5],
    have: usize,
    remaining: u64,
}

impl FrameCounter {
    /// Feeds `data`; returns how many messages started in it.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut started = 0;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                data = &data[n..];
                self.remaining -= n as u64;
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                started += 1;
                self.have = 0;
                let [_, a, b, c, d] = self.header;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
            }
        }
        started
    }
}

pin_project_lite::pin_project! {
    /// A request body counting the messages received.
    struct ReceivedBody {
        #[pin]
        inner: tonic::body::Body,
        frames: FrameCounter,
        labels: Arc<MethodLabels>,
    }
}

impl Body for ReceivedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                let received = this.frames.feed(data);
                if received > 0 {
                    metrics::counter!(MSG_RECEIVED, &this.labels.labels()).increment(received);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body counting the messages sent and reading the call's status from its
    /// trailers.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        frames: FrameCounter,
        call: Call,
    }
}

impl<B: Body<Data = Bytes>> Body for MeteredBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let sent = this.frames.feed(data);
                    if sent > 0 {
                        metrics::counter!(MSG_SENT, &this.call.labels.labels()).increment(sent);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.call
                        .end(grpc_status(trailers).unwrap_or(Code::Unknown));
                }
            }
            Poll::Ready(Some(Err(_))) => this.call.end(Code::Internal),
            // Ended without trailers: a trailers-only answer was counted from its headers.
            Poll::Ready(None) => this.call.end(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_methods_get_their_own_labels() {
        let layer = GrpcMetricsLayer::new([
            ("/pkg.Svc/Call".to_string(), GrpcType::Unary),
            ("/pkg.Svc/Watch".to_string(), GrpcType::ServerStream),
        ]);
        let call = layer.labels_of("/pkg.Svc/Call");
        assert_eq!(
            (call.grpc_type, call.service.as_str(), call.method.as_str()),
            ("unary", "pkg.Svc", "Call")
        );
        assert_eq!(layer.labels_of("/pkg.Svc/Watch").grpc_type, "server_stream");
        for path in [
            "/pkg.Svc/Other",
            "/made.Up/x1",
            "/",
            &format!("/{}", "x".repeat(10_000)),
        ] {
            let labels = layer.labels_of(path);
            assert_eq!(
                (
                    labels.grpc_type,
                    labels.service.as_str(),
                    labels.method.as_str()
                ),
                (UNKNOWN, UNKNOWN, UNKNOWN),
                "{path}"
            );
        }
    }

    #[test]
    fn codes_are_spelled_as_go_spells_them() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        assert_eq!(code_name(Code::PermissionDenied), "PermissionDenied");
        assert_eq!(GrpcType::of(true, true).as_str(), "bidi_stream");
        assert_eq!(GrpcType::of(true, false).as_str(), "client_stream");
    }

    #[test]
    fn messages_are_counted_across_any_split() {
        // Three messages: 3 bytes, empty, 300 bytes.
        let mut stream = Vec::new();
        for body in [vec![1u8; 3], vec![], vec![7u8; 300]] {
            stream.push(0);
            stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
            stream.extend_from_slice(&body);
        }
        for chunk in [1, 2, 4, 5, 7, 64, stream.len()] {
            let mut counter = FrameCounter::default();
            let counted: u64 = stream.chunks(chunk).map(|c| counter.feed(c)).sum();
            assert_eq!(counted, 3, "chunks of {chunk}");
        }
    }
}
