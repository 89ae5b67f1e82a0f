//! Officers' signed commands, carried out. The audit service verifies and records them
//! (`frozen_accounts`, `admin_actions`); the controller picks them up on a short interval:
//! frozen accounts and revoked tenant keys go into the risk bundle, whose entries the shipped
//! policy enforces (no money moves in or out of a frozen account; nothing is computed under
//! a revoked key), and bundle rollbacks are applied to the served `blindledger` bundle.
//!
//! The controller does not take the tables' word for it: each row keeps the command as the
//! officer signed it, and an order is acted on only when that signature verifies with one
//! of `officer_keys` and the signed command says what the row says. A row written by a
//! database writer, or by the audit service's credentials without an officer, is skipped
//! (logged and counted in `blindledger_controller_orders_refused_total{table}`).

use blindledger_audit::admin::{Command, CommandPayload, SignedCommand};
use blindledger_store::now_ms;
use serde::Serialize;

use crate::bundles::POLICY_BUNDLE;
use crate::controller::Controller;
use crate::cycle::RiskBundleOutcome;
use crate::error::{ControllerError, Result};
use crate::repo::{OfficerOrders, StoredOrder};

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
            let order = self.verified(
                "admin_actions",
                Command::RollbackBundle,
                &target,
                pending.signed_command.as_deref(),
            );
            let outcome = match (order, target.split_once('@')) {
                (None, _) => Err(ControllerError::Forbidden(
                    "no valid officer's signature".into(),
                )),
                (Some(payload), _) if self.too_old(&payload) => Err(ControllerError::Conflict(
                    "signed longer ago than rollback_max_age_ms".into(),
                )),
                (Some(payload), Some((POLICY_BUNDLE, revision))) => {
                    let actor = format!("officer:{}", payload.kid);
                    self.rollback(revision, &actor).await.map(drop)
                }
                _ => Err(ControllerError::NotFound(format!(
                    "bundle target {target} (only {POLICY_BUNDLE}@<revision> can be rolled back)"
                ))),
            };
            match outcome {
                Ok(()) => sync.rollbacks.push(target),
                Err(
                    error @ (ControllerError::NotFound(_)
                    | ControllerError::Conflict(_)
                    | ControllerError::Forbidden(_)),
                ) => {
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

    /// The freezes and key revocations whose rows an officer's signed command backs.
    pub(crate) async fn officer_orders(&self) -> Result<OfficerOrders> {
        let stored = self.repo.stored_orders().await?;
        let keep = |table: &'static str, command: Command, orders: Vec<StoredOrder>| {
            orders
                .into_iter()
                .filter(|o| {
                    self.verified(table, command, &o.key, o.signed_command.as_deref())
                        .is_some()
                })
                .map(|o| (o.key, o.at))
                .collect()
        };
        Ok(OfficerOrders {
            frozen: keep("frozen_accounts", Command::Freeze, stored.frozen),
            revoked_keys: keep(
                "revoked_tenant_keys",
                Command::RevokeTenantKey,
                stored.revoked_keys,
            ),
        })
    }

    /// The payload of `signed` when an officer's signature on it verifies and it orders
    /// `command` on `target`, as the row in `table` says; otherwise none, logged and
    /// counted. Only the table name and the row's (bounded) target are logged.
    fn verified(
        &self,
        table: &'static str,
        command: Command,
        target: &str,
        signed: Option<&str>,
    ) -> Option<CommandPayload> {
        let checked = signed
            .ok_or_else(|| "no signed command".to_string())
            .and_then(|text| {
                serde_json::from_str::<SignedCommand>(text)
                    .map_err(|_| "signed command does not parse".to_string())
            })
            .and_then(|signed| {
                self.officers
                    .verify_signature(&signed)
                    .map_err(|rejection| rejection.label().to_string())
            })
            .and_then(|payload| {
                if payload.command == command && payload.target == target {
                    Ok(payload)
                } else {
                    Err("signed command orders something else".to_string())
                }
            });
        match checked {
            Ok(payload) => Some(payload),
            Err(reason) => {
                let target: String = target.chars().take(160).collect();
                tracing::warn!(table, %target, %reason, "officer's order refused: not backed by a valid signature");
                crate::metrics::order_refused(table);
                None
            }
        }
    }

    /// Whether a rollback was signed longer ago than `rollback_max_age_ms`.
    fn too_old(&self, payload: &CommandPayload) -> bool {
        let max_age = i64::try_from(self.config.rollback_max_age_ms).unwrap_or(i64::MAX);
        now_ms().saturating_sub(payload.issued_at) > max_age
    }
}
