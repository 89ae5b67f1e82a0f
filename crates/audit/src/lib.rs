//! The audit trail of BlindLedger: an append-only, tamper-evident log of what happened.
//!
//! - [`AuditLog`] appends [`NewEvent`]s to the `audit_events` table as a SHA-256 hash chain
//!   (see [`chain`] for the exact encoding), one writer at a time; [`AuditWriter`] groups
//!   concurrent appends into shared transactions.
//! - [`CheckpointSigner`] signs the chain's size and head hash with Ed25519
//!   ([`AuditLog::checkpoint`]); checkpoints export as JSON and are published outside the
//!   database ([`PublishedCheckpoints`]).
//! - [`AuditLog::verify`] streams the chain and reports the first edited, deleted, inserted
//!   or reordered row, a truncated tail, and forged checkpoints.
//! - [`Archive`] exports the trail in verifiable segments (rows and the signed checkpoint
//!   ending them) to object storage, so old rows can be pruned and still be verified.
//! - [`retention`] prunes what the trail was built from (decision log, jobs and their
//!   ciphertexts) once it is imported and older than its retention.
//! - [`Importer`] turns the ledger's decision log, job state changes and the controller's
//!   bundle activations into audit events, exactly once.
//! - [`admin`] verifies officer-signed admin commands (freeze, unfreeze, bundle rollback,
//!   key revocation), refuses replays, and keeps the frozen-accounts policy data.
//!
//! Summaries carry metadata only: ids, methods, outcomes, revisions, sizes. Never an amount,
//! a balance or a ciphertext; [`NewEvent`]s with such fields are refused.

pub mod admin;
mod append;
mod archive;
pub mod chain;
mod checkpoint;
mod db;
mod error;
mod event;
mod export;
mod import;
mod published;
pub mod retention;
mod verify;
mod writer;

pub use append::{Appended, Head};
pub use archive::{Archive, ArchiveReport, ArchivedSegment, MAX_SEGMENT_ROWS};
pub use chain::{ChainHash, GENESIS};
pub use checkpoint::{
    export_checkpoints, Checkpoint, CheckpointKeys, CheckpointSigner, SignatureProblem,
};
pub use db::{AuditLog, Engine};
pub use error::{AuditError, Result};
pub use event::{
    canonical_json, EventKind, NewEvent, StoredEvent, MAX_NAME_CHARS, MAX_SUMMARY_BYTES,
};
pub use export::{csv_line, export_csv, rfc3339_ms, ExportRange, CSV_HEADER};
pub use import::{ImportReport, Importer};
pub use published::PublishedCheckpoints;
pub use verify::{Finding, Problem, VerifyOptions, VerifyReport};
pub use writer::AuditWriter;

/// Current time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
