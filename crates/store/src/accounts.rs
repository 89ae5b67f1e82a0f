//! Accounts and their versioned encrypted balances.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::db::expect_one;
use crate::{now_ms, Db, StoreError};

/// An account and its current encrypted state.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Owning tenant.
    pub tenant: String,
    /// Name, unique within the tenant.
    pub name: String,
    /// Compressed encrypted balance; `None` until the first write (balance zero).
    pub balance: Option<Vec<u8>>,
    /// Number of committed balance writes; every write compares and sets it.
    pub version: i64,
    /// Largest amount one outgoing transfer may move.
    pub max_amount: Option<i64>,
    /// Largest outflow per window.
    pub window_limit: Option<i64>,
    /// Window length.
    pub window_seconds: i64,
    /// Start of the current window (Unix ms).
    pub window_start: Option<i64>,
    /// Compressed encrypted outflow in the current window, as windows written before
    /// allowances were kept it; cleared by the next window write.
    pub window_spent: Option<Vec<u8>>,
    /// Compressed encrypted allowance left in the current window.
    pub window_remaining: Option<Vec<u8>>,
    /// The window limit `window_remaining` was counted against (plaintext, as limits are).
    pub window_base: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

/// A new encrypted state for an account, written only if its version is unchanged.
#[derive(Debug, Clone)]
pub struct BalanceWrite {
    /// Account name.
    pub account: String,
    /// Version read before computing.
    pub expected_version: i64,
    /// New compressed balance.
    pub balance: Vec<u8>,
    /// The account's new window state, when it has a window limit.
    pub window: Option<WindowWrite>,
}

/// A new outflow window state.
#[derive(Debug, Clone)]
pub struct WindowWrite {
    /// Window start (Unix ms).
    pub start: i64,
    /// Compressed encrypted allowance left in the window.
    pub remaining: Vec<u8>,
    /// The limit the allowance is counted against.
    pub base: i64,
}

const COLUMNS: &str = "tenant, name, balance, version, max_amount, window_limit, window_seconds, \
                       window_start, window_spent, created_at, window_remaining, window_base";

fn from_row(row: AnyRow) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        tenant: row.try_get(0)?,
        name: row.try_get(1)?,
        balance: row.try_get(2)?,
        version: row.try_get(3)?,
        max_amount: row.try_get(4)?,
        window_limit: row.try_get(5)?,
        window_seconds: row.try_get(6)?,
        window_start: row.try_get(7)?,
        window_spent: row.try_get(8)?,
        created_at: row.try_get(9)?,
        window_remaining: row.try_get(10)?,
        window_base: row.try_get(11)?,
    })
}

impl Db {
    /// Opens an account; [`StoreError::Duplicate`] when it exists.
    pub async fn insert_account(
        &self,
        tenant: &str,
        name: &str,
        max_amount: Option<i64>,
        window: Option<(i64, i64)>,
    ) -> Result<AccountRow, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO accounts (tenant, name, version, max_amount, window_limit, window_seconds, \
             created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?)",
        )
        .bind(tenant)
        .bind(name)
        .bind(max_amount)
        .bind(window.map(|w| w.0))
        .bind(window.map(|w| w.1).unwrap_or(86_400))
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.account(tenant, name).await
    }

    /// Fetches an account; [`StoreError::NotFound`] when unknown.
    pub async fn account(&self, tenant: &str, name: &str) -> Result<AccountRow, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM accounts WHERE tenant = ? AND name = ?");
        let row = sqlx::query(&sql)
            .bind(tenant)
            .bind(name)
            .fetch_optional(self.pool())
            .await?
            .ok_or(StoreError::NotFound)?;
        from_row(row)
    }
}

/// Writes a balance if nobody wrote it since it was read; `false` when the version moved.
pub(crate) async fn compare_and_set(
    tx: &mut Transaction<'_, Any>,
    tenant: &str,
    write: &BalanceWrite,
) -> Result<bool, StoreError> {
    let window = write.window.as_ref();
    // A window write replaces the whole window state, a former outflow included.
    let result = sqlx::query(
        "UPDATE accounts SET balance = ?, version = version + 1, \
         window_start = COALESCE(?, window_start), \
         window_remaining = COALESCE(?, window_remaining), \
         window_base = COALESCE(?, window_base), \
         window_spent = CASE WHEN ? IS NULL THEN window_spent ELSE NULL END, \
         updated_at = ? WHERE tenant = ? AND name = ? AND version = ?",
    )
    .bind(write.balance.as_slice())
    .bind(window.map(|w| w.start))
    .bind(window.map(|w| w.remaining.as_slice()))
    .bind(window.map(|w| w.base))
    .bind(window.map(|w| w.start))
    .bind(now_ms())
    .bind(tenant)
    .bind(&write.account)
    .bind(write.expected_version)
    .execute(&mut **tx)
    .await?;
    expect_one(result)
}
