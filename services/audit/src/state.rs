//! What every request handler shares.

use std::sync::Arc;

use blindledger_audit::admin::AdminCommands;
use blindledger_audit::{Archive, AuditLog, CheckpointKeys, PublishedCheckpoints};
use blindledger_gate::{PolicyGate, TokenVerifier};
use tokio::sync::{broadcast, watch};

use crate::live::LiveDecision;

/// The service's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The audit trail.
    pub log: AuditLog,
    /// Verifies officers' sign-in tokens.
    pub tokens: TokenVerifier,
    /// Decides every request with the shipped policy and logs the decision.
    pub gate: PolicyGate,
    /// Verifies and applies signed admin commands.
    pub commands: AdminCommands,
    /// Keys checkpoints are verified with.
    pub checkpoint_keys: CheckpointKeys,
    /// Where checkpoints are published outside the database, and how long a row may wait
    /// for one (ms).
    pub published: Option<(PublishedCheckpoints, i64)>,
    /// The archive of the trail (`blindledger audit archive`): rows up to its end may have
    /// been pruned from the database; verification checks it first.
    pub archive: Option<Archive>,
    /// New decisions, for Server-Sent Events.
    pub live: broadcast::Sender<Arc<LiveDecision>>,
    /// Whether the session cookie is marked `Secure`.
    pub secure_cookies: bool,
    /// Sign-in through an OpenID Connect provider, when configured.
    pub oidc: Option<Arc<crate::oidc::Oidc>>,
    /// Turns true when the service stops (ends event streams).
    pub stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
