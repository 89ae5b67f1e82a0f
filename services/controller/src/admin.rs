//! Officers' signed commands, carried out. The audit service verifies and records them
//! (`frozen_accounts`, `admin_actions`); the controller picks them up on a short interval:
//! frozen accounts and revoked tenant keys go into the risk bundle, whose entries the shipped
//! policy enforces (no money moves in or out of a frozen account; nothing is computed under
//! a revoked key), and bundle rollbacks are applied to the served `blindledger` bundle.

use blindledger_store::now_ms;
use serde::Serialize;

use crate::bundles::POLICY_BUNDLE;
use crate::controller::Controller;
use crate::cycle::RiskBundleOutcome;
use crate::error::{ControllerError, Result};

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdminSync {
    /// The risk bundle after the pass (new when frozen accounts or revoked keys changed);
    /// none while no risk bundle is served and nothing is frozen or revoked.
    pub risk_bundle: Option<RiskBundleOutcome>,
    /// Rollbacks carried out, as `bundle@revision`.
    pub rollbacks: Vec<String>,
    /// Rollbacks refused for good (unknown bundle or revision), marked done with a warning.
    pub refused: Vec<String>,
}

impl Controller {
    /// Publishes frozen accounts and revoked keys, and carries out pending bundle rollbacks.
    ///
    /// A rollback that fails for a passing reason (storage) stays pending for the next
    /// pass; one that can never succeed (no such revision) is marked done and logged, so
    /// it is not retried forever. Either way the officer's command and its outcome are in
    /// the audit trail: the command as the audit service recorded it, the rollback as a
    /// bundle activation it imports.
    pub async fn sync_admin(&self) -> Result<AdminSync> {
        let mut sync = AdminSync::default();
        for pending in self.repo.pending_rollbacks().await? {
            let target = pending.target.clone();
            let outcome = match target.split_once('@') {
                Some((POLICY_BUNDLE, revision)) => {
                    let actor = format!("officer:{}", pending.officer);
                    self.rollback(revision, &actor).await.map(drop)
                }
                _ => Err(ControllerError::NotFound(format!(
                    "bundle target {target} (only {POLICY_BUNDLE}@<revision> can be rolled back)"
                ))),
            };
            match outcome {
                Ok(()) => sync.rollbacks.push(target),
                Err(error @ (ControllerError::NotFound(_) | ControllerError::Conflict(_))) => {
                    tracing::warn!(%error, target = %target, "officer's rollback cannot be carried out");
                    sync.refused.push(target);
                }
                Err(error) => return Err(error),
            }
            self.repo.mark_action_applied(pending.id, now_ms()).await?;
        }
        let _serialised = self.lock.lock().await;
        // The first pass publishes a risk bundle even before the first cycle (the tiers
        // scored so far, none on a new installation): services refuse to move money until
        // they have one, and a first cycle over a large history can take a while.
        sync.risk_bundle = Some(self.publish_risk(None).await?);
        Ok(sync)
    }
}
