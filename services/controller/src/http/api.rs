//! The JSON API handlers: parse, call the controller, convert. The policy gate decided
//! each request before it reaches them (`super::auth`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::AppState;
use crate::bundles::POLICY_BUNDLE;
use crate::cycle::CycleReport;
use crate::error::Result;
use crate::history::{BundleHistory, Rollback};
use crate::push::PushReport;
use crate::scores::{Scores, ScoresQuery};

/// Most history entries listed when no limit is given.
const DEFAULT_HISTORY: u32 = 50;

/// `GET /v1/risk/scores?kind=account|principal&min_tier=medium&limit=100`
pub async fn scores(
    State(state): State<AppState>,
    Query(query): Query<ScoresQuery>,
) -> Result<Json<Scores>> {
    Ok(Json(state.controller.scores(&query).await?))
}

/// Options of `POST /v1/risk/cycle`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleQuery {
    /// Train a new model even if the latest one is fresh.
    #[serde(default)]
    retrain: bool,
}

/// `POST /v1/risk/cycle?retrain=true`
pub async fn cycle(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CycleQuery>,
) -> Result<Json<CycleReport>> {
    tracing::info!(
        actor = caller.subject(),
        retrain = query.retrain,
        "cycle requested"
    );
    Ok(Json(state.controller.run_cycle(query.retrain).await?))
}

/// Options of `POST /v1/policy/push`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushQuery {
    /// Refuse activation when more replayed decisions than this would change.
    max_changed: Option<u64>,
}

/// `POST /v1/policy/push?max_changed=N` with the signed bundle as the body.
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PushQuery>,
    body: Bytes,
) -> Result<Json<PushReport>> {
    let report = state
        .controller
        .push(body.to_vec(), caller.subject(), query.max_changed)
        .await?;
    Ok(Json(report))
}

/// Options of `GET /v1/policy/history`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// `blindledger` (default) or `risk`.
    bundle: Option<String>,
    /// Entries per list (default 50).
    limit: Option<u32>,
}

/// `GET /v1/policy/history?bundle=blindledger&limit=50`
pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<BundleHistory>> {
    let bundle = query.bundle.as_deref().unwrap_or(POLICY_BUNDLE);
    let limit = query.limit.unwrap_or(DEFAULT_HISTORY);
    Ok(Json(state.controller.history(bundle, limit).await?))
}

/// `POST /v1/policy/rollback/{revision}`
pub async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path(revision): Path<String>,
) -> Result<Json<Rollback>> {
    Ok(Json(
        state
            .controller
            .rollback(&revision, caller.subject())
            .await?,
    ))
}
