//! What accepted commands left behind, for the ledger's policy and the controller.

use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::Row;

use crate::db::{text, AuditLog};
use crate::error::Result;

/// A frozen account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrozenAccount {
    /// Tenant.
    pub tenant: String,
    /// Account.
    pub account: String,
    /// The officer's reason.
    pub reason: String,
    /// When it was frozen (Unix ms).
    pub since: i64,
    /// Key id of the officer who froze it.
    pub officer: String,
    /// Seq of the audit event of the freeze.
    pub audit_seq: i64,
}

/// A revoked tenant key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevokedKey {
    /// Tenant.
    pub tenant: String,
    /// The revoked key id.
    pub key_id: String,
    /// The officer's reason.
    pub reason: String,
    /// When (Unix ms).
    pub revoked_at: i64,
}

/// An accepted command another service must carry out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminAction {
    /// Row id, to mark it applied.
    pub id: i64,
    /// `rollback_bundle` or `revoke_tenant_key`.
    pub command: String,
    /// `bundle@revision` or `tenant/key_id`.
    pub target: String,
    /// The officer's reason.
    pub reason: String,
    /// Key id of the officer.
    pub officer: String,
    /// When it was accepted (Unix ms).
    pub accepted_at: i64,
}

/// The policy data derived from admin commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyData {
    /// Frozen accounts.
    pub frozen: Vec<FrozenAccount>,
    /// Revoked tenant keys.
    pub revoked_keys: Vec<RevokedKey>,
}

impl PolicyData {
    /// The document to put under a data root of a policy bundle:
    /// `{"frozen": {"tenant/account": {"reason", "since", "officer"}},
    ///   "revoked_keys": {"tenant/key_id": {"reason", "revoked_at"}}}`.
    pub fn to_json(&self) -> Value {
        let frozen: Map<String, Value> = self
            .frozen
            .iter()
            .map(|f| {
                let entry = json!({"reason": f.reason, "since": f.since, "officer": f.officer});
                (format!("{}/{}", f.tenant, f.account), entry)
            })
            .collect();
        let revoked: Map<String, Value> = self
            .revoked_keys
            .iter()
            .map(|k| {
                let entry = json!({"reason": k.reason, "revoked_at": k.revoked_at});
                (format!("{}/{}", k.tenant, k.key_id), entry)
            })
            .collect();
        json!({"frozen": frozen, "revoked_keys": revoked})
    }
}

impl AuditLog {
    /// Every frozen account, by tenant and account.
    pub async fn frozen_accounts(&self) -> Result<Vec<FrozenAccount>> {
        let rows = sqlx::query(
            "SELECT tenant, account, reason, since, officer, audit_seq FROM frozen_accounts \
             ORDER BY tenant, account",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(FrozenAccount {
                    tenant: text(row, 0)?,
                    account: text(row, 1)?,
                    reason: text(row, 2)?,
                    since: row.try_get(3)?,
                    officer: text(row, 4)?,
                    audit_seq: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Every revoked tenant key.
    pub async fn revoked_keys(&self) -> Result<Vec<RevokedKey>> {
        let rows = sqlx::query(
            "SELECT tenant, key_id, reason, revoked_at FROM revoked_tenant_keys \
             ORDER BY tenant, key_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevokedKey {
                    tenant: text(row, 0)?,
                    key_id: text(row, 1)?,
                    reason: text(row, 2)?,
                    revoked_at: row.try_get(3)?,
                })
            })
            .collect()
    }

    /// Frozen accounts and revoked keys, for the policy ([`PolicyData::to_json`]).
    pub async fn policy_data(&self) -> Result<PolicyData> {
        Ok(PolicyData {
            frozen: self.frozen_accounts().await?,
            revoked_keys: self.revoked_keys().await?,
        })
    }

    /// Accepted commands of `command` that another service carries out, oldest first (the
    /// controller records which it carried out in its own table).
    pub async fn admin_actions(&self, command: &str) -> Result<Vec<AdminAction>> {
        let rows = sqlx::query(
            "SELECT id, command, target, reason, officer, accepted_at FROM admin_actions \
             WHERE command = ? ORDER BY id",
        )
        .bind(command)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AdminAction {
                    id: row.try_get(0)?,
                    command: text(row, 1)?,
                    target: text(row, 2)?,
                    reason: text(row, 3)?,
                    officer: text(row, 4)?,
                    accepted_at: row.try_get(5)?,
                })
            })
            .collect()
    }
}
