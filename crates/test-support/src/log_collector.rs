//! A decision-log service as OPA's documentation describes its API: `POST /logs` with a
//! gzip-compressed JSON array of events. It records every event it accepts and can be told
//! to answer `503` to the next requests (a service that is down).

use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

#[derive(Default)]
struct Collected {
    events: Vec<Value>,
    requests: u64,
    refuse_next: u64,
    authorization: Option<String>,
}

/// A running collector; stops when dropped.
pub struct LogCollector {
    /// Where it listens.
    pub addr: SocketAddr,
    collected: Arc<Mutex<Collected>>,
    count: watch::Receiver<usize>,
    _stop: oneshot::Sender<()>,
}

type Shared = (Arc<Mutex<Collected>>, Arc<watch::Sender<usize>>);

impl LogCollector {
    /// Starts a collector on a free loopback port.
    pub async fn start() -> LogCollector {
        let collected = Arc::new(Mutex::new(Collected::default()));
        let (count_tx, count) = watch::channel(0);
        let state: Shared = (collected.clone(), Arc::new(count_tx));
        let app = axum::Router::new()
            .route("/logs", post(receive))
            .with_state(state);
        let loopback = "127.0.0.1:0".parse().expect("test helper");
        let (addr, stop) = crate::serve::spawn(app, loopback)
            .await
            .expect("test helper");
        LogCollector {
            addr,
            collected,
            count,
            _stop: stop,
        }
    }

    /// The URL events are posted to.
    pub fn url(&self) -> String {
        format!("http://{}/logs", self.addr)
    }

    /// Answers the next `n` requests with `503 Service Unavailable`.
    pub fn refuse_next(&self, n: u64) {
        self.lock().refuse_next = n;
    }

    /// Requests received, refused ones included.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// The `authorization` header of the last request.
    pub fn authorization(&self) -> Option<String> {
        self.lock().authorization.clone()
    }

    /// The events accepted so far.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// Waits (at most 30 s) until `n` events were accepted, and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let mut count = self.count.clone();
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|c| *c >= n))
            .await
            .expect("decision logs within 30 s")
            .expect("test helper");
        self.lock().events.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        self.collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

async fn receive(
    State((collected, count)): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut collected = collected.lock().unwrap_or_else(PoisonError::into_inner);
    collected.requests += 1;
    collected.authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if collected.refuse_next > 0 {
        collected.refuse_next -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    if !gzip {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE;
    }
    let mut json = Vec::new();
    if flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut json)
        .is_err()
    {
        return StatusCode::BAD_REQUEST;
    }
    let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(&json) else {
        return StatusCode::BAD_REQUEST;
    };
    collected.events.extend(events);
    let total = collected.events.len();
    count.send_replace(total);
    StatusCode::NO_CONTENT
}
