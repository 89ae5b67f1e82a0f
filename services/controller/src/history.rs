//! Bundle history and rollback: every stored revision, every activation, every push
//! report; rolling back serves an earlier revision's archive again, byte for byte, so its
//! signature still verifies.

use blindledger_store::now_ms;
use serde::Serialize;
use serde_json::Value;

use crate::bundles::{ServedBundle, POLICY_BUNDLE, RISK_BUNDLE};
use crate::controller::Controller;
use crate::error::{ControllerError, Result};
use crate::repo::ActivationRow;

/// The history of one bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleHistory {
    /// Bundle name.
    pub bundle: String,
    /// The revision served now.
    pub active: Option<String>,
    /// Stored revisions, newest first.
    pub revisions: Vec<RevisionView>,
    /// Activations, newest first.
    pub activations: Vec<ActivationRow>,
    /// Push reports, newest first (the `blindledger` bundle only).
    pub pushes: Vec<PushView>,
}

/// One stored revision.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionView {
    /// Manifest revision.
    pub revision: String,
    /// SHA-256 of the archive.
    pub sha256: String,
    /// `push`, `initial` or `risk`.
    pub origin: String,
    /// Who pushed it.
    pub created_by: String,
    /// When it was stored (Unix ms).
    pub created_at: i64,
    /// Whether it is served now.
    pub active: bool,
}

/// One push and its report.
#[derive(Debug, Clone, Serialize)]
pub struct PushView {
    /// Pushed revision.
    pub revision: String,
    /// Who pushed it.
    pub pushed_by: String,
    /// When (Unix ms).
    pub pushed_at: i64,
    /// `activated`, `unchanged` or `refused`.
    pub outcome: String,
    /// The full report (tests, impact analysis).
    pub report: Value,
}

/// The result of a rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Rollback {
    /// Bundle name.
    pub bundle: String,
    /// The revision served now.
    pub revision: String,
    /// The revision served before.
    pub previous: Option<String>,
}

impl Controller {
    /// The history of bundle `name` (`blindledger` or `risk`), at most `limit` of each list.
    pub async fn history(&self, name: &str, limit: u32) -> Result<BundleHistory> {
        if name != POLICY_BUNDLE && name != RISK_BUNDLE {
            return Err(ControllerError::NotFound(format!("bundle {name}")));
        }
        let active = self.bundles.get(name).map(|b| b.revision().to_string());
        let revisions = self
            .repo
            .bundle_revisions(name, limit)
            .await?
            .into_iter()
            .map(|row| RevisionView {
                active: active.as_deref() == Some(row.revision.as_str()),
                revision: row.revision,
                sha256: row.sha256,
                origin: row.origin,
                created_by: row.created_by,
                created_at: row.created_at,
            })
            .collect();
        let pushes = if name == POLICY_BUNDLE {
            let rows = self.repo.push_reports(limit).await?;
            rows.into_iter()
                .map(|row| PushView {
                    report: serde_json::from_str(&row.report).unwrap_or(Value::Null),
                    revision: row.revision,
                    pushed_by: row.pushed_by,
                    pushed_at: row.pushed_at,
                    outcome: row.outcome,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(BundleHistory {
            bundle: name.to_string(),
            active,
            revisions,
            activations: self.repo.activations(name, limit).await?,
            pushes,
        })
    }

    /// Serves stored `revision` of the `blindledger` bundle again, after checking that it
    /// still builds with the active risk data.
    pub async fn rollback(&self, revision: &str, actor: &str) -> Result<Rollback> {
        let _serialised = self.lock.lock().await;
        let row = self
            .repo
            .bundle(POLICY_BUNDLE, revision)
            .await?
            .ok_or_else(|| ControllerError::NotFound(format!("revision {revision}")))?;
        let previous = self
            .bundles
            .get(POLICY_BUNDLE)
            .map(|b| b.revision().to_string());
        let served = ServedBundle::from_archive(POLICY_BUNDLE, row.archive)?;
        let mut together = vec![served.bundle.clone()];
        together.extend(self.bundles.get(RISK_BUNDLE).map(|r| r.bundle.clone()));
        self.check_engine(together).await?;
        let activation = ActivationRow {
            name: POLICY_BUNDLE.to_string(),
            revision: revision.to_string(),
            action: "rollback".to_string(),
            actor: actor.to_string(),
            activated_at: now_ms(),
        };
        self.repo.record_activation(&activation).await?;
        self.bundles.set(served);
        crate::metrics::bundle_active(POLICY_BUNDLE, revision);
        tracing::info!(
            bundle = POLICY_BUNDLE,
            revision,
            previous = previous.as_deref().unwrap_or(""),
            actor,
            "bundle rolled back"
        );
        Ok(Rollback {
            bundle: POLICY_BUNDLE.to_string(),
            revision: revision.to_string(),
            previous,
        })
    }
}
