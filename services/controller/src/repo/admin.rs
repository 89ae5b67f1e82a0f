//! What officers' signed commands left for the controller, as the audit service publishes
//! them (`audit_frozen_account_feed`, `audit_revoked_key_feed`, `audit_admin_action_feed` of
//! `migrations/audit/*/0014_feeds.sql`), and the controller's own record of the orders it
//! carried out (`controller_applied_actions`).

use sqlx::Row;

use blindledger_store::StoreError;

use super::{optional_text, text, Repo};

/// A bundle rollback an officer ordered and the controller has not carried out yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRollback {
    /// The order's id, to record it carried out.
    pub id: i64,
    /// `bundle@revision`, as the row says (checked against the signed command).
    pub target: String,
    /// The command as the officer signed it (`SignedCommand` JSON); none in rows from
    /// before commands were kept, or written by someone else.
    pub signed_command: Option<String>,
}

/// A freeze or key revocation as stored, not yet checked against its signed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    /// `tenant/account` or `tenant/key_id`, as the row says.
    pub key: String,
    /// When it was ordered (Unix ms).
    pub at: i64,
    /// The command as the officer signed it (`SignedCommand` JSON), if the row has one.
    pub signed_command: Option<String>,
}

/// Every stored freeze and key revocation, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredOrders {
    /// Frozen accounts.
    pub frozen: Vec<StoredOrder>,
    /// Revoked tenant keys.
    pub revoked_keys: Vec<StoredOrder>,
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
    /// Every stored freeze and key revocation, as the rows say: the caller checks each
    /// against its signed command.
    pub async fn stored_orders(&self) -> Result<StoredOrders, StoreError> {
        Ok(StoredOrders {
            frozen: self
                .keyed_orders(
                    "SELECT tenant, account, since, signed_command FROM audit_frozen_account_feed \
                     ORDER BY tenant, account",
                )
                .await?,
            revoked_keys: self
                .keyed_orders(
                    "SELECT tenant, key_id, revoked_at, signed_command \
                     FROM audit_revoked_key_feed ORDER BY tenant, key_id",
                )
                .await?,
        })
    }

    /// Rows of (tenant, name, time, signed command) keyed `tenant/name`.
    async fn keyed_orders(&self, query: &str) -> Result<Vec<StoredOrder>, StoreError> {
        let rows = sqlx::query(query).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(StoredOrder {
                    key: format!("{}/{}", text(row, 0)?, text(row, 1)?),
                    at: row.try_get(2)?,
                    signed_command: optional_text(row, 3)?,
                })
            })
            .collect()
    }

    /// Accepted `rollback_bundle` commands not carried out yet, oldest first.
    pub async fn pending_rollbacks(&self) -> Result<Vec<PendingRollback>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, target, signed_command FROM audit_admin_action_feed a \
             WHERE command = 'rollback_bundle' AND NOT EXISTS \
             (SELECT 1 FROM controller_applied_actions c WHERE c.action_id = a.id) ORDER BY id",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PendingRollback {
                    id: row.try_get(0)?,
                    target: text(row, 1)?,
                    signed_command: optional_text(row, 2)?,
                })
            })
            .collect()
    }

    /// Records an officer's order carried out at `now`; an order recorded already keeps
    /// its first time.
    pub async fn mark_action_applied(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO controller_applied_actions (action_id, applied_at) VALUES (?, ?)",
        )
        .bind(id)
        .bind(now)
        .execute(self.db.pool())
        .await;
        match inserted.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Duplicate(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
