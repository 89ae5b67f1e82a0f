//! A real HTTP bundle server for tests of bundle polling, speaking OPA's protocol: `ETag`
//! on every bundle, `304 Not Modified` for a matching `If-None-Match`, `404` for a bundle it
//! does not have.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Served {
    /// Archive bytes and their ETag, by bundle name.
    bundles: HashMap<String, (Vec<u8>, String)>,
    /// While set, every request is answered 503.
    failing: bool,
    stats: BundleServerStats,
}

/// What the server answered so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BundleServerStats {
    /// Requests received.
    pub requests: u64,
    /// Requests answered `304 Not Modified`.
    pub not_modified: u64,
    /// Requests answered with a bundle.
    pub downloads: u64,
}

/// A bundle server on a loopback port, serving `/bundles/{name}`; stops when dropped.
pub struct BundleServer {
    addr: SocketAddr,
    served: Arc<Mutex<Served>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl BundleServer {
    /// Starts the server with no bundles.
    pub async fn start() -> anyhow::Result<Self> {
        let served = Arc::new(Mutex::new(Served::default()));
        let app = axum::Router::new()
            .route("/bundles/{name}", get(serve))
            .with_state(served.clone());
        let (addr, shutdown) = crate::serve::spawn(app, "127.0.0.1:0".parse()?).await?;
        Ok(BundleServer {
            addr,
            served,
            _shutdown: shutdown,
        })
    }

    /// The URL of bundle `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/bundles/{name}", self.addr)
    }

    /// Serves `archive` as bundle `name` from now on, with a new ETag.
    pub fn publish(&self, name: &str, archive: Vec<u8>) {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&archive))[..16]);
        self.lock().bundles.insert(name.to_owned(), (archive, etag));
    }

    /// Makes every request fail with 503 (`true`) or be served again (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// What the server answered so far.
    pub fn stats(&self) -> BundleServerStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve(
    State(served): State<Arc<Mutex<Served>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut served = served.lock().unwrap_or_else(PoisonError::into_inner);
    served.stats.requests += 1;
    if served.failing {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let Some((archive, etag)) = served.bundles.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match == Some(etag.as_str()) {
        served.stats.not_modified += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    served.stats.downloads += 1;
    let headers = [
        (header::ETAG, etag),
        (header::CONTENT_TYPE, "application/gzip".to_owned()),
    ];
    (StatusCode::OK, headers, archive).into_response()
}
