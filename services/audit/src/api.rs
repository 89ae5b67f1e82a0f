//! JSON, CSV and event-stream endpoints.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use blindledger_audit::admin::{AcceptedCommand, SignedCommand};
use blindledger_audit::{
    csv_line, export_checkpoints, ExportRange, VerifyOptions, VerifyReport, CSV_HEADER,
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::Officer;
use crate::error::AppError;
use crate::queries::parse_time;
use crate::state::AppState;

/// Rows per page of a CSV export.
const EXPORT_PAGE: i64 = 2_000;

/// Where `GET /api/audit/verify` starts.
#[derive(Debug, Default, Deserialize)]
pub struct VerifyQuery {
    /// Start after this checkpoint id.
    pub from_checkpoint: Option<i64>,
}

/// `GET /api/audit/verify`: verifies the whole chain (or from a checkpoint).
pub async fn verify(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(query): Query<VerifyQuery>,
) -> Result<Json<VerifyReport>, AppError> {
    let (external_checkpoints, max_unpublished_ms) = match &state.published {
        Some((published, max_ms)) => (published.list().await?, Some(*max_ms)),
        None => (Vec::new(), None),
    };
    let archived_through = match &state.archive {
        Some(archive) => archive.verify(&state.checkpoint_keys).await?.through,
        None => None,
    };
    let options = VerifyOptions {
        from_checkpoint: query.from_checkpoint,
        external_checkpoints,
        max_unpublished_ms,
        archived_through,
    };
    let report = state.log.verify(&state.checkpoint_keys, &options).await?;
    tracing::info!(officer = %officer.subject, ok = report.ok, rows = report.rows_checked, "audit verified on request");
    Ok(Json(report))
}

/// `GET /api/audit/checkpoints`: every checkpoint, as the JSON export.
pub async fn checkpoints(State(state): State<AppState>, _: Officer) -> Result<Response, AppError> {
    let body = export_checkpoints(&state.log.checkpoints().await?);
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/admin/command`: a signed admin command.
pub async fn admin_command(
    State(state): State<AppState>,
    _: Officer,
    Json(signed): Json<SignedCommand>,
) -> Result<Json<AcceptedCommand>, AppError> {
    Ok(Json(state.commands.submit(&signed).await?))
}

/// `GET /api/policy-data`: frozen accounts and revoked keys, as policy data.
pub async fn policy_data(
    State(state): State<AppState>,
    _: Officer,
) -> Result<Json<serde_json::Value>, AppError> {
    Ok(Json(state.log.policy_data().await?.to_json()))
}

/// The time range of an export.
#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    /// First time included (Unix ms or `YYYY-MM-DDTHH:MM` UTC).
    pub from: Option<String>,
    /// First time excluded.
    pub to: Option<String>,
}

/// `GET /export.csv?from=&to=`: the audit events of the range, streamed as CSV.
pub async fn export_csv(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(query): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let time = |value: &Option<String>, name: &str| -> Result<Option<i64>, AppError> {
        match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| AppError::BadRequest(format!("{name}: not a time"))),
        }
    };
    let range = ExportRange {
        from: time(&query.from, "from")?,
        to: time(&query.to, "to")?,
        kind: None,
    };
    tracing::info!(officer = %officer.subject, "audit export");
    let header_line = futures::stream::once(async { Ok(Bytes::from(format!("{CSV_HEADER}\r\n"))) });
    let body = header_line.chain(csv_pages(state, range));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit-export.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The rows of `range`, one chunk per page, read as the client consumes them.
fn csv_pages(
    state: AppState,
    range: ExportRange,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some(0i64), move |after| {
        let (log, range) = (state.log.clone(), range);
        async move {
            let after = after?;
            match log.events_in(&range, after, EXPORT_PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() as i64 == EXPORT_PAGE).then(|| page[page.len() - 1].seq);
                    let chunk: String = page.iter().map(csv_line).collect();
                    Some((Ok(Bytes::from(chunk)), next))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "export page failed");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    })
}

/// `GET /events`: new decisions as Server-Sent Events (`event: decision`). The stream
/// ends when the service stops or when the officer's token expires, whichever comes first:
/// a stream opened with a token does not outlive it (the page reconnects, and a reconnect
/// with an expired token is refused).
pub async fn events(
    State(state): State<AppState>,
    Officer(officer): Officer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut stopping = state.stopping.clone();
    let expired = until_expiry(officer.time_left());
    let stopped = async move {
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => {}
            () = expired => {}
        }
    };
    let stream = BroadcastStream::new(state.live.subscribe()).filter_map(|item| async move {
        // A lagging client skips what it missed; the page shows the full log on reload.
        let decision = item.ok()?;
        let event = Event::default()
            .event("decision")
            .id(decision.seq.to_string())
            .json_data(&*decision)
            .ok()?;
        Some(Ok(event))
    });
    Sse::new(stream.take_until(stopped))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Resolves once a token with `time_left` has expired; never for a caller without one.
async fn until_expiry(time_left: Option<Duration>) {
    match time_left {
        Some(left) => tokio::time::sleep(left).await,
        None => std::future::pending().await,
    }
}

/// `GET /healthz`: answers once the database does.
pub async fn health(State(state): State<AppState>) -> Result<&'static str, AppError> {
    state.log.head().await?;
    Ok("ok")
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics() -> Response {
    blindledger_telemetry::metrics_response(&blindledger_telemetry::prometheus())
}
