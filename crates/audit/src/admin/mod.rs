//! Signed admin commands: an officer freezes or unfreezes an account, rolls back a policy
//! bundle or revokes a tenant key by signing a command with their Ed25519 key.
//!
//! # Wire format
//!
//! A [`SignedCommand`] is `{"payload": "<JSON text>", "signature": "<base64>"}`. The
//! payload is the JSON object of a [`CommandPayload`]: `command`, `target`, `reason`,
//! `nonce`, `issued_at` (Unix ms) and `kid` (the officer's key id). The signature is the
//! Ed25519 signature of `"blindledger.admin-command.v1" || 0x00 || payload bytes`, over the
//! payload text exactly as sent; the domain prefix keeps an officer's signature from being
//! valid anywhere else.
//!
//! # Acceptance
//!
//! A command is accepted only when its `kid` names a configured officer key, the signature
//! verifies, `issued_at` is within the window of the service clock (±5 minutes by
//! default) and its nonce was never accepted before. Accepted or rejected, it is appended
//! to the audit trail as an `admin_command` event; an accepted one changes
//! `frozen_accounts`, `revoked_tenant_keys` or queues an `admin_actions` row, in the same
//! transaction as its audit event and its nonce.

mod apply;
mod data;
mod verify;

use serde::{Deserialize, Serialize};

pub use apply::{AcceptedCommand, AdminCommands, AdminError};
pub use data::{AdminAction, FrozenAccount, PolicyData, RevokedKey};
pub use verify::{generate_officer_keypair, sign_command, CommandRejection, OfficerKeys};

/// Default tolerated distance between `issued_at` and the service clock: ±5 minutes.
pub const DEFAULT_WINDOW_MS: i64 = 5 * 60 * 1000;

/// What an admin command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Freeze `tenant/account`: the policy denies it.
    Freeze,
    /// Lift a freeze on `tenant/account`.
    Unfreeze,
    /// Roll the bundle back: target `name@revision` (carried out by the controller).
    RollbackBundle,
    /// Revoke a tenant key: target `tenant/key_id`.
    RevokeTenantKey,
}

impl Command {
    /// The command's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Freeze => "freeze",
            Command::Unfreeze => "unfreeze",
            Command::RollbackBundle => "rollback_bundle",
            Command::RevokeTenantKey => "revoke_tenant_key",
        }
    }
}

/// The signed content of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandPayload {
    /// What to do.
    pub command: Command,
    /// What to do it to (`tenant/account`, `bundle@revision` or `tenant/key_id`).
    pub target: String,
    /// Why, for the record.
    #[serde(default)]
    pub reason: String,
    /// A value never used before by any officer (a UUID, say).
    pub nonce: String,
    /// When the officer issued it (Unix ms).
    pub issued_at: i64,
    /// The officer's key id.
    pub kid: String,
}

impl CommandPayload {
    /// A payload issued now with a fresh random nonce.
    pub fn new(command: Command, target: &str, reason: &str, kid: &str) -> Self {
        CommandPayload {
            command,
            target: target.to_owned(),
            reason: reason.to_owned(),
            nonce: uuid::Uuid::new_v4().to_string(),
            issued_at: crate::now_ms(),
            kid: kid.to_owned(),
        }
    }

    /// The two halves of `target` split at `separator` (`tenant/account`,
    /// `bundle@revision`), both non-empty.
    pub(crate) fn target_parts(&self, separator: char) -> Option<(&str, &str)> {
        let (a, b) = self.target.split_once(separator)?;
        (!a.is_empty() && !b.is_empty() && !b.contains(separator)).then_some((a, b))
    }
}

/// A command as sent: the payload text and its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    /// The payload JSON, exactly as signed.
    pub payload: String,
    /// Ed25519 signature, standard base64.
    pub signature: String,
}
