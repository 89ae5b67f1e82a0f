//! Served bundles: every revision byte for byte, the append-only activation history, and
//! the reports of policy pushes.

use sqlx::Row;

use blindledger_store::{retry_transaction, StoreError};

use super::{text, Repo};

/// One stored bundle revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleRow {
    /// `blindledger` or `risk`.
    pub name: String,
    /// Manifest revision.
    pub revision: String,
    /// SHA-256 of the archive (hex); the served ETag is derived from it.
    pub sha256: String,
    /// The archive exactly as served (and signed).
    pub archive: Vec<u8>,
    /// `risk` (built here), `push`, or `initial` (from the configuration).
    pub origin: String,
    /// Who pushed it (`controller` for risk bundles).
    pub created_by: String,
    /// When it was stored (Unix ms).
    pub created_at: i64,
}

/// One activation of a revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivationRow {
    /// Bundle name.
    pub name: String,
    /// Revision activated.
    pub revision: String,
    /// `activate` or `rollback`.
    pub action: String,
    /// Who asked.
    pub actor: String,
    /// When (Unix ms).
    pub activated_at: i64,
}

/// One stored push report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReportRow {
    /// The pushed revision.
    pub revision: String,
    /// Who pushed.
    pub pushed_by: String,
    /// When (Unix ms).
    pub pushed_at: i64,
    /// `activated`, `unchanged` or `refused`.
    pub outcome: String,
    /// Why it was refused (empty when accepted).
    pub reason: String,
    /// The report, JSON.
    pub report: String,
}

impl Repo {
    /// Stores `bundle` unless that revision exists, and records its activation, in one
    /// transaction.
    pub async fn activate_bundle(
        &self,
        bundle: &BundleRow,
        activation: &ActivationRow,
    ) -> Result<(), StoreError> {
        retry_transaction("controller_activate_bundle", || {
            self.try_activate_bundle(bundle, activation)
        })
        .await
    }

    async fn try_activate_bundle(
        &self,
        bundle: &BundleRow,
        activation: &ActivationRow,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let exists =
            sqlx::query("SELECT 1 FROM controller_bundles WHERE name = ? AND revision = ?")
                .bind(&bundle.name)
                .bind(&bundle.revision)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !exists {
            sqlx::query(
                "INSERT INTO controller_bundles (name, revision, sha256, archive, origin, \
                 created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&bundle.name)
            .bind(&bundle.revision)
            .bind(&bundle.sha256)
            .bind(&bundle.archive)
            .bind(&bundle.origin)
            .bind(&bundle.created_by)
            .bind(bundle.created_at)
            .execute(&mut *tx)
            .await?;
        }
        insert_activation(&mut tx, activation).await?;
        Ok(tx.commit().await?)
    }

    /// Records that a stored revision is active again.
    pub async fn record_activation(&self, activation: &ActivationRow) -> Result<(), StoreError> {
        retry_transaction("controller_record_activation", || {
            self.try_record_activation(activation)
        })
        .await
    }

    async fn try_record_activation(&self, activation: &ActivationRow) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        insert_activation(&mut tx, activation).await?;
        Ok(tx.commit().await?)
    }

    /// A stored revision of bundle `name`.
    pub async fn bundle(
        &self,
        name: &str,
        revision: &str,
    ) -> Result<Option<BundleRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, revision, sha256, archive, origin, created_by, created_at \
             FROM controller_bundles WHERE name = ? AND revision = ?",
        )
        .bind(name)
        .bind(revision)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(BundleRow {
                name: row.try_get(0)?,
                revision: row.try_get(1)?,
                sha256: row.try_get(2)?,
                archive: row.try_get(3)?,
                origin: row.try_get(4)?,
                created_by: row.try_get(5)?,
                created_at: row.try_get(6)?,
            })
        })
        .transpose()
    }

    /// The revision of `name` activated last, if any.
    pub async fn active_revision(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT revision FROM controller_activations WHERE name = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Stored revisions of `name`, newest first, without their archives (`archive` empty).
    pub async fn bundle_revisions(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<BundleRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, revision, sha256, origin, created_by, created_at FROM controller_bundles \
             WHERE name = ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BundleRow {
                    name: row.try_get(0)?,
                    revision: row.try_get(1)?,
                    sha256: row.try_get(2)?,
                    archive: Vec::new(),
                    origin: row.try_get(3)?,
                    created_by: row.try_get(4)?,
                    created_at: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Activations of `name`, newest first.
    pub async fn activations(
        &self,
        name: &str,
        limit: u32,
    ) -> Result<Vec<ActivationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, revision, action, actor, activated_at FROM controller_activations \
             WHERE name = ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ActivationRow {
                    name: row.try_get(0)?,
                    revision: row.try_get(1)?,
                    action: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    activated_at: row.try_get(4)?,
                })
            })
            .collect()
    }

    /// Stores a push report.
    pub async fn insert_push_report(&self, report: &PushReportRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO controller_push_reports (revision, pushed_by, pushed_at, outcome, reason, \
             report) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&report.revision)
        .bind(&report.pushed_by)
        .bind(report.pushed_at)
        .bind(&report.outcome)
        .bind(&report.reason)
        .bind(&report.report)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Push reports, newest first.
    pub async fn push_reports(&self, limit: u32) -> Result<Vec<PushReportRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT revision, pushed_by, pushed_at, outcome, reason, report \
             FROM controller_push_reports ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PushReportRow {
                    revision: row.try_get(0)?,
                    pushed_by: row.try_get(1)?,
                    pushed_at: row.try_get(2)?,
                    outcome: row.try_get(3)?,
                    reason: row.try_get(4)?,
                    report: text(row, 5)?,
                })
            })
            .collect()
    }
}

async fn insert_activation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    a: &ActivationRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO controller_activations (name, revision, action, actor, activated_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&a.name)
    .bind(&a.revision)
    .bind(&a.action)
    .bind(&a.actor)
    .bind(a.activated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Repo {
    /// How many revisions of `name` are stored.
    pub async fn bundle_count(&self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM controller_bundles WHERE name = ?")
            .bind(name)
            .fetch_one(self.db.pool())
            .await?;
        Ok(row.try_get(0)?)
    }
}
