//! Accepting admin commands: nonce, effect and audit event in one transaction.

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Transaction};

use super::verify::{parse_payload, CommandRejection, OfficerKeys};
use super::{Command, CommandPayload, SignedCommand};
use crate::append::Prepared;
use crate::db::{retry, AuditLog};
use crate::error::{AuditError, Result};
use crate::event::{EventKind, NewEvent};

/// Why a submitted command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// It was refused (and the refusal was logged).
    #[error(transparent)]
    Rejected(#[from] CommandRejection),
    /// Storage failed; nothing was changed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// A command that took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptedCommand {
    /// The authentic payload.
    pub payload: CommandPayload,
    /// Seq of its audit event.
    pub audit_seq: i64,
}

/// Verifies, records and applies officers' signed commands.
#[derive(Debug, Clone)]
pub struct AdminCommands {
    log: AuditLog,
    officers: OfficerKeys,
    window_ms: i64,
}

impl AdminCommands {
    /// Commands checked against `officers`, with `issued_at` accepted within `window_ms`
    /// of the clock.
    pub fn new(log: AuditLog, officers: OfficerKeys, window_ms: i64) -> Self {
        AdminCommands {
            log,
            officers,
            window_ms,
        }
    }

    /// Verifies and applies `signed`. Every outcome is appended to the audit trail.
    pub async fn submit(&self, signed: &SignedCommand) -> Result<AcceptedCommand, AdminError> {
        let now = crate::now_ms();
        let payload = match self.officers.authenticate(signed, now, self.window_ms) {
            Ok(payload) => payload,
            Err(rejection) => return Err(self.reject(signed, rejection, now).await),
        };
        match self.accept(signed, &payload, now).await? {
            Some(audit_seq) => {
                tracing::info!(command = payload.command.as_str(), kid = %payload.kid, audit_seq, "admin command accepted");
                metrics::counter!("blindledger_admin_commands_total", "outcome" => "accepted")
                    .increment(1);
                Ok(AcceptedCommand { payload, audit_seq })
            }
            None => Err(self.reject(signed, CommandRejection::Replayed, now).await),
        }
    }

    /// Logs a refusal; returns the error to answer with.
    async fn reject(
        &self,
        signed: &SignedCommand,
        rejection: CommandRejection,
        now: i64,
    ) -> AdminError {
        tracing::warn!(rejection = rejection.label(), "admin command rejected");
        metrics::counter!("blindledger_admin_commands_total", "outcome" => "rejected").increment(1);
        let claimed = parse_payload(&signed.payload).ok();
        let mut summary = json!({
            "outcome": "rejected",
            "rejection": rejection.label(),
            "detail": rejection.to_string(),
        });
        if let Some(p) = &claimed {
            summary["command"] = json!(p.command.as_str());
            summary["nonce"] = json!(truncate(&p.nonce));
            summary["issued_at"] = json!(p.issued_at);
            summary["claimed_kid"] = json!(truncate(&p.kid));
        }
        let (principal, subject) = claimed
            .map(|p| (truncate(&p.kid), truncate(&p.target)))
            .unwrap_or_else(|| ("unknown".into(), String::new()));
        let event = NewEvent::new(EventKind::AdminCommand, now, principal, subject, summary);
        match self.log.append(event).await {
            Ok(_) => AdminError::Rejected(rejection),
            Err(err) => AdminError::Audit(err),
        }
    }

    /// Records the nonce, the event and the effect; `None` when the nonce was used before.
    async fn accept(
        &self,
        signed: &SignedCommand,
        payload: &CommandPayload,
        now: i64,
    ) -> Result<Option<i64>> {
        let signed = serde_json::to_string(signed)
            .map_err(|e| AuditError::InvalidEvent(format!("signed command: {e}")))?;
        let event = NewEvent::new(
            EventKind::AdminCommand,
            now,
            payload.kid.clone(),
            payload.target.clone(),
            json!({
                "outcome": "accepted",
                "command": payload.command.as_str(),
                "reason": payload.reason,
                "nonce": payload.nonce,
                "issued_at": payload.issued_at,
            }),
        );
        let prepared = Prepared::all(&[event])?;
        retry("audit_admin_command", || async {
            let mut tx = self.log.begin_write().await?;
            let head = self.log.lock_head(&mut tx).await?;
            // The head lock serialises this check with every other command.
            if nonce_used(&mut tx, &payload.nonce).await? {
                return Ok(None);
            }
            record_nonce(&mut tx, payload, now, self.window_ms).await?;
            let appended = self.log.append_after(&mut tx, head, &prepared).await?;
            let seq = appended.first().map(|a| a.seq).unwrap_or_default();
            apply(&mut tx, payload, &signed, seq, now).await?;
            tx.commit().await?;
            Ok(Some(seq))
        })
        .await
    }
}

async fn nonce_used(tx: &mut Transaction<'static, Any>, nonce: &str) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM admin_nonces WHERE nonce = ?")
        .bind(nonce)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// Stores the nonce and forgets nonces too old to pass the window check again.
async fn record_nonce(
    tx: &mut Transaction<'static, Any>,
    payload: &CommandPayload,
    now: i64,
    window_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_nonces (nonce, officer, issued_at, seen_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&payload.nonce)
    .bind(&payload.kid)
    .bind(payload.issued_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM admin_nonces WHERE issued_at < ?")
        .bind(now - 2 * window_ms.max(0) - 60_000)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Carries out an accepted command's effect. Each row it writes keeps `signed` (the
/// command as the officer signed it), which the controller checks again before acting.
async fn apply(
    tx: &mut Transaction<'static, Any>,
    payload: &CommandPayload,
    signed: &str,
    seq: i64,
    now: i64,
) -> Result<()> {
    let parts = |sep| payload.target_parts(sep).unwrap_or_default();
    let (sql, a, b) = match payload.command {
        Command::Freeze => (
            "REPLACE INTO frozen_accounts (tenant, account, reason, since, officer, audit_seq, \
             signed_command) VALUES (?, ?, ?, ?, ?, ?, ?)",
            parts('/').0,
            parts('/').1,
        ),
        Command::Unfreeze => (
            "DELETE FROM frozen_accounts WHERE tenant = ? AND account = ?",
            parts('/').0,
            parts('/').1,
        ),
        Command::RevokeTenantKey => (
            "REPLACE INTO revoked_tenant_keys (tenant, key_id, reason, revoked_at, officer, \
             audit_seq, signed_command) VALUES (?, ?, ?, ?, ?, ?, ?)",
            parts('/').0,
            parts('/').1,
        ),
        Command::RollbackBundle => return queue_action(tx, payload, signed, seq, now).await,
    };
    let mut query = sqlx::query(sql).bind(a).bind(b);
    if payload.command != Command::Unfreeze {
        query = query
            .bind(&payload.reason)
            .bind(now)
            .bind(&payload.kid)
            .bind(seq)
            .bind(signed);
    }
    query.execute(&mut **tx).await?;
    if payload.command == Command::RevokeTenantKey {
        queue_action(tx, payload, signed, seq, now).await?;
    }
    Ok(())
}

/// Queues a command another service carries out (`admin_actions`).
async fn queue_action(
    tx: &mut Transaction<'static, Any>,
    payload: &CommandPayload,
    signed: &str,
    seq: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_actions (command, target, reason, officer, accepted_at, audit_seq, \
         signed_command) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(payload.command.as_str())
    .bind(&payload.target)
    .bind(&payload.reason)
    .bind(&payload.kid)
    .bind(now)
    .bind(seq)
    .bind(signed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(128).collect()
}
