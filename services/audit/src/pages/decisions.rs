//! `GET /decisions`: the decision log with filters, keyset paging and live updates.

use axum::extract::{Query, State};
use maud::{html, Markup, PreEscaped};

use crate::auth::Officer;
use crate::error::AppError;
use crate::pages::layout::{page, time};
use crate::queries::decisions::{page as decisions_page, DecisionFilter, DecisionRow};
use crate::queries::{input_time, parse_time};
use crate::state::AppState;

/// Methods offered in the filter's suggestions.
const METHODS: [&str; 6] = [
    "Transfer",
    "Deposit",
    "Withdraw",
    "Aggregate",
    "CreateAccount",
    "RegisterTenantKeys",
];

/// On the first page, decisions pushed over SSE are added on top when they pass the
/// filters shown.
const LIVE_SCRIPT: &str = r#"
(function () {
  const table = document.getElementById('decisions');
  const f = JSON.parse(table.dataset.filter);
  const source = new EventSource('/events');
  source.addEventListener('decision', function (e) {
    const d = JSON.parse(e.data);
    if ((f.principal && d.principal !== f.principal) || (f.method && d.method !== f.method) ||
        (f.result && d.outcome !== f.result) || (f.revision && d.revision !== f.revision)) return;
    const row = table.insertRow(1);
    row.id = 'seq-' + d.seq; row.className = 'new';
    const cells = [d.seq, new Date(d.occurred_at).toISOString(), d.principal, d.subject, d.method, d.outcome, d.revision, ''];
    cells.forEach(function (text, i) { const c = row.insertCell(); c.textContent = text; if (i === 5) c.className = text; });
  });
  document.body.dataset.live = 'connected';
})();
"#;

/// Renders a page of the decision log.
pub async fn decisions(
    State(state): State<AppState>,
    Officer(officer): Officer,
    Query(filter): Query<DecisionFilter>,
) -> Result<Markup, AppError> {
    for (name, value) in [("from", &filter.from), ("to", &filter.to)] {
        if !value.trim().is_empty() && parse_time(value).is_none() {
            return Err(AppError::BadRequest(format!(
                "{name}: expected YYYY-MM-DDTHH:MM (UTC)"
            )));
        }
    }
    let (rows, next) = decisions_page(&state.log, &filter).await?;
    let live = filter.before.is_empty() && filter.to.is_empty();
    let shown = serde_json::json!({
        "principal": filter.principal.trim(), "method": filter.full_method().unwrap_or_default(),
        "result": filter.result.trim(), "revision": filter.revision.trim(),
    });
    let body = html! {
        (filters(&filter))
        table id="decisions" data-filter=(shown.to_string()) {
            tr { th { "Seq" } th { "Time (UTC)" } th { "Principal" } th { "Subject" } th { "Method" }
                 th { "Result" } th { "Revision" } th { "Reasons" } }
            @for row in &rows { (decision_row(row)) }
        }
        @if rows.is_empty() { p id="no-decisions" { "No decision matches these filters." } }
        @if let Some(next) = next {
            p { a id="next-page" href={"/decisions?" (filter.with_before(&next))} { "Older decisions →" } }
        }
        @if live { script { (PreEscaped(LIVE_SCRIPT)) } }
    };
    Ok(page(
        "Decisions",
        "/decisions",
        Some(&officer.subject),
        body,
    ))
}

fn filters(filter: &DecisionFilter) -> Markup {
    let time_value = |value: &str| parse_time(value).map(input_time).unwrap_or_default();
    html! {
        form.filters method="get" action="/decisions" id="filters" {
            label { "Principal" input name="principal" id="f-principal" value=(filter.principal); }
            label { "Method" input name="method" id="f-method" list="methods" value=(filter.method); }
            datalist id="methods" { @for m in METHODS { option value=(m) {} } }
            label { "Result" select name="result" id="f-result" {
                option value="" { "any" }
                option value="allow" selected[filter.result == "allow"] { "allow" }
                option value="deny" selected[filter.result == "deny"] { "deny" }
            } }
            label { "Revision" input name="revision" id="f-revision" value=(filter.revision); }
            label { "From (UTC)" input type="datetime-local" name="from" id="f-from" value=(time_value(&filter.from)); }
            label { "To (UTC)" input type="datetime-local" name="to" id="f-to" value=(time_value(&filter.to)); }
            button type="submit" id="apply-filters" { "Apply" }
            a href="/decisions" { "Clear" }
        }
    }
}

fn decision_row(row: &DecisionRow) -> Markup {
    let summary: serde_json::Value = serde_json::from_str(&row.summary).unwrap_or_default();
    let reasons = summary["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    html! {
        tr id={"seq-" (row.seq)} {
            td { (row.seq) } td { (time(row.occurred_at)) } td { (row.principal) } td { (row.subject) }
            td { (row.method) } td class=(row.outcome) { (row.outcome) } td { (row.revision) } td { (reasons) }
        }
    }
}
