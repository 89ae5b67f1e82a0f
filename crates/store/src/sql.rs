//! Small helpers for queries written once for both engines through sqlx's `Any` driver.

use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads a text column. MariaDB reports `TEXT` columns as blobs to the `Any` driver, so
/// they are read as bytes there and checked to be UTF-8.
pub fn text(row: &AnyRow, index: usize) -> Result<String, sqlx::Error> {
    if let Ok(text) = row.try_get::<String, _>(index) {
        return Ok(text);
    }
    let bytes: Vec<u8> = row.try_get(index)?;
    String::from_utf8(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A nullable text column, read as [`text`] does.
pub fn optional_text(row: &AnyRow, index: usize) -> Result<Option<String>, sqlx::Error> {
    if let Ok(text) = row.try_get::<Option<String>, _>(index) {
        return Ok(text);
    }
    let bytes: Option<Vec<u8>> = row.try_get(index)?;
    bytes
        .map(|b| String::from_utf8(b).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// `(?, ?, …)` repeated `rows` times, for a multi-row statement of `columns` columns.
pub fn placeholders(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_repeat_one_group_per_row() {
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(1, 1), "(?)");
    }
}
