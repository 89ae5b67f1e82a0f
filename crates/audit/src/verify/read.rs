//! Reading the chain for verification through the database's native driver.
//!
//! sqlx's `Any` driver copies every column into its own value type before it can be read;
//! verification reads every row of the chain, so it uses the native drivers and hashes each
//! row from borrowed column bytes instead.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ColumnIndex, Database, Decode, Row, Type};

use super::checker::CheckedRow;
use super::{PAGE_ROWS, PARALLEL_PAGES};
use crate::chain::RawFields;
use crate::db::Engine;
use crate::error::Result;

/// The chain's columns, in the order [`checked_row`] reads them.
const PAGE: &str = "SELECT seq, kind, occurred_at, principal, subject, summary, prev_hash, hash \
                    FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?";

/// A pool of native connections, opened on first use.
#[derive(Debug, Clone)]
pub(crate) enum ChainReader {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

impl ChainReader {
    /// A reader of the database at `url`; connects only when verification first reads.
    pub(crate) fn connect_lazy(url: &str, engine: Engine) -> Result<Self> {
        let connections = PARALLEL_PAGES as u32;
        Ok(match engine {
            Engine::MySql => ChainReader::MySql(
                MySqlPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy(url)?,
            ),
            Engine::Sqlite => {
                let options =
                    SqliteConnectOptions::from_str(url)?.busy_timeout(Duration::from_secs(10));
                ChainReader::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(connections)
                        .acquire_timeout(Duration::from_secs(10))
                        .connect_lazy_with(options),
                )
            }
        })
    }

    /// Rows with `after < seq <= until`, in seq order, at most [`PAGE_ROWS`], checked.
    pub(crate) async fn page(&self, after: i64, until: i64) -> Result<Vec<CheckedRow>> {
        // One statement for either driver, whose query and row types differ: a macro
        // rather than a generic function, whose bounds would outweigh its body.
        macro_rules! checked_page {
            ($pool:expr) => {
                sqlx::query(PAGE)
                    .bind(after)
                    .bind(until)
                    .bind(PAGE_ROWS)
                    .fetch_all($pool)
                    .await?
                    .iter()
                    .map(checked_row)
                    .collect()
            };
        }
        match self {
            ChainReader::MySql(pool) => checked_page!(pool),
            ChainReader::Sqlite(pool) => checked_page!(pool),
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        match self {
            ChainReader::MySql(pool) => pool.close().await,
            ChainReader::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Checks a row of [`PAGE`] from its columns' bytes, undecoded: the hash covers the bytes
/// as stored, so a text column that is not UTF-8 is simply reported as edited.
fn checked_row<'r, R>(row: &'r R) -> Result<CheckedRow>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    &'r [u8]: Decode<'r, R::Database>,
    R::Database: Database,
{
    let bytes = |index: usize| row.try_get_unchecked::<&'r [u8], _>(index);
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
