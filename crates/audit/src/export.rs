//! CSV export of audit events over a time range, page by page.
//!
//! Columns: `seq,occurred_at,kind,principal,subject,summary,prev_hash,hash`. `occurred_at`
//! is RFC 3339 (UTC, milliseconds); `summary` is the stored JSON. Text cells that a
//! spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) are prefixed with
//! `'`. Summaries are metadata only, so the export holds no amount or balance.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use crate::db::stored_event;
use crate::db::AuditLog;
use crate::error::Result;
use crate::event::{EventKind, StoredEvent};

/// The CSV header line (without the line break).
pub const CSV_HEADER: &str = "seq,occurred_at,kind,principal,subject,summary,prev_hash,hash";

/// Rows read per query while exporting.
const EXPORT_PAGE: i64 = 5_000;

/// Which events an export holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportRange {
    /// First time included (Unix ms).
    pub from: Option<i64>,
    /// First time excluded (Unix ms).
    pub to: Option<i64>,
    /// Only this kind.
    pub kind: Option<EventKind>,
}

impl AuditLog {
    /// Events in `range` with `seq > after`, in seq order, at most `limit`.
    pub async fn events_in(
        &self,
        range: &ExportRange,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>> {
        let mut sql = String::from(
            "SELECT seq, kind, occurred_at, principal, subject, summary, prev_hash, hash \
             FROM audit_events WHERE seq > ? AND occurred_at >= ? AND occurred_at < ?",
        );
        if range.kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        sql.push_str(" ORDER BY seq LIMIT ?");
        let mut query = sqlx::query(&sql)
            .bind(after)
            .bind(range.from.unwrap_or(i64::MIN))
            .bind(range.to.unwrap_or(i64::MAX));
        if let Some(kind) = range.kind {
            query = query.bind(kind.as_str());
        }
        let rows = query.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(stored_event).collect()
    }
}

/// Writes the events of `range` as CSV to `out`; returns the number of rows written.
pub async fn export_csv(log: &AuditLog, range: &ExportRange, out: &mut impl Write) -> Result<u64> {
    writeln!(out, "{CSV_HEADER}")?;
    let (mut after, mut written) = (0, 0u64);
    loop {
        let page = log.events_in(range, after, EXPORT_PAGE).await?;
        for event in &page {
            out.write_all(csv_line(event).as_bytes())?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as i64 == EXPORT_PAGE => after = last.seq,
            _ => break,
        }
    }
    out.flush()?;
    Ok(written)
}

/// One CSV line (with its line break) for an event.
pub fn csv_line(event: &StoredEvent) -> String {
    let cells = [
        event.seq.to_string(),
        rfc3339_ms(event.occurred_at),
        cell(&event.kind),
        cell(&event.principal),
        cell(&event.subject),
        cell(&event.summary),
        cell(&event.prev_hash),
        cell(&event.hash),
    ];
    let mut line = cells.join(",");
    line.push_str("\r\n");
    line
}

/// Quotes a text cell when needed and defuses spreadsheet formulas.
fn cell(value: &str) -> String {
    let value = match value.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let Ok(ms) = u64::try_from(ms) else {
        return ms.to_string();
    };
    let time = UNIX_EPOCH + Duration::from_millis(ms);
    humantime_ms(time)
}

fn humantime_ms(time: std::time::SystemTime) -> String {
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one format.
    let ms = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(r#"{"a":1,"b":"x"}"#), r#""{""a"":1,""b"":""x""}""#);
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
