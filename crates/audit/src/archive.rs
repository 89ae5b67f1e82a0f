//! Archived segments of the trail: contiguous rows exported with the signed checkpoint
//! that covers the last of them, to object storage (a write-once bucket in production), so
//! that old rows can leave the database and still be verified.
//!
//! One object per segment, `segments/<first seq, 20 digits>-<last seq, 20 digits>.jsonl`:
//! a header line `{"format":"blindledger.audit.segment.v1","first_seq":…,"last_seq":…,
//! "prev_hash":…,"checkpoint":{…}}`, then one line per row with the eight stored columns.
//! Objects are created, never overwritten.
//!
//! A segment verifies when every row's hash is its fields' hash over its predecessor's, the
//! first row links to `prev_hash`, the seqs run from `first_seq` to `last_seq` without a
//! gap, and the checkpoint is authentic and names `last_seq` and the last row's hash. An
//! archive verifies when its segments do and each starts where the one before ends, the
//! first at row 1 after the genesis hash: an edited, deleted, inserted or reordered row, a
//! missing or truncated segment, and a forged checkpoint are each reported.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::chain::{format_hash, parse_hash, raw_row_hash, RawFields, GENESIS};
use crate::checkpoint::{Checkpoint, CheckpointKeys};
use crate::db::{stored_event, AuditLog};
use crate::error::{AuditError, Result};
use crate::event::StoredEvent;

/// Folder of the segment objects.
const PREFIX: &str = "segments";
/// Format name in every segment's header.
const FORMAT: &str = "blindledger.audit.segment.v1";
/// Most rows in one segment (about 1 KiB each: 100 MiB objects at most).
pub const MAX_SEGMENT_ROWS: i64 = 100_000;
/// Largest segment object read.
const MAX_SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
/// Most segment objects read by one verification.
const MAX_SEGMENTS: usize = 1_000_000;

/// The first line of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    format: String,
    first_seq: i64,
    last_seq: i64,
    /// Hash of row `first_seq - 1`, hex (zeros for the first segment).
    prev_hash: String,
    /// The signed checkpoint covering row `last_seq`.
    checkpoint: Checkpoint,
}

/// One stored row, as a segment line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    seq: i64,
    kind: String,
    occurred_at: i64,
    principal: String,
    subject: String,
    summary: String,
    prev_hash: String,
    hash: String,
}

impl From<StoredEvent> for Line {
    fn from(e: StoredEvent) -> Self {
        Line {
            seq: e.seq,
            kind: e.kind,
            occurred_at: e.occurred_at,
            principal: e.principal,
            subject: e.subject,
            summary: e.summary,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// What a verified archive covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    /// Segments checked.
    pub segments: usize,
    /// Rows checked (1 through `through`).
    pub rows: i64,
    /// The checkpoint of the last segment: the rows it covers are in the archive, and the
    /// database's rows after it continue from its head hash.
    pub through: Option<Checkpoint>,
}

/// A segment just written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedSegment {
    /// The object's name in the store.
    pub object: String,
    /// First row.
    pub first_seq: i64,
    /// Last row (the checkpoint's size).
    pub last_seq: i64,
    /// Size of the object in bytes.
    pub bytes: usize,
}

/// The archive: segments in an object store.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
}

impl Archive {
    /// An archive in `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Verifies every segment and their continuity; the first problem is the error, naming
    /// the segment and the row.
    pub async fn verify(&self, keys: &CheckpointKeys) -> Result<ArchiveReport> {
        let mut report = ArchiveReport {
            segments: 0,
            rows: 0,
            through: None,
        };
        let mut expected_prev = GENESIS;
        for (name, size) in self.segment_names().await? {
            let bytes = self.read(&name, size).await?;
            let header = verify_segment(&name, &bytes, keys)?;
            let prev = parse_hash(&header.prev_hash).unwrap_or([0xff; 32]);
            if header.first_seq != report.rows + 1 || prev != expected_prev {
                return Err(AuditError::Corrupt(format!(
                    "archive segment {name}: starts at row {} but the archive so far ends at row {} \
                     (a segment is missing, or this one does not continue the chain)",
                    header.first_seq, report.rows
                )));
            }
            expected_prev = parse_hash(&header.checkpoint.head_hash).unwrap_or([0xff; 32]);
            report.rows = header.last_seq;
            report.segments += 1;
            report.through = Some(header.checkpoint);
        }
        Ok(report)
    }

    /// Segment object names with their sizes, in chain order.
    async fn segment_names(&self) -> Result<Vec<(String, u64)>> {
        let metas: Vec<_> = self
            .store
            .list(Some(&Path::from(PREFIX)))
            .try_collect()
            .await
            .map_err(storage)?;
        if metas.len() > MAX_SEGMENTS {
            return Err(AuditError::Corrupt(format!(
                "more than {MAX_SEGMENTS} archive segments"
            )));
        }
        let mut names: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        // Zero-padded seqs: the names sort in chain order.
        names.sort();
        Ok(names)
    }

    async fn read(&self, name: &str, size: u64) -> Result<Vec<u8>> {
        if size > MAX_SEGMENT_BYTES {
            return Err(AuditError::Corrupt(format!(
                "archive segment {}: {size} bytes, more than {MAX_SEGMENT_BYTES}",
                excerpt(name)
            )));
        }
        Ok(self
            .store
            .get(&Path::from(name))
            .await
            .map_err(storage)?
            .bytes()
            .await
            .map_err(storage)?
            .to_vec())
    }

    /// Writes the rows after the archive's end through `checkpoint` (an authentic
    /// checkpoint of this trail) as one segment, reads it back and verifies it. `None` when
    /// the archive already reaches the checkpoint.
    pub async fn append(
        &self,
        log: &AuditLog,
        checkpoint: &Checkpoint,
        keys: &CheckpointKeys,
    ) -> Result<Option<ArchivedSegment>> {
        keys.verify(checkpoint).map_err(|problem| {
            AuditError::Corrupt(format!(
                "checkpoint {} is not authentic: {problem}",
                checkpoint.id
            ))
        })?;
        let so_far = self.verify(keys).await?;
        let first_seq = so_far.rows + 1;
        if checkpoint.size < first_seq {
            return Ok(None);
        }
        if checkpoint.size - first_seq + 1 > MAX_SEGMENT_ROWS {
            return Err(AuditError::InvalidEvent(format!(
                "a segment holds at most {MAX_SEGMENT_ROWS} rows: archive up to an earlier \
                 checkpoint first"
            )));
        }
        let rows = sqlx::query(
            "SELECT seq, kind, occurred_at, principal, subject, summary, prev_hash, hash \
             FROM audit_events WHERE seq >= ? AND seq <= ? ORDER BY seq",
        )
        .bind(first_seq)
        .bind(checkpoint.size)
        .fetch_all(log.pool())
        .await?;
        let prev_hash = so_far
            .through
            .as_ref()
            .map_or_else(|| format_hash(&GENESIS), |c| c.head_hash.clone());
        let header = Header {
            format: FORMAT.to_owned(),
            first_seq,
            last_seq: checkpoint.size,
            prev_hash,
            checkpoint: Checkpoint {
                id: 0,
                ..checkpoint.clone()
            },
        };
        let mut body = serde_json::to_vec(&header).map_err(encoding)?;
        body.push(b'\n');
        for row in &rows {
            let line = Line::from(stored_event(row)?);
            body.extend(serde_json::to_vec(&line).map_err(encoding)?);
            body.push(b'\n');
        }
        let name = format!("{PREFIX}/{first_seq:020}-{:020}.jsonl", checkpoint.size);
        // Nothing unverifiable is written: the rows must already check out.
        verify_segment(&name, &body, keys)?;
        let bytes = body.len();
        self.store
            .put_opts(
                &Path::from(name.as_str()),
                PutPayload::from(body),
                PutOptions::from(PutMode::Create),
            )
            .await
            .map_err(storage)?;
        let written = self.read(&name, bytes as u64).await?;
        verify_segment(&name, &written, keys)?;
        Ok(Some(ArchivedSegment {
            object: name,
            first_seq,
            last_seq: checkpoint.size,
            bytes,
        }))
    }
}

impl AuditLog {
    /// Deletes the rows the archive holds, up to its last checkpoint, once the archive
    /// verifies: an administrator's operation (the audit service's own database user cannot
    /// delete rows of the trail). Verify the rest with [`VerifyOptions::archived_through`].
    /// Returns the rows deleted.
    ///
    /// [`VerifyOptions::archived_through`]: crate::VerifyOptions::archived_through
    pub async fn prune_archived(&self, archive: &Archive, keys: &CheckpointKeys) -> Result<u64> {
        let report = archive.verify(keys).await?;
        let Some(through) = report.through else {
            return Ok(0);
        };
        // The database's row at the boundary must be the archive's: a pruned trail is
        // verified from that hash on.
        let boundary = sqlx::query("SELECT hash FROM audit_events WHERE seq = ?")
            .bind(through.size)
            .fetch_optional(self.pool())
            .await?;
        if let Some(row) = boundary {
            let hash = crate::db::text(&row, 0)?;
            if hash != through.head_hash {
                return Err(AuditError::Corrupt(format!(
                    "row {} differs from the archive's: not pruning",
                    through.size
                )));
            }
        }
        let mut deleted = 0;
        let mut upto = 0;
        while upto < through.size {
            let next = (upto + 10_000).min(through.size);
            let done = sqlx::query("DELETE FROM audit_events WHERE seq > ? AND seq <= ?")
                .bind(upto)
                .bind(next)
                .execute(self.pool())
                .await?;
            deleted += done.rows_affected();
            upto = next;
        }
        Ok(deleted)
    }
}

/// Verifies one segment's bytes; returns its header.
fn verify_segment(name: &str, bytes: &[u8], keys: &CheckpointKeys) -> Result<Header> {
    let name = excerpt(name);
    let bad = |what: String| AuditError::Corrupt(format!("archive segment {name}: {what}"));
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let mut lines = text.lines();
    let header: Header = lines
        .next()
        .ok_or_else(|| bad("empty".into()))
        .and_then(|line| serde_json::from_str(line).map_err(|e| bad(format!("header: {e}"))))?;
    if header.format != FORMAT {
        return Err(bad(format!("unknown format {:?}", excerpt(&header.format))));
    }
    keys.verify(&header.checkpoint)
        .map_err(|problem| bad(format!("its checkpoint is not authentic: {problem}")))?;
    if header.checkpoint.size != header.last_seq {
        return Err(bad(format!(
            "its checkpoint covers {} rows, the segment ends at row {}",
            header.checkpoint.size, header.last_seq
        )));
    }
    let mut prev =
        parse_hash(&header.prev_hash).ok_or_else(|| bad("prev_hash is not hex".into()))?;
    let mut expected = header.first_seq;
    for (n, line) in lines.enumerate() {
        let line: Line =
            serde_json::from_str(line).map_err(|e| bad(format!("line {}: {e}", n + 2)))?;
        if line.seq != expected {
            return Err(bad(format!(
                "row {expected} expected, row {} found (deleted, inserted or reordered)",
                line.seq
            )));
        }
        let fields = RawFields {
            seq: line.seq,
            kind: line.kind.as_bytes(),
            occurred_at: line.occurred_at,
            principal: line.principal.as_bytes(),
            subject: line.subject.as_bytes(),
            summary: line.summary.as_bytes(),
        };
        let computed = raw_row_hash(&fields, &prev);
        if line.prev_hash != format_hash(&prev) {
            return Err(bad(format!(
                "row {}: does not link to row {}",
                line.seq,
                line.seq - 1
            )));
        }
        if line.hash != format_hash(&computed) {
            return Err(bad(format!(
                "row {}: its fields do not hash to its hash (edited)",
                line.seq
            )));
        }
        prev = computed;
        expected += 1;
    }
    if expected != header.last_seq + 1 {
        return Err(bad(format!(
            "ends at row {} instead of row {} (truncated)",
            expected - 1,
            header.last_seq
        )));
    }
    if format_hash(&prev) != header.checkpoint.head_hash {
        return Err(bad(format!(
            "row {} does not hash to its checkpoint's head",
            header.last_seq
        )));
    }
    Ok(header)
}

fn storage(error: object_store::Error) -> AuditError {
    AuditError::Read(format!("archive: {error}"))
}

fn encoding(error: serde_json::Error) -> AuditError {
    AuditError::Corrupt(format!("encoding a segment: {error}"))
}

/// A name as it may be shown: at most 100 characters.
fn excerpt(name: &str) -> String {
    name.chars().take(100).collect()
}
