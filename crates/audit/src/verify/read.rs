//! Reading the chain for verification, hashing each row from borrowed column bytes.
//!
//! sqlx's `Any` driver copies every column into its own value type before it can be read,
//! and its SQLite driver copies every value out of SQLite: verification reads every row of
//! the chain, so it reads MariaDB through sqlx's native MySQL driver and SQLite through
//! rusqlite, which lends values in place.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::OpenFlags;
use sqlx::mysql::MySqlRow;
use sqlx::Row;

use super::checker::CheckedRow;
use super::PAGE_ROWS;
use crate::chain::RawFields;
use crate::db::ChainReader;
use crate::error::{AuditError, Result};

/// The chain's columns, in the order [`checked_row`] reads them.
const PAGE: &str = "SELECT seq, kind, occurred_at, principal, subject, summary, prev_hash, hash \
                    FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?";

impl ChainReader {
    /// Rows with `after < seq <= until`, in seq order, at most [`PAGE_ROWS`], checked.
    pub(crate) async fn page(&self, after: i64, until: i64) -> Result<Vec<CheckedRow>> {
        match self {
            ChainReader::MySql { pools, db } => sqlx::query(PAGE)
                .bind(after)
                .bind(until)
                .bind(PAGE_ROWS)
                .fetch_all(&pools[db.current_index() % pools.len()])
                .await?
                .iter()
                .map(mysql_row)
                .collect(),
            ChainReader::Sqlite(None) => Err(AuditError::Read(
                "an in-memory SQLite database cannot be verified from another connection".into(),
            )),
            ChainReader::Sqlite(Some(path)) => {
                let path = Arc::clone(path);
                tokio::task::spawn_blocking(move || sqlite_page(&path, after, until))
                    .await
                    .map_err(|_| AuditError::Corrupt("verification task failed".into()))?
            }
        }
    }
}

/// Checks a row of [`PAGE`] from its columns' bytes, undecoded: the hash covers the bytes
/// as stored, so a text column that is not UTF-8 is simply reported as edited.
fn mysql_row(row: &MySqlRow) -> Result<CheckedRow> {
    let bytes = |index: usize| row.try_get_unchecked::<&[u8], _>(index);
    let fields = RawFields {
        seq: row.try_get(0)?,
        kind: bytes(1)?,
        occurred_at: row.try_get(2)?,
        principal: bytes(3)?,
        subject: bytes(4)?,
        summary: bytes(5)?,
    };
    Ok(CheckedRow::new(&fields, bytes(6)?, bytes(7)?))
}

/// One page from the SQLite file at `path`, read on the calling (blocking) thread.
fn sqlite_page(path: &Path, after: i64, until: i64) -> Result<Vec<CheckedRow>> {
    let failed = |err: rusqlite::Error| AuditError::Read(err.to_string());
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(failed)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
    let mut statement = conn.prepare(PAGE).map_err(failed)?;
    let mut rows = statement
        .query(rusqlite::params![after, until, PAGE_ROWS])
        .map_err(failed)?;
    let mut checked = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        let bytes = |index: usize| -> Result<&[u8]> {
            match row.get_ref(index).map_err(failed)? {
                ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Ok(bytes),
                _ => Err(AuditError::Corrupt(format!("column {index} is not text"))),
            }
        };
        let fields = RawFields {
            seq: row.get(0).map_err(failed)?,
            kind: bytes(1)?,
            occurred_at: row.get(2).map_err(failed)?,
            principal: bytes(3)?,
            subject: bytes(4)?,
            summary: bytes(5)?,
        };
        checked.push(CheckedRow::new(&fields, bytes(6)?, bytes(7)?));
    }
    Ok(checked)
}
