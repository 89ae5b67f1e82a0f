//! `GET /transactions` and `GET /transactions/{id}`: jobs and each one's workflow.

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::layout::{maybe_time, page, time};
use crate::queries::workflow::{recent_jobs, workflow};
use crate::state::AppState;

/// Paging of the job list.
#[derive(Debug, Default, Deserialize)]
pub struct JobsQuery {
    /// Show jobs before this seq.
    pub before: Option<i64>,
}

/// Lists the newest jobs.
pub async fn transactions(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(query): Query<JobsQuery>,
) -> Result<Markup, AppError> {
    let jobs = recent_jobs(&state.log, query.before).await?;
    let body = html! {
        p { "Amounts are encrypted: only the size of their ciphertexts is known here." }
        table id="transactions" {
            tr { th { "Job" } th { "Kind" } th { "Account" } th { "Counterparty" } th { "State" }
                 th { "Submitted (UTC)" } th { "Input ciphertext" } th { "Result ciphertexts" } }
            @for job in &jobs {
                tr {
                    td { a href={"/transactions/" (job.id)} { (job.id) } }
                    td { (job.kind) } td { (job.tenant) "/" (job.account) } td { (job.counterparty) }
                    td { (job.state) } td { (time(job.created_at)) }
                    td { (job.input_bytes) " B" } td { (job.result_bytes) " B" }
                }
            }
        }
        @if let Some(last) = jobs.last().filter(|_| jobs.len() == 50) {
            p { a href={"/transactions?before=" (last.seq)} { "Older jobs →" } }
        }
    };
    Ok(page(
        "Transactions",
        "/transactions",
        Some(&officer.subject),
        body,
    ))
}

/// Shows one job's workflow.
pub async fn transaction(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Path(id): Path<String>,
) -> Result<Markup, AppError> {
    let (job, steps) = workflow(&state.log, &id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("job {id}")))?;
    let body = html! {
        p { "Job " code { (job.id) } ": " (job.kind) " on " (job.tenant) "/" (job.account)
            @if !job.counterparty.is_empty() { " → " (job.counterparty) } ", now " strong { (job.state) } }
        div id="workflow" {
            @for step in &steps {
                div.step.missing[step.at.is_none()] data-step=(step.name) {
                    strong { (step.name) } " · " (maybe_time(step.at)) br; (step.detail)
                }
            }
        }
    };
    Ok(page(
        "Transaction workflow",
        "/transactions",
        Some(&officer.subject),
        body,
    ))
}
