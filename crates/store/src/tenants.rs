//! Tenants and their key metadata.

use sqlx::Row;

use crate::retry::retry_transaction;
use crate::{now_ms, Db, StoreError};

/// A registered tenant.
#[derive(Debug, Clone)]
pub struct TenantRow {
    /// Unique name.
    pub name: String,
    /// Data-residency region.
    pub region: String,
    /// Bits of every amount and balance (32 or 64).
    pub width_bits: i64,
    /// Safe-serialized compact public key.
    pub public_key: Vec<u8>,
    /// Hex SHA-256 of the compressed server key.
    pub key_id: String,
    /// Object-store path of the compressed server key.
    pub server_key_path: String,
    /// Size in bytes of the compressed server key.
    pub server_key_size: i64,
}

/// The `INSERT` of a new tenant row, created and updated at `now`.
fn insert(
    t: &TenantRow,
    now: i64,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO tenants (name, region, width_bits, public_key, key_id, \
         server_key_path, server_key_size, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.name)
    .bind(&t.region)
    .bind(t.width_bits)
    .bind(&t.public_key)
    .bind(&t.key_id)
    .bind(&t.server_key_path)
    .bind(t.server_key_size)
    .bind(now)
    .bind(now)
}

impl Db {
    /// Registers a tenant or replaces its keys (a key rotation), returning the row.
    pub async fn upsert_tenant(&self, t: &TenantRow) -> Result<(), StoreError> {
        retry_transaction("upsert_tenant", || self.try_upsert_tenant(t)).await
    }

    async fn try_upsert_tenant(&self, t: &TenantRow) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE tenants SET region = ?, width_bits = ?, public_key = ?, key_id = ?, \
             server_key_path = ?, server_key_size = ?, updated_at = ? WHERE name = ?",
        )
        .bind(&t.region)
        .bind(t.width_bits)
        .bind(&t.public_key)
        .bind(&t.key_id)
        .bind(&t.server_key_path)
        .bind(t.server_key_size)
        .bind(now)
        .bind(&t.name)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            insert(t, now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers a new tenant, unless one of that name exists: returns the row stored
    /// under the name, this one or the one registered first. Of two concurrent
    /// registrations exactly one is stored; the caller compares key ids to tell which.
    pub async fn register_tenant(&self, t: &TenantRow) -> Result<TenantRow, StoreError> {
        let now = now_ms();
        let inserted = retry_transaction("register_tenant", || async {
            insert(t, now)
                .execute(self.pool())
                .await
                .map_err(StoreError::from)
        })
        .await;
        match inserted {
            Ok(_) => Ok(t.clone()),
            Err(StoreError::Duplicate(_)) => self.tenant(&t.name).await,
            Err(other) => Err(other),
        }
    }

    /// Fetches a tenant; [`StoreError::NotFound`] when unknown.
    pub async fn tenant(&self, name: &str) -> Result<TenantRow, StoreError> {
        let row = sqlx::query(
            "SELECT name, region, width_bits, public_key, key_id, server_key_path, server_key_size \
             FROM tenants WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(TenantRow {
            name: row.try_get(0)?,
            region: row.try_get(1)?,
            width_bits: row.try_get(2)?,
            public_key: row.try_get(3)?,
            key_id: row.try_get(4)?,
            server_key_path: row.try_get(5)?,
            server_key_size: row.try_get(6)?,
        })
    }
}
