//! A real incoming-webhook receiver on a loopback port: it records every JSON body posted
//! to `/hook`, optionally after a delay (a slow receiver).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Json;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

struct Received {
    bodies: Mutex<Vec<Value>>,
    count: watch::Sender<usize>,
    delay: Mutex<Duration>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Received>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> Receiver {
        Self::start_on("127.0.0.1:0".parse().expect("test helper")).await
    }

    /// Starts a receiver on `addr`.
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let received = Arc::new(Received {
            bodies: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            delay: Mutex::new(Duration::ZERO),
        });
        let app = axum::Router::new()
            .route("/hook", post(record))
            .with_state(received.clone());
        let (addr, stop) = crate::serve::spawn(app, addr).await.expect("test helper");
        Receiver {
            addr,
            received,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        hook_url(self.addr)
    }

    /// Makes every later request wait `delay` before it is answered.
    pub fn set_delay(&self, delay: Duration) {
        *self.received.delay.lock().expect("test helper") = delay;
    }

    /// Waits (at most 30 s) until `n` alerts arrived, and returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let mut count = self.received.count.subscribe();
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|c| *c >= n))
            .await
            .expect("alerts within 30 s")
            .expect("test helper");
        self.bodies()
    }

    /// The alerts received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.received.bodies.lock().expect("test helper").clone()
    }
}

/// The webhook URL of a receiver at `addr`.
pub fn hook_url(addr: SocketAddr) -> String {
    format!("http://{addr}/hook")
}

/// A loopback address nothing listens on (yet): connections to it are refused.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("test helper");
    listener.local_addr().expect("test helper")
}

async fn record(State(received): State<Arc<Received>>, Json(body): Json<Value>) -> &'static str {
    let delay = *received.delay.lock().expect("test helper");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    received.bodies.lock().expect("test helper").push(body);
    received.count.send_modify(|c| *c += 1);
    "ok"
}
