//! What officers' signed commands left for the controller, written by the audit service
//! (`frozen_accounts`, `revoked_tenant_keys`, `admin_actions` of
//! `migrations/*/0004_audit.sql`).

use sqlx::Row;

use super::{text, Repo};

/// A bundle rollback an officer ordered and the controller has not carried out yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRollback {
    /// Row id, to mark it applied.
    pub id: i64,
    /// `bundle@revision`, as the officer signed it.
    pub target: String,
    /// Key id of the officer.
    pub officer: String,
}

/// What officers ordered that the policy enforces, each entry keyed as the risk bundle
/// keys it, with the time of the order (Unix ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfficerOrders {
    /// Frozen accounts, as `tenant/account`.
    pub frozen: Vec<(String, i64)>,
    /// Revoked tenant keys, as `tenant/key_id`.
    pub revoked_keys: Vec<(String, i64)>,
}

impl OfficerOrders {
    /// Whether nothing is frozen or revoked.
    pub fn is_empty(&self) -> bool {
        self.frozen.is_empty() && self.revoked_keys.is_empty()
    }
}

impl Repo {
    /// Every frozen account and revoked tenant key.
    pub async fn officer_orders(&self) -> Result<OfficerOrders, sqlx::Error> {
        Ok(OfficerOrders {
            frozen: self
                .keyed_orders("SELECT tenant, account, since FROM frozen_accounts")
                .await?,
            revoked_keys: self
                .keyed_orders("SELECT tenant, key_id, revoked_at FROM revoked_tenant_keys")
                .await?,
        })
    }

    /// Rows of (tenant, name, time) as (`tenant/name`, time).
    async fn keyed_orders(&self, query: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let rows = sqlx::query(query).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let key = format!("{}/{}", text(row, 0)?, text(row, 1)?);
                Ok((key, row.try_get(2)?))
            })
            .collect()
    }

    /// Accepted `rollback_bundle` commands not carried out yet, oldest first.
    pub async fn pending_rollbacks(&self) -> Result<Vec<PendingRollback>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, target, officer FROM admin_actions \
             WHERE applied_at IS NULL AND command = 'rollback_bundle' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingRollback {
                    id: row.try_get(0)?,
                    target: text(row, 1)?,
                    officer: text(row, 2)?,
                })
            })
            .collect()
    }

    /// Marks an admin action carried out at `now`.
    pub async fn mark_action_applied(&self, id: i64, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE admin_actions SET applied_at = ? WHERE id = ? AND applied_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
