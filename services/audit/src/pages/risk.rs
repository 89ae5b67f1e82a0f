//! `GET /risk`: accounts and principals above tier `low`, newest escalations first, each
//! with a chart of its recent scores, and the latest tier changes.

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::chart::score_chart;
use crate::pages::layout::{page, time};
use crate::queries::decisions::percent_encode;
use crate::queries::risk::{risk, ElevatedEntity, RiskCursor, TierChange};
use crate::state::AppState;

/// Paging of the elevated entities.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RiskQuery {
    /// Keyset cursor from the next-page link (`tier_since:kind:entity`).
    pub after: String,
}

/// Renders the risk tiers.
pub async fn risk_page(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(query): Query<RiskQuery>,
) -> Result<Markup, AppError> {
    let after = match query.after.as_str() {
        "" => None,
        text => Some(
            RiskCursor::parse(text)
                .ok_or_else(|| AppError::BadRequest("after: malformed cursor".into()))?,
        ),
    };
    let view = risk(&state.log, after.as_ref()).await?;
    let body = html! {
        p { "Tiers and scores come from the risk controller (isolation forest over call metadata, \
             never amounts). Scores run from 0 to 1; charts show the latest recorded scores." }
        h2 { "Above tier low" }
        table id="elevated" {
            tr { th { "Kind" } th { "Who" } th { "Tier" } th { "Score" } th { "Score history" }
                 th { "Top features (z)" } th { "Model" } th { "In tier since (UTC)" } th { "Scored (UTC)" } }
            @for entity in &view.entities { (elevated_row(entity)) }
        }
        @if view.entities.is_empty() { p id="no-elevated" { "No account or principal is above tier low." } }
        @if let Some(next) = &view.next {
            p { a id="next-page" href={"/risk?after=" (percent_encode(next))} { "Older escalations →" } }
        }
        h2 { "Recent tier changes" }
        table id="tier-changes" {
            tr { th { "Changed (UTC)" } th { "Kind" } th { "Who" } th { "From" } th { "To" } th { "Score" } th { "Model" } }
            @for change in &view.changes { (change_row(change)) }
        }
        @if view.changes.is_empty() { p { "No tier has changed yet." } }
    };
    Ok(page("Risk tiers", "/risk", Some(&officer.subject), body))
}

fn elevated_row(entity: &ElevatedEntity) -> Markup {
    html! {
        tr data-entity=(entity.entity) {
            td { (entity.kind) } td { (entity.entity) }
            td class={"tier " (entity.tier)} { (entity.tier) }
            td { (format!("{:.3}", entity.score)) }
            td { (score_chart(&entity.history, &entity.tier)) }
            td {
                @for (i, (name, z)) in entity.top_features.iter().enumerate() {
                    @if i > 0 { ", " }
                    (name) " (" (format!("{z:.1}")) ")"
                }
            }
            td { (entity.model_version) } td { (time(entity.tier_since)) } td { (time(entity.updated_at)) }
        }
    }
}

fn change_row(change: &TierChange) -> Markup {
    html! {
        tr {
            td { (time(change.changed_at)) } td { (change.kind) } td { (change.entity) }
            td class={"tier " (change.from)} { (change.from) }
            td class={"tier " (change.to)} { (change.to) }
            td { (format!("{:.3}", change.score)) } td { (change.model_version) }
        }
    }
}
