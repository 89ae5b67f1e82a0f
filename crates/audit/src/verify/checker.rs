//! Row-by-row checks of the chain, independent of where the rows come from.

use crate::chain::{format_hash, parse_hash, row_hash, ChainHash, RowFields};
use crate::event::StoredEvent;
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

    /// Checks one row, in seq order; `content_ok` is [`content_matches`] of the row,
    /// computed beforehand (in parallel). After a finding the checker resynchronises on
    /// the row's stored values, so one tampered row is reported once, not as a cascade.
    pub(crate) fn check(&mut self, row: &StoredEvent, content_ok: bool) {
        if row.seq != self.expected {
            self.report(
                self.expected,
                Problem::Missing {
                    first: self.expected,
                    last: row.seq - 1,
                },
            );
        }
        let (Some(stored_prev), Some(stored_hash)) =
            (parse_hash(&row.prev_hash), parse_hash(&row.hash))
        else {
            self.report(row.seq, Problem::Unreadable { seq: row.seq });
            self.expected = row.seq + 1;
            return;
        };
        let linked = stored_prev == self.prev;
        if !content_ok {
            self.report(
                row.seq,
                self.content_problem(row, &stored_prev, &stored_hash),
            );
        } else if !linked && row.seq == self.expected {
            self.report(row.seq, Problem::BrokenLink { seq: row.seq });
        }
        self.prev = stored_hash;
        self.expected = row.seq + 1;
    }

    /// Tells an edited row from one whose content belongs at another position.
    fn content_problem(&self, row: &StoredEvent, prev: &ChainHash, stored: &ChainHash) -> Problem {
        for offset in (1..=MOVE_SEARCH).flat_map(|d| [d, -d]) {
            let candidate = row.seq + offset;
            if candidate >= 1 && &content_hash(row, candidate, prev) == stored {
                return Problem::Moved {
                    seq: row.seq,
                    belongs_at: candidate,
                    last: row.seq,
                };
            }
        }
        Problem::Edited { seq: row.seq }
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

/// Whether a row's content, at its own seq and after its own `prev_hash`, hashes to its
/// stored hash (false when a hash is unreadable).
pub(crate) fn content_matches(row: &StoredEvent) -> bool {
    match (parse_hash(&row.prev_hash), parse_hash(&row.hash)) {
        (Some(prev), Some(hash)) => content_hash(row, row.seq, &prev) == hash,
        _ => false,
    }
}

fn content_hash(row: &StoredEvent, seq: i64, prev: &ChainHash) -> ChainHash {
    row_hash(
        &RowFields {
            seq,
            kind: &row.kind,
            occurred_at: row.occurred_at,
            principal: &row.principal,
            subject: &row.subject,
            summary: &row.summary,
        },
        prev,
    )
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
