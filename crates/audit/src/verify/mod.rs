//! Verification: streams the chain in seq order, recomputes every hash, follows every
//! link, checks every checkpoint's signature and head, and says where the first problem is
//! and what it is.
//!
//! What each kind of tampering looks like:
//!
//! | tampering | finding |
//! |---|---|
//! | a field edited in place | [`Problem::Edited`] at that row |
//! | a row edited and its hash recomputed | [`Problem::BrokenLink`] at the next row, or [`Problem::CheckpointMismatch`] |
//! | a row deleted | [`Problem::Missing`] at its seq |
//! | two rows' contents swapped | [`Problem::Swapped`] at the first of them |
//! | a row inserted, the following renumbered | [`Problem::Moved`] at the row after it |
//! | a row added at the tail, the head left alone | [`Problem::BeyondHead`] |
//! | the tail truncated | [`Problem::Truncated`] at the first missing seq |
//! | the whole chain rewritten consistently | [`Problem::CheckpointMismatch`] |
//! | a forged or altered checkpoint | [`Problem::CheckpointSignature`] |
//! | a checkpoint deleted from the database (published outside it) | [`Problem::CheckpointDeleted`] |
//! | the tail cut and the head moved back, checkpoints deleted | [`Problem::Truncated`] against a published checkpoint |
//! | published checkpoints out of order | [`Problem::CheckpointOrder`] |
//! | rows left unpublished past the allowed age | [`Problem::Unpublished`] |
//!
//! Rows appended after the latest checkpoint are protected by the chain only: an attacker
//! with write access can append well-formed rows at the tail until the next checkpoint, and
//! [`Problem::Unpublished`] bounds how long that may last.

mod checker;
mod read;
mod run;

use serde::Serialize;

use crate::checkpoint::{Checkpoint, SignatureProblem};

/// Rows read per query.
const PAGE_ROWS: i64 = 10_000;
/// Pages read and hashed at the same time, one per connection of the chain reader.
use crate::db::PARALLEL_PAGES;
/// Findings kept in a report after the first.
const MAX_FINDINGS: usize = 100;

/// What is wrong at a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// Rows `first..=last` are absent (deleted).
    Missing {
        /// First absent seq.
        first: i64,
        /// Last absent seq.
        last: i64,
    },
    /// The row's content does not match its hash: a field was changed.
    Edited {
        /// The row.
        seq: i64,
    },
    /// The row's content hashes correctly only at another position; so do the rows after
    /// it up to `last`, each shifted by the same distance.
    Moved {
        /// Where it is.
        seq: i64,
        /// Where it was written.
        belongs_at: i64,
        /// The last row of the run shifted alike (`seq` when alone).
        last: i64,
    },
    /// Two rows exchanged their contents.
    Swapped {
        /// The first of them.
        first: i64,
        /// The second.
        second: i64,
    },
    /// The row's `prev_hash` is not the previous row's hash: the previous row was replaced
    /// (its hash recomputed) or a row was inserted before this one.
    BrokenLink {
        /// The row.
        seq: i64,
    },
    /// Rows past the chain head: written outside the writer, which moves the head with
    /// every row it appends.
    BeyondHead {
        /// First row past the head.
        first: i64,
        /// The head's size.
        head: i64,
    },
    /// A hash column is not 64 hex digits.
    Unreadable {
        /// The row.
        seq: i64,
    },
    /// The chain ends before a checkpoint's size: its tail was removed.
    Truncated {
        /// The checkpoint.
        checkpoint: i64,
        /// Rows it covers.
        size: i64,
        /// Rows present.
        rows: i64,
    },
    /// The chain's hash at a checkpoint's size differs from the signed one.
    CheckpointMismatch {
        /// The checkpoint.
        checkpoint: i64,
        /// Rows it covers.
        size: i64,
    },
    /// A checkpoint published outside the database is not among the database's: it was
    /// deleted there.
    CheckpointDeleted {
        /// Rows it covers.
        size: i64,
    },
    /// A published checkpoint covers fewer rows than one signed before it: the published
    /// sequence does not continue.
    CheckpointOrder {
        /// Rows it covers.
        size: i64,
        /// Rows the earlier one covers.
        earlier_size: i64,
    },
    /// Rows older than the allowed age are covered by no published checkpoint: the audit
    /// service stopped publishing, or its checkpoints were removed.
    Unpublished {
        /// Rows covered by the latest published checkpoint.
        published: i64,
        /// Rows in the chain.
        head: i64,
        /// How long the oldest unpublished row has waited, in seconds.
        waiting_s: i64,
    },
    /// A checkpoint's signature is not valid.
    CheckpointSignature {
        /// The checkpoint.
        checkpoint: i64,
        /// Why.
        reason: SignatureProblem,
    },
}

/// A problem and the chain position (seq) it was found at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The first seq affected.
    pub position: i64,
    /// What is wrong.
    #[serde(flatten)]
    pub problem: Problem,
    /// The same in words.
    pub message: String,
}

impl Finding {
    fn new(position: i64, problem: Problem) -> Self {
        let message = describe(&problem);
        Finding {
            position,
            problem,
            message,
        }
    }
}

fn describe(problem: &Problem) -> String {
    match problem {
        Problem::Missing { first, last } if first == last => format!("row {first} was deleted"),
        Problem::Missing { first, last } => format!("rows {first} to {last} were deleted"),
        Problem::Edited { seq } => format!("row {seq} was edited: its content does not match its hash"),
        Problem::Moved { seq, belongs_at, last } => {
            let rows = if last > seq {
                format!("rows {seq} to {last} hold the rows written at {belongs_at} to {}", belongs_at + last - seq)
            } else {
                format!("row {seq} holds the row written at {belongs_at}")
            };
            let why = if belongs_at < seq {
                "a row was inserted before it"
            } else {
                "rows were deleted or reordered"
            };
            format!("{rows}: {why}")
        }
        Problem::Swapped { first, second } => format!("rows {first} and {second} were swapped"),
        Problem::BrokenLink { seq } => format!(
            "row {seq} does not link to row {}: that row was replaced or a row was inserted",
            seq - 1
        ),
        Problem::BeyondHead { first, head } => format!(
            "rows from {first} on lie past the chain head ({head} rows): inserted outside the writer"
        ),
        Problem::Unreadable { seq } => format!("row {seq} has an unreadable hash"),
        Problem::Truncated { checkpoint, size, rows } => format!(
            "the chain was truncated: checkpoint {checkpoint} covers {size} rows, {rows} remain"
        ),
        Problem::CheckpointMismatch { checkpoint, size } => format!(
            "the first {size} rows differ from checkpoint {checkpoint}: the chain was rewritten"
        ),
        Problem::CheckpointDeleted { size } => format!(
            "the published checkpoint of {size} rows is missing from the database: it was deleted there"
        ),
        Problem::CheckpointOrder { size, earlier_size } => format!(
            "a published checkpoint of {size} rows was signed after one of {earlier_size} rows: the sequence was rewritten"
        ),
        Problem::Unpublished { published, head, waiting_s } => format!(
            "rows {} to {head} are covered by no published checkpoint after {waiting_s} s (latest published covers {published} rows)",
            published + 1
        ),
        Problem::CheckpointSignature { checkpoint, reason } => {
            format!("checkpoint {checkpoint} is not authentic: {reason}")
        }
    }
}

/// Where to start and what else to check.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Start after this stored checkpoint (by id), trusting the rows it covers once its
    /// signature and its head row check out; from the first row when `None`.
    pub from_checkpoint: Option<i64>,
    /// Checkpoints kept outside the database (published, or an earlier export): checked
    /// like stored ones, and each must also be in the database and follow the one before.
    pub external_checkpoints: Vec<Checkpoint>,
    /// With external checkpoints: how long a row may wait for a published checkpoint to
    /// cover it (milliseconds) before [`Problem::Unpublished`] is reported.
    pub max_unpublished_ms: Option<i64>,
    /// The last checkpoint of a verified archive ([`crate::Archive::verify`]): rows up to
    /// it may have left the database (pruned after archiving); verification starts after
    /// it, from its head hash, and a row still stored at its boundary must match it.
    pub archived_through: Option<Checkpoint>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Whether nothing is wrong.
    pub ok: bool,
    /// Rows whose hash and link were checked.
    pub rows_checked: i64,
    /// Rows in the chain when verification started (its head).
    pub head_size: i64,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints_checked: usize,
    /// The first problem, by position.
    pub first_problem: Option<Finding>,
    /// Every problem found (at most 100), by position.
    pub problems: Vec<Finding>,
    /// Time taken, in milliseconds.
    pub elapsed_ms: u64,
}
