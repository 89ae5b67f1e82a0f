//! The decision log: filters and keyset paging in time order.
//!
//! Every filter column has an index ending in `occurred_at` (and, implicitly, the primary
//! key `seq`), so a filtered page is a backward range scan of one index that stops after
//! one page: it costs the same on the first page and the ten-thousandth.

use blindledger_audit::{AuditLog, Engine};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{parse_time, text};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// The service prefix of the ledger's methods, added to short method names.
const LEDGER_SERVICE: &str = "/blindledger.ledger.v1.LedgerService/";

/// The filters of the decision log, as sent by its form (empty means absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct DecisionFilter {
    /// Exact principal.
    pub principal: String,
    /// Full gRPC method, or a ledger method's short name (`Transfer`).
    pub method: String,
    /// `allow` or `deny`.
    pub result: String,
    /// Policy bundle revision.
    pub revision: String,
    /// First time included (`YYYY-MM-DDTHH:MM` UTC, or Unix ms).
    pub from: String,
    /// First time excluded.
    pub to: String,
    /// Keyset cursor: `occurred_at:seq` of the last row of the previous page.
    pub before: String,
}

impl DecisionFilter {
    /// The method as stored.
    pub fn full_method(&self) -> Option<String> {
        let method = self.method.trim();
        match method {
            "" => None,
            m if m.starts_with('/') => Some(m.to_owned()),
            m => Some(format!("{LEDGER_SERVICE}{m}")),
        }
    }

    fn cursor(&self) -> Option<(i64, i64)> {
        let (at, seq) = self.before.split_once(':')?;
        Some((at.parse().ok()?, seq.parse().ok()?))
    }

    /// The query string of this filter with another cursor (for the next-page link).
    pub fn with_before(&self, before: &str) -> String {
        let mut next = self.clone();
        next.before = before.to_owned();
        query_string(&next)
    }
}

fn query_string(filter: &DecisionFilter) -> String {
    let pairs = [
        ("principal", &filter.principal),
        ("method", &filter.method),
        ("result", &filter.result),
        ("revision", &filter.revision),
        ("from", &filter.from),
        ("to", &filter.to),
        ("before", &filter.before),
    ];
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One decision as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionRow {
    /// Audit seq.
    pub seq: i64,
    /// When (Unix ms).
    pub occurred_at: i64,
    /// Who called.
    pub principal: String,
    /// `tenant/account`.
    pub subject: String,
    /// gRPC method.
    pub method: String,
    /// `allow` or `deny`.
    pub outcome: String,
    /// Policy revision.
    pub revision: String,
    /// The summary JSON (reasons, decision id, revisions).
    pub summary: String,
}

/// The index MariaDB is told to use: its optimizer reads an index prefix (`ref`) and
/// filters the time bound row by row when it orders backwards with a limit (seconds on a
/// deep page), where a range scan of the right index takes milliseconds. SQLite picks
/// well from its statistics and gets no hint.
fn mysql_index(filter: &DecisionFilter) -> &'static str {
    let given = |value: &str| !value.trim().is_empty();
    // Most selective first: a principal, then a revision (a block of time), then the
    // method and outcome (indexed together), each alone.
    if given(&filter.principal) {
        "audit_events_principal"
    } else if given(&filter.revision) {
        "audit_events_revision"
    } else if given(&filter.method) && given(&filter.result) {
        "audit_events_outcome_method"
    } else if given(&filter.method) {
        "audit_events_method"
    } else if given(&filter.result) {
        "audit_events_outcome"
    } else {
        "audit_events_time"
    }
}

/// The page's SQL and its text and number parameters, bound in that order.
fn select(filter: &DecisionFilter, engine: Engine) -> (String, Vec<String>, Vec<i64>) {
    let hint = match engine {
        Engine::MySql => format!(" USE INDEX ({})", mysql_index(filter)),
        Engine::Sqlite => String::new(),
    };
    let mut sql = format!(
        "SELECT seq, occurred_at, principal, subject, method, outcome, revision, summary \
         FROM audit_events{hint} WHERE kind = 'decision'"
    );
    let mut texts: Vec<String> = Vec::new();
    let mut numbers: Vec<i64> = Vec::new();
    let method = filter.full_method();
    for (column, value) in [
        ("principal", Some(filter.principal.trim().to_owned())),
        ("method", method),
        ("outcome", Some(filter.result.trim().to_owned())),
        ("revision", Some(filter.revision.trim().to_owned())),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            sql.push_str(&format!(" AND {column} = ?"));
            texts.push(value);
        }
    }
    if let Some(from) = parse_time(&filter.from) {
        sql.push_str(" AND occurred_at >= ?");
        numbers.push(from);
    }
    if let Some(to) = parse_time(&filter.to) {
        sql.push_str(" AND occurred_at < ?");
        numbers.push(to);
    }
    if let Some((at, seq)) = filter.cursor() {
        sql.push_str(" AND occurred_at <= ? AND (occurred_at < ? OR seq < ?)");
        numbers.extend([at, at, seq]);
    }
    sql.push_str(" ORDER BY occurred_at DESC, seq DESC LIMIT ?");
    (sql, texts, numbers)
}

/// A page of decisions, newest first, and the cursor of the next page.
pub async fn page(
    log: &AuditLog,
    filter: &DecisionFilter,
) -> Result<(Vec<DecisionRow>, Option<String>), sqlx::Error> {
    let (sql, texts, numbers) = select(filter, log.engine());
    let mut query = sqlx::query(&sql);
    for value in &texts {
        query = query.bind(value.as_str());
    }
    for value in &numbers {
        query = query.bind(*value);
    }
    let rows = query.bind(PAGE_SIZE + 1).fetch_all(log.pool()).await?;
    let mut decisions = rows
        .iter()
        .map(|row| {
            Ok(DecisionRow {
                seq: row.try_get(0)?,
                occurred_at: row.try_get(1)?,
                principal: text(row, 2),
                subject: text(row, 3),
                method: text(row, 4),
                outcome: text(row, 5),
                revision: text(row, 6),
                summary: text(row, 7),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let next = (decisions.len() as i64 > PAGE_SIZE).then(|| {
        decisions.truncate(PAGE_SIZE as usize);
        let last = &decisions[decisions.len() - 1];
        format!("{}:{}", last.occurred_at, last.seq)
    });
    Ok((decisions, next))
}
