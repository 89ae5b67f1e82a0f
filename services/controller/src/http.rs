//! The controller's HTTP server: bundles for the services, a JSON API for the CLI and CI,
//! health and Prometheus metrics.
//!
//! | route | policy request | roles the shipped policy allows | |
//! |---|---|---|---|
//! | `GET /bundles/{name}` | `Bundle` | bundle_reader, admin | `blindledger` or `risk` bundle, strong `ETag`, `304` on `If-None-Match`, long polling with `Prefer: wait=N`, `404` when none |
//! | `GET /v1/risk/scores` | `Scores` | admin, ci, auditor | tiers, scores and the features that drove them |
//! | `POST /v1/risk/cycle` | `Cycle` | admin | runs a cycle now (`?retrain=true` forces a new model) |
//! | `POST /v1/policy/push` | `Push` | admin, ci | body: a signed bundle (tar.gz); `?max_changed=N` tightens `impact_max_changed` |
//! | `GET /v1/policy/history` | `History` | admin, ci, auditor | `?bundle=blindledger|risk&limit=N` |
//! | `POST /v1/policy/rollback/{revision}` | `Rollback` | admin | serves an earlier revision again |
//! | `GET /health`, `GET /metrics` | none | anyone | liveness, Prometheus text format |
//!
//! Every route but health and metrics authenticates its caller with an EdDSA bearer token
//! (the gate's [`TokenVerifier`]) and passes the policy gate with its decision logged
//! ([`auth`]), the bundle routes included: the risk bundle lists every tenant's tiers,
//! frozen accounts and revoked keys, so services fetch it with a token holding the
//! `bundle_reader` role (their `bundle_token_file`). Bundles are also signed, and services
//! verify every download against the keys they trust.

mod api;
pub mod auth;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use blindledger_gate::{PolicyGate, TokenVerifier};
use blindledger_policy::BundleLimits;

use crate::controller::Controller;

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    controller: Arc<Controller>,
    tokens: TokenVerifier,
    gate: PolicyGate,
}

/// The routes of the controller (see the module docs), each decided by `gate`.
pub fn router(controller: Arc<Controller>, tokens: TokenVerifier, gate: PolicyGate) -> Router {
    // Pushed archives are refused past the bundle size limit anyway; a little slack lets
    // the bundle reader say so in its own words.
    let body_limit = usize::try_from(BundleLimits::default().max_compressed_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1024);
    let state = AppState {
        controller,
        tokens,
        gate,
    };
    let gated = |route, name| auth::gated(route, &state, name);
    Router::new()
        .route("/bundles/{name}", gated(get(serve_bundle), "Bundle"))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/risk/scores", gated(get(api::scores), "Scores"))
        .route("/v1/risk/cycle", gated(post(api::cycle), "Cycle"))
        .route("/v1/policy/push", gated(post(api::push), "Push"))
        .route("/v1/policy/history", gated(get(api::history), "History"))
        .route(
            "/v1/policy/rollback/{revision}",
            gated(post(api::rollback), "Rollback"),
        )
        // Each request's span, in its caller's trace, named by its route.
        .route_layer(axum::middleware::from_fn(
            blindledger_telemetry::traces::trace_http,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// Longest a long poll is held, whatever the client asks for.
const MAX_WAIT: Duration = Duration::from_secs(120);

/// The media type by which a bundle server tells OPA (and our loaders) that it holds
/// requests carrying `Prefer: wait=N`.
pub const LONG_POLLING_CONTENT_TYPE: &str = "application/vnd.openpolicyagent.bundles";

/// Serves the active revision of a bundle, as OPA's bundle service protocol does, long
/// polling included: with `Prefer: wait=N` and the current ETag in `If-None-Match`, the
/// answer waits until a new revision is active (200) or `N` seconds pass (304).
///
/// Only to callers the policy allows `Bundle` (the shipped policy: `bundle_reader` and
/// `admin`): the risk bundle lists every tenant's tiers, frozen accounts and revoked keys.
/// A held poll ends by the time the caller's token expires.
async fn serve_bundle(
    State(state): State<AppState>,
    caller: auth::Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let served = state.controller.served();
    let wait = requested_wait(&headers).min(caller.time_left());
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read: a revision activated in between still wakes it.
    let mut changes = served.changes();
    loop {
        let Some(bundle) = served.get(&name) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let etag = bundle.etag();
        let fresh = !if_none_match(&headers, &etag);
        let headers_out = [
            (header::ETAG, etag),
            (header::CONTENT_TYPE, LONG_POLLING_CONTENT_TYPE.to_string()),
        ];
        if fresh {
            return (StatusCode::OK, headers_out, bundle.archive.clone()).into_response();
        }
        let changed = !wait.is_zero() && !served.is_closing() && {
            let _held = served.hold();
            matches!(
                tokio::time::timeout_at(deadline, changes.changed()).await,
                Ok(Ok(()))
            )
        };
        if !changed || served.is_closing() {
            return (StatusCode::NOT_MODIFIED, headers_out).into_response();
        }
    }
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag == etag
        })
}

/// The `wait=N` preference of RFC 7240 (seconds), at most [`MAX_WAIT`]; zero without one.
fn requested_wait(headers: &HeaderMap) -> Duration {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .find_map(|n| n.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, |n| Duration::from_secs(n).min(MAX_WAIT))
}

async fn metrics() -> Response {
    blindledger_telemetry::metrics_response(&blindledger_telemetry::prometheus())
}
