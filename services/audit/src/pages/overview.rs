//! `GET /`: jobs per minute, denials, tiers, bundle revisions, the chain's state.

use axum::extract::State;
use maud::{html, Markup};

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::layout::{page, time};
use crate::queries::overview::overview;
use crate::state::AppState;

/// Renders the overview.
pub async fn overview_page(
    State(state): State<AppState>,
    Officer(officer): Officer,
) -> Result<Markup, AppError> {
    let view = overview(&state.log, blindledger_audit::now_ms()).await?;
    let peak = view
        .jobs_per_minute
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let body = html! {
        div.cards {
            div.card id="jobs-per-minute" {
                "Jobs per minute (last 15 min)"
                b { (view.jobs_per_minute.last().copied().unwrap_or(0)) }
                div style="height:3rem" {
                    @for count in &view.jobs_per_minute {
                        span.bar title=(count) style={"height:" (count * 48 / peak) "px"} {}
                    }
                }
            }
            div.card id="denials" {
                "Denials (last hour)" b { (view.denials_last_hour) }
                "of " (view.decisions_last_hour) " decisions"
            }
            div.card id="chain" {
                "Audit trail" b { (view.chain_size) " rows" }
                @match &view.checkpoint {
                    Some(c) => { "checkpoint at " (c.size) " · " (time(c.created_at)) " · key " (c.key_id) }
                    None => { "no checkpoint yet" }
                }
            }
        }
        h2 { "Active bundle revisions" }
        table id="bundles" {
            tr { th { "Bundle" } th { "Revision" } th { "Activated" } }
            @for (name, (revision, at)) in &view.bundles {
                tr { td { (name) } td { (revision) } td { (time(*at)) } }
            }
            @if let Some(revision) = &view.deciding_revision {
                tr { td { "blindledger (newest decision)" } td { (revision) } td { "—" } }
            }
        }
        h2 { "Risk tiers" }
        table id="tiers" {
            tr { th { "Tier" } th { "Entities" } }
            @for (tier, count) in &view.tiers { tr { td { (tier) } td { (count) } } }
        }
    };
    Ok(page("Overview", "/", Some(&officer.subject), body))
}
