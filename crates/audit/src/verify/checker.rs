//! Row-by-row checks of the chain, independent of where the rows come from.

use crate::chain::{format_hash, parse_raw_hash, raw_row_hash, ChainHash, RawFields};
use crate::verify::{Finding, Problem};

/// How far from its position a row's content is looked for when its hash does not match
/// there (a swapped or shifted row hashes correctly at its original position).
const MOVE_SEARCH: i64 = 3;

/// The running state of a verification.
#[derive(Debug)]
pub(crate) struct ChainChecker {
    /// The seq the next row must have.
    pub(crate) expected: i64,
    /// The stored hash of the last row seen (what the next row's `prev_hash` must be).
    pub(crate) prev: ChainHash,
    pub(crate) findings: Vec<Finding>,
}

impl ChainChecker {
    /// Starts after `size` rows whose last hash is `prev`.
    pub(crate) fn starting_after(size: i64, prev: ChainHash) -> Self {
        ChainChecker {
            expected: size + 1,
            prev,
            findings: Vec::new(),
        }
    }

    /// Checks one row, in seq order. After a finding the checker resynchronises on the
    /// row's stored values, so one tampered row is reported once, not as a cascade.
    pub(crate) fn check(&mut self, row: &CheckedRow) {
        if row.seq != self.expected {
            self.report(
                self.expected,
                Problem::Missing {
                    first: self.expected,
                    last: row.seq - 1,
                },
            );
        }
        let (Some(stored_prev), Some(stored_hash)) = (row.prev, row.hash) else {
            self.report(row.seq, Problem::Unreadable { seq: row.seq });
            self.expected = row.seq + 1;
            return;
        };
        let linked = stored_prev == self.prev;
        match row.content {
            Content::Matches if !linked && row.seq == self.expected => {
                self.report(row.seq, Problem::BrokenLink { seq: row.seq });
            }
            Content::Matches => {}
            Content::Edited => self.report(row.seq, Problem::Edited { seq: row.seq }),
            Content::BelongsAt(belongs_at) => self.report(
                row.seq,
                Problem::Moved {
                    seq: row.seq,
                    belongs_at,
                    last: row.seq,
                },
            ),
        }
        self.prev = stored_hash;
        self.expected = row.seq + 1;
    }

    /// Checks the running hash against a checkpoint covering `size` rows.
    pub(crate) fn at_checkpoint(&mut self, id: i64, size: i64, head_hash: &str) {
        if format_hash(&self.prev) != head_hash.trim() {
            self.report(
                size,
                Problem::CheckpointMismatch {
                    checkpoint: id,
                    size,
                },
            );
        }
    }

    pub(crate) fn report(&mut self, position: i64, problem: Problem) {
        self.findings.push(Finding::new(position, problem));
    }
}

/// What a row's content hashes to, against its stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// At its own seq, after its own `prev_hash`: its content is intact.
    Matches,
    /// At no nearby seq either: a field was changed.
    Edited,
    /// Only at another seq: the row was moved there (swapped, shifted).
    BelongsAt(i64),
}

/// A row reduced to what the chain checks: its seq, parsed hashes and content verdict.
/// Computed away from the checker (pages are hashed in parallel) from borrowed column data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedRow {
    pub(crate) seq: i64,
    /// `None` when the column is not 64 hex digits.
    pub(crate) prev: Option<ChainHash>,
    pub(crate) hash: Option<ChainHash>,
    pub(crate) content: Content,
}

impl CheckedRow {
    /// Hashes `row` at its own seq and, when that does not match, at the seqs around it.
    pub(crate) fn new(row: &RawFields<'_>, prev_hash: &[u8], hash: &[u8]) -> Self {
        let (prev, hash) = (parse_raw_hash(prev_hash), parse_raw_hash(hash));
        let content = match (&prev, &hash) {
            (Some(prev), Some(stored)) => content(row, prev, stored),
            _ => Content::Edited,
        };
        CheckedRow {
            seq: row.seq,
            prev,
            hash,
            content,
        }
    }
}

fn content(row: &RawFields<'_>, prev: &ChainHash, stored: &ChainHash) -> Content {
    if &raw_row_hash(row, prev) == stored {
        return Content::Matches;
    }
    for offset in (1..=MOVE_SEARCH).flat_map(|d| [d, -d]) {
        let candidate = row.seq + offset;
        let moved = RawFields {
            seq: candidate,
            ..*row
        };
        if candidate >= 1 && &raw_row_hash(&moved, prev) == stored {
            return Content::BelongsAt(candidate);
        }
    }
    Content::Edited
}

/// Merges `Moved(a → b)` and `Moved(b → a)` into one `Swapped(a, b)`, and runs of rows
/// shifted by the same distance into one `Moved`.
pub(crate) fn merge_moves(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for finding in findings {
        if let Problem::Moved {
            seq, belongs_at, ..
        } = finding.problem
        {
            if let Some(index) = out.iter().position(|f| is_move(f, belongs_at, seq)) {
                let (first, second) = (seq.min(belongs_at), seq.max(belongs_at));
                out[index] = Finding::new(first, Problem::Swapped { first, second });
                continue;
            }
            let previous_move = out
                .iter_mut()
                .rev()
                .find(|f| matches!(f.problem, Problem::Moved { .. }));
            if let Some(previous) = previous_move {
                if let Problem::Moved {
                    seq: start,
                    belongs_at: to,
                    last,
                } = previous.problem
                {
                    if last + 1 == seq && to - start == belongs_at - seq {
                        *previous = Finding::new(
                            start,
                            Problem::Moved {
                                seq: start,
                                belongs_at: to,
                                last: seq,
                            },
                        );
                        continue;
                    }
                }
            }
        }
        out.push(finding);
    }
    out
}

fn is_move(finding: &Finding, seq: i64, belongs_at: i64) -> bool {
    matches!(finding.problem, Problem::Moved { seq: s, belongs_at: b, last } if s == seq && b == belongs_at && last == seq)
}
