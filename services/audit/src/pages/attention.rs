//! `GET /attention`: who and what needs a look, and why.

use axum::extract::State;
use maud::{html, Markup};

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::layout::{page, time};
use crate::queries::attention::attention;
use crate::state::AppState;

/// Renders the attention list.
pub async fn attention_page(
    State(state): State<AppState>,
    Officer(officer): Officer,
) -> Result<Markup, AppError> {
    let list = attention(&state.log, blindledger_audit::now_ms()).await?;
    let body = html! {
        table id="attention" {
            tr { th { "Kind" } th { "Who / what" } th { "Reason" } th { "Since (UTC)" } }
            @for entry in &list {
                tr { td { (entry.kind) } td { (entry.entity) } td { (entry.reason) } td { (time(entry.since)) } }
            }
        }
        @if list.is_empty() { p { "Nothing needs attention." } }
    };
    Ok(page(
        "Attention",
        "/attention",
        Some(&officer.subject),
        body,
    ))
}
