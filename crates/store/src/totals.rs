//! Running totals of accounts' transfers through day boundaries (see the migration
//! `0011_account_totals`): what lets an aggregate read two totals per figure instead of
//! every transfer of its period.

use sqlx::Row;

use crate::{now_ms, Db, StoreError};

/// An encrypted running total of one series of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalRow {
    /// The total covers the transfers committed before this time (a UTC midnight).
    pub through_ms: i64,
    /// Compressed encrypted total.
    pub total: Vec<u8>,
    /// Number of transfers it covers (plaintext, as the jobs table already says).
    pub transfers: i64,
}

impl Db {
    /// The latest total of `series` through `at_ms` or earlier.
    pub async fn total_at_or_before(
        &self,
        tenant: &str,
        account: &str,
        series: &str,
        at_ms: i64,
    ) -> Result<Option<TotalRow>, StoreError> {
        let row = sqlx::query(
            "SELECT through_ms, total, transfers FROM account_totals WHERE tenant = ? \
             AND account = ? AND series = ? AND through_ms <= ? ORDER BY through_ms DESC LIMIT 1",
        )
        .bind(tenant)
        .bind(account)
        .bind(series)
        .bind(at_ms)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(TotalRow {
                through_ms: row.try_get(0)?,
                total: row.try_get(1)?,
                transfers: row.try_get(2)?,
            })
        })
        .transpose()
    }

    /// Stores a total. Totals are derived and never change: one another instance stored
    /// first for the same boundary is the same total, and is kept.
    pub async fn insert_total(
        &self,
        tenant: &str,
        account: &str,
        series: &str,
        total: &TotalRow,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO account_totals (tenant, account, series, through_ms, total, transfers, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant)
        .bind(account)
        .bind(series)
        .bind(total.through_ms)
        .bind(total.total.as_slice())
        .bind(total.transfers)
        .bind(now_ms())
        .execute(self.pool())
        .await;
        match inserted.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Duplicate(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The series an account has totals of.
    pub async fn total_series(
        &self,
        tenant: &str,
        account: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT series FROM account_totals WHERE tenant = ? AND account = ? \
             ORDER BY series",
        )
        .bind(tenant)
        .bind(account)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// Up to `limit` accounts with transfers committed in `[since_ms, before_ms)` that no
    /// total of theirs covers yet, as `(tenant, account)`: those the background fold
    /// brings up to `before_ms`.
    pub async fn accounts_to_fold(
        &self,
        since_ms: i64,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT tenant, account FROM ( \
               SELECT j.tenant AS tenant, j.account_a AS account, j.committed_at AS at, 'out' AS series \
                 FROM jobs j WHERE j.kind = 'transfer' AND j.state = 'COMMITTED' \
                 AND j.committed_at >= ? AND j.committed_at < ? \
               UNION ALL \
               SELECT j.tenant, j.account_b, j.committed_at, 'in' \
                 FROM jobs j WHERE j.kind = 'transfer' AND j.state = 'COMMITTED' \
                 AND j.committed_at >= ? AND j.committed_at < ? \
             ) m WHERE NOT EXISTS (SELECT 1 FROM account_totals t WHERE t.tenant = m.tenant \
               AND t.account = m.account AND t.series = m.series AND t.through_ms > m.at) \
             ORDER BY tenant, account LIMIT ?",
        )
        .bind(since_ms)
        .bind(before_ms)
        .bind(since_ms)
        .bind(before_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}
