//! `GET /bundles`: the active revision of each bundle, the policy pushes with their tests
//! and impact analysis, and the activation history.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::layout::{page, time};
use crate::queries::bundles::{bundles, Activation, Impact, PushReport, TestSummary};
use crate::state::AppState;

/// Entries shown of an impact breakdown (by method, by principal); the rest are counted.
const BREAKDOWN_ENTRIES: usize = 5;

/// Paging of the two lists, each by the seq of its last row shown.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct BundlesQuery {
    /// List activations before this seq.
    pub activations_before: Option<i64>,
    /// List push reports before this seq.
    pub pushes_before: Option<i64>,
}

/// Renders the bundle revisions and push reports.
pub async fn bundles_page(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(query): Query<BundlesQuery>,
) -> Result<Markup, AppError> {
    let view = bundles(&state.log, query.activations_before, query.pushes_before).await?;
    let body = html! {
        h2 { "Active revisions" }
        table id="active-bundles" {
            tr { th { "Bundle" } th { "Revision" } th { "Action" } th { "By" } th { "Since (UTC)" } }
            @for a in &view.active {
                tr data-bundle=(a.name) { td { (a.name) } td { code { (a.revision) } } td { (a.action) }
                    td { (a.actor) } td { (time(a.activated_at)) } }
            }
        }
        @if view.active.is_empty() { p { "The controller has activated no bundle yet." } }
        h2 { "Policy pushes" }
        p { "Each push is tested and replayed against recent logged decisions before activation." }
        table id="pushes" {
            tr { th rowspan="2" { "Pushed (UTC)" } th rowspan="2" { "Revision" } th rowspan="2" { "By" }
                 th rowspan="2" { "Outcome" } th rowspan="2" { "Tests" } th colspan="7" { "Impact of the replay" } }
            tr { th { "Replayed" } th { "Changed" } th { "Allow → deny" } th { "Deny → allow" }
                 th { "Obligations" } th { "By method" } th { "By principal" } }
            @for push in &view.pushes { (push_row(push)) }
        }
        @if view.pushes.is_empty() { p { "No policy has been pushed yet." } }
        @if let Some(before) = view.pushes_next {
            p { a id="older-pushes" href={"/bundles?pushes_before=" (before)} { "Older pushes →" } }
        }
        h2 { "Activation history" }
        table id="activations" {
            tr { th { "Activated (UTC)" } th { "Bundle" } th { "Revision" } th { "Action" } th { "By" } }
            @for a in &view.activations { (activation_row(a)) }
        }
        @if let Some(before) = view.activations_next {
            p { a id="older-activations" href={"/bundles?activations_before=" (before)} { "Older activations →" } }
        }
    };
    Ok(page("Bundles", "/bundles", Some(&officer.subject), body))
}

fn activation_row(a: &Activation) -> Markup {
    html! {
        tr { td { (time(a.activated_at)) } td { (a.name) } td { code { (a.revision) } }
             td { (a.action) } td { (a.actor) } }
    }
}

fn push_row(push: &PushReport) -> Markup {
    let outcome = if push.outcome == "refused" {
        "deny"
    } else {
        "allow"
    };
    html! {
        tr id={"push-" (push.seq)} {
            td { (time(push.pushed_at)) } td { code { (push.revision) } } td { (push.pushed_by) }
            td class=(outcome) { (push.outcome) @if !push.reason.is_empty() { br; small { (push.reason) } } }
            td { (tests(push.tests.as_ref())) }
            @match &push.impact {
                Some(impact) => { (impact_cells(impact)) }
                None => { td colspan="7" { "not analysed" } }
            }
        }
    }
}

fn tests(tests: Option<&TestSummary>) -> Markup {
    html! {
        @match tests {
            Some(t) => {
                (t.passed) " passed, " (t.failed.len()) " failed" br;
                small { (format!("{:.1}", t.coverage_percent)) "% coverage" }
                @if !t.failed.is_empty() { br; small.deny { (t.failed.join(", ")) } }
            }
            None => { "not run" }
        }
    }
}

fn impact_cells(impact: &Impact) -> Markup {
    html! {
        td data-impact="replayed" { (impact.replayed) }
        td data-impact="changed" { (impact.changed) }
        td data-impact="allow_to_deny" { (impact.allow_to_deny) }
        td data-impact="deny_to_allow" { (impact.deny_to_allow) }
        td data-impact="obligations_changed" { (impact.obligations_changed) }
        td { (breakdown(&impact.by_method, |m| m.rsplit('/').next().unwrap_or(m))) }
        td { (breakdown(&impact.by_principal, |p| p)) }
    }
}

/// The largest entries of `counts`, with how many others there are.
fn breakdown(counts: &BTreeMap<String, u64>, label: impl Fn(&str) -> &str) -> Markup {
    let mut entries: Vec<(&String, &u64)> = counts.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let more = entries.len().saturating_sub(BREAKDOWN_ENTRIES);
    html! {
        @if entries.is_empty() {
            "—"
        } @else {
            ul.counts {
                @for (key, count) in entries.iter().take(BREAKDOWN_ENTRIES) {
                    li title=(key) { (label(key)) ": " (count) }
                }
                @if more > 0 { li.muted { "and " (more) " more" } }
            }
        }
    }
}
