//! Read queries behind the dashboard, written once in the SQL MariaDB and SQLite share.

pub mod attention;
pub mod bundles;
pub mod decisions;
pub mod overview;
pub mod risk;
pub mod workflow;

use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads a nullable text column as a string (empty when NULL); MariaDB may report text
/// as bytes to the `Any` driver.
pub fn text(row: &AnyRow, index: usize) -> String {
    if let Ok(value) = row.try_get::<Option<String>, _>(index) {
        return value.unwrap_or_default();
    }
    row.try_get::<Option<Vec<u8>>, _>(index)
        .ok()
        .flatten()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Parses a time given as Unix milliseconds or as `YYYY-MM-DDTHH:MM[:SS]` (UTC, what an
/// HTML `datetime-local` input sends).
pub fn parse_time(value: &str) -> Option<i64> {
    let value = value.trim().trim_end_matches('Z');
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = value.split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.splitn(3, ':').map(|p| p.parse::<f64>().ok());
    let (hour, minute) = (time.next()??, time.next()??);
    let second = time.next().flatten().unwrap_or(0.0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let ms = ((days * 24 + hour as i64) * 60 + minute as i64) * 60_000 + (second * 1000.0) as i64;
    Some(ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix milliseconds for an HTML `datetime-local` input (UTC, minutes).
pub fn input_time(ms: i64) -> String {
    let text = blindledger_audit::rfc3339_ms(ms);
    text.get(..16).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_from_inputs_and_milliseconds() {
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_time("2023-11-14T22:13"), Some(1_699_999_980_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("2000-02-29T00:00"), Some(951_782_400_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(input_time(1_700_000_000_000), "2023-11-14T22:13");
    }
}
