//! Signatures and freshness of admin commands.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;

use super::{Command, CommandPayload, SignedCommand};
use crate::error::{AuditError, Result};

/// Prefix of every signed command message.
const DOMAIN: &[u8] = b"blindledger.admin-command.v1\0";

/// Why a command was refused. Messages are safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "rejection", rename_all = "snake_case")]
pub enum CommandRejection {
    /// The envelope or payload is not well formed.
    #[error("malformed command: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// No officer key has the payload's `kid`.
    #[error("unknown officer key '{kid}'")]
    UnknownOfficer {
        /// The claimed key id.
        kid: String,
    },
    /// The signature does not verify: wrong key or altered payload.
    #[error("signature does not verify")]
    BadSignature,
    /// `issued_at` is outside the accepted window around the service clock.
    #[error("command issued {skew_ms} ms from now, outside the {window_ms} ms window")]
    Stale {
        /// `issued_at` minus the service clock.
        skew_ms: i64,
        /// The accepted distance.
        window_ms: i64,
    },
    /// The nonce was used by an earlier command.
    #[error("nonce already used: replayed command")]
    Replayed,
    /// The target does not suit the command.
    #[error("invalid target for {command}: {detail}")]
    InvalidTarget {
        /// The command.
        command: String,
        /// What the target must look like.
        detail: String,
    },
}

impl CommandRejection {
    /// A short label per variant, for metrics and the audit summary.
    pub fn label(&self) -> &'static str {
        match self {
            CommandRejection::Malformed { .. } => "malformed",
            CommandRejection::UnknownOfficer { .. } => "unknown_officer",
            CommandRejection::BadSignature => "bad_signature",
            CommandRejection::Stale { .. } => "stale",
            CommandRejection::Replayed => "replayed",
            CommandRejection::InvalidTarget { .. } => "invalid_target",
        }
    }
}

/// The officers' Ed25519 public keys, by key id.
#[derive(Debug, Clone, Default)]
pub struct OfficerKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl OfficerKeys {
    /// Parses `kid → SPKI PEM` public keys.
    pub fn from_pems(pems: &BTreeMap<String, String>) -> Result<Self> {
        let keys = pems
            .iter()
            .map(|(kid, pem)| {
                VerifyingKey::from_public_key_pem(pem)
                    .map(|key| (kid.clone(), key))
                    .map_err(|e| AuditError::Key(format!("officer key '{kid}': {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(OfficerKeys { keys })
    }

    /// Whether no officer key is configured (every command is then refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the signature and the clock; returns the authentic payload. The nonce is
    /// checked by the caller, against storage.
    pub fn authenticate(
        &self,
        signed: &SignedCommand,
        now: i64,
        window_ms: i64,
    ) -> Result<CommandPayload, CommandRejection> {
        let payload = self.verify_signature(signed)?;
        let skew_ms = payload.issued_at.saturating_sub(now);
        // `unsigned_abs`: a signed `issued_at` near `i64::MIN` saturates the skew there, whose
        // `abs()` overflows (and wraps to a negative skew that passes the check).
        if skew_ms.unsigned_abs() > window_ms.unsigned_abs() {
            return Err(CommandRejection::Stale { skew_ms, window_ms });
        }
        Ok(payload)
    }

    /// Checks an officer's signature and the target's shape, not the clock: for a command
    /// accepted earlier and stored (the controller re-checks every stored order with it).
    pub fn verify_signature(
        &self,
        signed: &SignedCommand,
    ) -> Result<CommandPayload, CommandRejection> {
        let payload = parse_payload(&signed.payload)?;
        let key = self
            .keys
            .get(&payload.kid)
            .ok_or_else(|| CommandRejection::UnknownOfficer {
                kid: truncate(&payload.kid),
            })?;
        let bytes = STANDARD
            .decode(signed.signature.trim())
            .map_err(|_| malformed("signature is not base64"))?;
        let signature =
            Signature::from_slice(&bytes).map_err(|_| malformed("signature is not 64 bytes"))?;
        key.verify(&message(&signed.payload), &signature)
            .map_err(|_| CommandRejection::BadSignature)?;
        check_target(&payload)?;
        Ok(payload)
    }
}

/// Parses a payload without trusting it (the signature is checked afterwards).
pub(crate) fn parse_payload(text: &str) -> Result<CommandPayload, CommandRejection> {
    serde_json::from_str(text).map_err(|e| malformed(&format!("payload: {e}")))
}

fn check_target(payload: &CommandPayload) -> Result<(), CommandRejection> {
    let (separator, shape) = match payload.command {
        Command::Freeze | Command::Unfreeze => ('/', "tenant/account"),
        Command::RollbackBundle => ('@', "bundle@revision"),
        Command::RevokeTenantKey => ('/', "tenant/key_id"),
    };
    match payload.target_parts(separator) {
        Some(_) if payload.target.len() <= 255 && payload.reason.len() <= 1000 => Ok(()),
        _ => Err(CommandRejection::InvalidTarget {
            command: payload.command.as_str().to_owned(),
            detail: format!("expected {shape}"),
        }),
    }
}

fn message(payload: &str) -> Vec<u8> {
    [DOMAIN, payload.as_bytes()].concat()
}

fn malformed(detail: &str) -> CommandRejection {
    CommandRejection::Malformed {
        detail: detail.to_owned(),
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Signs `payload` with an officer's Ed25519 PKCS#8 PEM private key (what
/// `blindledger admin freeze --officer-key officer.pem` does).
pub fn sign_command(payload: &CommandPayload, officer_key_pem: &str) -> Result<SignedCommand> {
    let key = SigningKey::from_pkcs8_pem(officer_key_pem)
        .map_err(|e| AuditError::Key(format!("officer key: {e}")))?;
    let text = serde_json::to_string(payload)
        .map_err(|e| AuditError::InvalidEvent(format!("command payload: {e}")))?;
    let signature = key.sign(&message(&text));
    Ok(SignedCommand {
        payload: text,
        signature: STANDARD.encode(signature.to_bytes()),
    })
}

impl Command {
    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Command> {
        [
            Command::Freeze,
            Command::Unfreeze,
            Command::RollbackBundle,
            Command::RevokeTenantKey,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}

/// Generates an officer key pair: (PKCS#8 PEM private key, SPKI PEM public key).
pub fn generate_officer_keypair() -> Result<(String, String)> {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let private = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| AuditError::Key(e.to_string()))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| AuditError::Key(e.to_string()))?;
    Ok((private.to_string(), public))
}
