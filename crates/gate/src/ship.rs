//! Decision logs shipped the way OPA ships them, to the log pipelines that already read
//! OPA's: batches of events as a gzip-compressed JSON array `POST`ed to a decision-log
//! service (OPA's "decision log service API", usually `<service>/logs`), or JSON lines
//! appended to a file.
//!
//! Shipping is a copy: every event is first written durably by the gate's own sink (the
//! decision does not take effect otherwise), then queued here without waiting. The queue is
//! bounded; when the service is down, batches are retried with exponential backoff and, once
//! the queue is full, the oldest events are dropped and counted (as OPA's size-limited
//! buffer does): the durable copy stays complete, and a slow log pipeline never slows a
//! decision.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blindledger_policy::DecisionEvent;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use crate::sink::DecisionSink;

/// Events shipped, by `target` (`http`, `file`).
const SHIPPED: &str = "blindledger_decision_logs_shipped_total";
/// Events dropped because the queue was full, by `target`.
const DROPPED: &str = "blindledger_decision_logs_dropped_total";
/// Failed shipping attempts (each retried), by `target`.
const FAILURES: &str = "blindledger_decision_logs_ship_failures_total";

/// Where shipped decision logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipTarget {
    /// A decision-log service: gzip JSON arrays `POST`ed to this URL, with the bearer
    /// token read from the file (re-read before each request) when one is given.
    Http {
        /// The full URL, e.g. `https://logs.example.com/logs`.
        url: String,
        /// A file holding a bearer token.
        token_file: Option<PathBuf>,
    },
    /// JSON lines appended to a file.
    File(PathBuf),
}

impl ShipTarget {
    /// The target a service's configuration names: `decision_log_url` (with its token
    /// file) or `decision_log_file`, not both; none when neither is set.
    pub fn from_config(
        url: Option<&str>,
        token_file: Option<&std::path::Path>,
        file: Option<&std::path::Path>,
    ) -> Result<Option<ShipTarget>, String> {
        match (url, file) {
            (Some(_), Some(_)) => {
                Err("set decision_log_url or decision_log_file, not both".to_string())
            }
            (Some(url), None) => {
                let parsed =
                    reqwest::Url::parse(url).map_err(|e| format!("decision_log_url: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err("decision_log_url must be http(s)".to_string());
                }
                Ok(Some(ShipTarget::Http {
                    url: url.to_string(),
                    token_file: token_file.map(std::path::Path::to_path_buf),
                }))
            }
            (None, Some(file)) => Ok(Some(ShipTarget::File(file.to_path_buf()))),
            (None, None) => Ok(None),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            ShipTarget::Http { .. } => "http",
            ShipTarget::File(_) => "file",
        }
    }
}

/// Batching and buffering.
#[derive(Debug, Clone, Copy)]
pub struct ShipLimits {
    /// Most events queued; beyond, the oldest are dropped.
    pub max_queued: usize,
    /// Most events in one upload.
    pub max_batch: usize,
    /// Longest an event waits for its batch to fill.
    pub max_delay: Duration,
    /// First retry delay after a failed upload, doubled up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Timeout of one upload.
    pub timeout: Duration,
}

impl Default for ShipLimits {
    fn default() -> Self {
        ShipLimits {
            max_queued: 10_000,
            max_batch: 500,
            max_delay: Duration::from_secs(1),
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A sink that records through `inner` and, once recorded, queues the event for shipping.
pub struct ShippingSink {
    inner: Arc<dyn DecisionSink>,
    queue: Arc<Queue>,
}

struct Queue {
    events: Mutex<VecDeque<Vec<u8>>>,
    ready: Notify,
    limits: ShipLimits,
    target: &'static str,
}

impl ShippingSink {
    /// Wraps `inner`, shipping to `target` from a background task (needs a Tokio runtime)
    /// that ends when the sink is dropped.
    pub fn new(
        inner: Arc<dyn DecisionSink>,
        target: ShipTarget,
        limits: ShipLimits,
    ) -> Result<Self, String> {
        let queue = Arc::new(Queue {
            events: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            limits,
            target: target.label(),
        });
        let shipper = Shipper::new(target, limits)?;
        tokio::spawn(shipper.run(Arc::clone(&queue)));
        Ok(ShippingSink { inner, queue })
    }
}

impl DecisionSink for ShippingSink {
    fn record<'a>(&'a self, event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.inner.record(event).await?;
            // The event as recorded (already masked); shipping never fails the decision.
            if let Ok(json) = serde_json::to_vec(event) {
                self.queue.push(json);
            }
            Ok(())
        })
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, event: Vec<u8>) {
        let mut events = self.lock();
        if events.len() >= self.limits.max_queued {
            events.pop_front();
            metrics::counter!(DROPPED, "target" => self.target).increment(1);
        }
        events.push_back(event);
        let full = events.len() >= self.limits.max_batch;
        drop(events);
        if full {
            self.ready.notify_one();
        }
    }

    /// The oldest events, up to a batch, left queued until [`Queue::done`].
    fn peek(&self) -> Vec<Vec<u8>> {
        self.lock()
            .iter()
            .take(self.limits.max_batch)
            .cloned()
            .collect()
    }

    /// Removes the shipped batch from the front. Events dropped meanwhile (queue full)
    /// were the oldest, so only what is still at the front is removed.
    fn done(&self, batch: &[Vec<u8>]) {
        let mut events = self.lock();
        let shipped = batch
            .iter()
            .zip(events.iter())
            .take_while(|(sent, queued)| sent == queued)
            .count();
        events.drain(..shipped);
    }
}

struct Shipper {
    target: ShipTarget,
    http: reqwest::Client,
    limits: ShipLimits,
}

impl Shipper {
    fn new(target: ShipTarget, limits: ShipLimits) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("blindledger/", env!("CARGO_PKG_VERSION")))
            .timeout(limits.timeout)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Shipper {
            target,
            http,
            limits,
        })
    }

    /// Ships batches until the sink is dropped (the last batch is tried once more then).
    async fn run(self, queue: Arc<Queue>) {
        let mut backoff = self.limits.min_backoff;
        loop {
            let notified = queue.ready.notified();
            if queue.lock().len() < self.limits.max_batch {
                // A full batch or the delay, whichever comes first.
                let _ = tokio::time::timeout(self.limits.max_delay, notified).await;
            }
            let sink_dropped = Arc::strong_count(&queue) == 1;
            let batch = queue.peek();
            if !batch.is_empty() {
                backoff = self.ship_or_wait(&queue, &batch, backoff).await;
            }
            if sink_dropped {
                return;
            }
        }
    }

    /// Ships `batch`; on failure waits `backoff` and returns the next one.
    async fn ship_or_wait(&self, queue: &Queue, batch: &[Vec<u8>], backoff: Duration) -> Duration {
        match self.ship(batch).await {
            Ok(()) => {
                queue.done(batch);
                metrics::counter!(SHIPPED, "target" => queue.target).increment(batch.len() as u64);
                self.limits.min_backoff
            }
            Err(error) => {
                metrics::counter!(FAILURES, "target" => queue.target).increment(1);
                tracing::warn!(%error, events = batch.len(), retry_in = ?backoff, "decision logs not shipped");
                tokio::time::sleep(backoff).await;
                (backoff * 2).min(self.limits.max_backoff)
            }
        }
    }

    async fn ship(&self, batch: &[Vec<u8>]) -> Result<(), String> {
        match &self.target {
            ShipTarget::Http { url, token_file } => {
                let body = gzip_array(batch).map_err(|e| format!("compressing: {e}"))?;
                let mut request = self
                    .http
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::CONTENT_ENCODING, "gzip")
                    .body(body);
                if let Some(path) = token_file {
                    let token = tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| format!("reading the token file {}: {e}", path.display()))?;
                    request = request.bearer_auth(token.trim());
                }
                let response = request.send().await.map_err(|e| e.to_string())?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!(
                        "the decision-log service answered {}",
                        response.status()
                    ))
                }
            }
            ShipTarget::File(path) => {
                let mut lines = Vec::new();
                for event in batch {
                    lines.extend_from_slice(event);
                    lines.push(b'\n');
                }
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    file.write_all(&lines)?;
                    file.flush()
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// `[event,event,...]`, gzip-compressed.
fn gzip_array(batch: &[Vec<u8>]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"[")?;
    for (i, event) in batch.iter().enumerate() {
        if i > 0 {
            encoder.write_all(b",")?;
        }
        encoder.write_all(event)?;
    }
    encoder.write_all(b"]")?;
    encoder.finish()
}
