//! Tampering with the stored chain: each kind is detected, at its position, on both engines.

use blindledger_audit::chain::{format_hash, parse_hash, row_hash, RowFields};
use blindledger_audit::{
    AuditLog, CheckpointKeys, CheckpointSigner, Problem, PublishedCheckpoints, SignatureProblem,
    StoredEvent, VerifyOptions, VerifyReport,
};
use blindledger_test_support::TestDatabase;

use crate::helpers::{database, events, exec, open_log, signer, On};

/// A chain of 20 rows with a checkpoint at 20, and the keys verifying it.
async fn chain(db: &TestDatabase) -> (AuditLog, CheckpointSigner, CheckpointKeys) {
    let log = open_log(db).await;
    let (signer, keys) = signer("audit-1");
    log.append_batch(&events(10)).await.unwrap();
    log.checkpoint(&signer).await.unwrap().unwrap();
    log.append_batch(&events(10)).await.unwrap();
    log.checkpoint(&signer).await.unwrap().unwrap();
    let clean = verify(&log, &keys).await;
    assert!(clean.ok, "{clean:?}");
    assert_eq!((clean.rows_checked, clean.checkpoints_checked), (20, 2));
    (log, signer, keys)
}

async fn verify(log: &AuditLog, keys: &CheckpointKeys) -> VerifyReport {
    log.verify(keys, &VerifyOptions::default()).await.unwrap()
}

/// Asserts the first finding is `problem` at `position`.
fn first(report: &VerifyReport, position: i64, problem: Problem) {
    let finding = report
        .first_problem
        .as_ref()
        .expect("a problem is reported");
    assert!(!report.ok);
    assert_eq!(
        (finding.position, &finding.problem),
        (position, &problem),
        "{report:#?}"
    );
}

async fn row(log: &AuditLog, seq: i64) -> StoredEvent {
    let range = blindledger_audit::ExportRange::default();
    log.events_in(&range, seq - 1, 1).await.unwrap().remove(0)
}

/// Rewrites row `seq` with its hash recomputed from its stored `prev_hash`.
async fn rehash(log: &AuditLog, seq: i64) -> String {
    let r = row(log, seq).await;
    let fields = RowFields {
        seq: r.seq,
        kind: &r.kind,
        occurred_at: r.occurred_at,
        principal: &r.principal,
        subject: &r.subject,
        summary: &r.summary,
    };
    let hash = format_hash(&row_hash(&fields, &parse_hash(&r.prev_hash).unwrap()));
    exec(
        log,
        &format!("UPDATE audit_events SET hash = '{hash}' WHERE seq = {seq}"),
    )
    .await;
    hash
}

async fn edited_field(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    exec(
        &log,
        "UPDATE audit_events SET principal = 'mallory' WHERE seq = 7",
    )
    .await;
    first(&verify(&log, &keys).await, 7, Problem::Edited { seq: 7 });
    // The same edit with the row's hash recomputed breaks the next link instead.
    rehash(&log, 7).await;
    first(
        &verify(&log, &keys).await,
        8,
        Problem::BrokenLink { seq: 8 },
    );
    db.drop_db().await.unwrap();
}

async fn deleted_row(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    exec(&log, "DELETE FROM audit_events WHERE seq = 5").await;
    first(
        &verify(&log, &keys).await,
        5,
        Problem::Missing { first: 5, last: 5 },
    );
    db.drop_db().await.unwrap();
}

async fn swapped_rows(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    exec(&log, "UPDATE audit_events SET seq = -13 WHERE seq = 13").await;
    exec(&log, "UPDATE audit_events SET seq = 13 WHERE seq = 12").await;
    exec(&log, "UPDATE audit_events SET seq = 12 WHERE seq = -13").await;
    first(
        &verify(&log, &keys).await,
        12,
        Problem::Swapped {
            first: 12,
            second: 13,
        },
    );
    db.drop_db().await.unwrap();
}

async fn inserted_rows(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    // In the middle: rows from 10 on move up one, a well-formed row takes seq 10.
    exec(
        &log,
        "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 10",
    )
    .await;
    exec(
        &log,
        "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000",
    )
    .await;
    let nine = row(&log, 9).await;
    exec(&log, &format!(
        "INSERT INTO audit_events (seq, kind, occurred_at, principal, subject, summary, prev_hash, hash) \
         VALUES (10, 'decision', 1, 'mallory', 'acme/x', '{{}}', '{}', 'pending')", nine.hash)).await;
    rehash(&log, 10).await;
    let report = verify(&log, &keys).await;
    first(
        &report,
        10,
        Problem::CheckpointMismatch {
            checkpoint: 1,
            size: 10,
        },
    );
    let shifted = Problem::Moved {
        seq: 11,
        belongs_at: 10,
        last: 21,
    };
    assert!(
        report
            .problems
            .iter()
            .any(|f| f.position == 11 && f.problem == shifted),
        "{report:#?}"
    );
    db.drop_db().await.unwrap();

    // At the tail, past the head, with a valid hash.
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    let last = row(&log, 20).await;
    exec(&log, &format!(
        "INSERT INTO audit_events (seq, kind, occurred_at, principal, subject, summary, prev_hash, hash) \
         VALUES (21, 'decision', 1, 'mallory', 'acme/x', '{{}}', '{}', 'pending')", last.hash)).await;
    rehash(&log, 21).await;
    first(
        &verify(&log, &keys).await,
        21,
        Problem::BeyondHead {
            first: 21,
            head: 20,
        },
    );
    db.drop_db().await.unwrap();
}

async fn truncated_tail(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    let fifteen = row(&log, 15).await;
    exec(&log, "DELETE FROM audit_events WHERE seq > 15").await;
    exec(
        &log,
        &format!("UPDATE audit_head SET size = 15, hash = '{}'", fifteen.hash),
    )
    .await;
    let report = verify(&log, &keys).await;
    first(
        &report,
        16,
        Problem::Truncated {
            checkpoint: 2,
            size: 20,
            rows: 15,
        },
    );
    db.drop_db().await.unwrap();
}

async fn rewritten_chain(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    // Edit row 3 and recompute every hash after it: only the checkpoints can tell.
    exec(
        &log,
        "UPDATE audit_events SET subject = 'acme/other' WHERE seq = 3",
    )
    .await;
    let mut prev = rehash(&log, 3).await;
    for seq in 4..=20 {
        exec(
            &log,
            &format!("UPDATE audit_events SET prev_hash = '{prev}' WHERE seq = {seq}"),
        )
        .await;
        prev = rehash(&log, seq).await;
    }
    exec(&log, &format!("UPDATE audit_head SET hash = '{prev}'")).await;
    first(
        &verify(&log, &keys).await,
        10,
        Problem::CheckpointMismatch {
            checkpoint: 1,
            size: 10,
        },
    );
    db.drop_db().await.unwrap();
}

async fn forged_checkpoints(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    // Signed by another key under the service's key id.
    let (forger, _) = signer("audit-1");
    let forged = forger.sign(20, &log.head().await.unwrap().hash, 5);
    insert_checkpoint(&log, &forged).await;
    first(
        &verify(&log, &keys).await,
        20,
        Problem::CheckpointSignature {
            checkpoint: 3,
            reason: SignatureProblem::BadSignature,
        },
    );
    exec(&log, "DELETE FROM audit_checkpoints WHERE id = 3").await;
    // An authentic checkpoint altered after signing.
    exec(&log, "UPDATE audit_checkpoints SET size = 9 WHERE id = 1").await;
    first(
        &verify(&log, &keys).await,
        9,
        Problem::CheckpointSignature {
            checkpoint: 1,
            reason: SignatureProblem::BadSignature,
        },
    );
    exec(&log, "UPDATE audit_checkpoints SET size = 10 WHERE id = 1").await;
    // Signed by a key the verifier does not know.
    let (stranger, _) = signer("other");
    insert_checkpoint(&log, &stranger.sign(20, &log.head().await.unwrap().hash, 5)).await;
    let report = verify(&log, &keys).await;
    let reason = SignatureProblem::UnknownKey("other".into());
    first(
        &report,
        20,
        Problem::CheckpointSignature {
            checkpoint: 4,
            reason,
        },
    );
    db.drop_db().await.unwrap();
}

/// A database writer deletes the checkpoints and the tail, and moves the head back: alone,
/// the database looks intact; against the checkpoints published outside it, it is not.
async fn cut_tail_against_published_checkpoints(on: On) {
    let db = database(on).await;
    let (log, _, keys) = chain(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let published = PublishedCheckpoints::local(dir.path()).unwrap();
    for checkpoint in log.checkpoints().await.unwrap() {
        published.publish(&checkpoint).await.unwrap();
        // Publishing again is a no-op, never a replacement.
        published.publish(&checkpoint).await.unwrap();
    }
    let (published, log_ref, keys_ref) = (&published, &log, &keys);
    let with_published = |max_unpublished_ms| async move {
        let options = VerifyOptions {
            external_checkpoints: published.list().await.unwrap(),
            max_unpublished_ms,
            ..VerifyOptions::default()
        };
        log_ref.verify(keys_ref, &options).await.unwrap()
    };
    let clean = with_published(Some(60_000)).await;
    assert!(clean.ok, "{clean:#?}");

    let fifteen = row(&log, 15).await;
    exec(&log, "DELETE FROM audit_checkpoints").await;
    exec(&log, "DELETE FROM audit_events WHERE seq > 15").await;
    exec(
        &log,
        &format!("UPDATE audit_head SET size = 15, hash = '{}'", fifteen.hash),
    )
    .await;
    assert!(
        verify(&log, &keys).await.ok,
        "undetectable from the database alone"
    );

    let report = with_published(None).await;
    first(&report, 10, Problem::CheckpointDeleted { size: 10 });
    let problems: Vec<_> = report.problems.iter().map(|f| &f.problem).collect();
    assert!(problems.contains(&&Problem::CheckpointDeleted { size: 20 }));
    assert!(problems.contains(&&Problem::Truncated {
        checkpoint: 0,
        size: 20,
        rows: 15
    }));
    db.drop_db().await.unwrap();
}

/// Rows no published checkpoint covers are reported once they waited longer than allowed,
/// and published checkpoints that do not follow each other are reported.
async fn unpublished_rows_and_published_order(on: On) {
    let db = database(on).await;
    let (log, signer, keys) = chain(&db).await;
    let stored = log.checkpoints().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let published = PublishedCheckpoints::local(dir.path()).unwrap();
    published.publish(&stored[0]).await.unwrap();
    let published = &published;
    let options = |max_unpublished_ms| async move {
        VerifyOptions {
            external_checkpoints: published.list().await.unwrap(),
            max_unpublished_ms: Some(max_unpublished_ms),
            ..VerifyOptions::default()
        }
    };
    // Rows 11-20 (written in 2023) are covered by the stored checkpoint only, which was
    // not published: within an allowance of a century, but not of a minute.
    const CENTURY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
    let fresh = log.verify(&keys, &options(CENTURY_MS).await).await.unwrap();
    assert!(fresh.ok, "{fresh:#?}");
    let stale = log.verify(&keys, &options(60_000).await).await.unwrap();
    assert!(
        matches!(
            stale
                .first_problem
                .as_ref()
                .map(|f| (f.position, &f.problem)),
            Some((
                11,
                Problem::Unpublished {
                    published: 10,
                    head: 20,
                    ..
                }
            ))
        ),
        "{stale:#?}"
    );

    // A checkpoint of 5 rows signed after the one of 10 (and put in both places).
    let late = signer.sign(
        5,
        &parse_hash(&row(&log, 5).await.hash).unwrap(),
        stored[0].created_at + 1,
    );
    insert_checkpoint(&log, &late).await;
    published.publish(&late).await.unwrap();
    let report = log.verify(&keys, &options(CENTURY_MS).await).await.unwrap();
    first(
        &report,
        5,
        Problem::CheckpointOrder {
            size: 5,
            earlier_size: 10,
        },
    );
    db.drop_db().await.unwrap();
}

async fn insert_checkpoint(log: &AuditLog, c: &blindledger_audit::Checkpoint) {
    exec(
        log,
        &format!(
            "INSERT INTO audit_checkpoints (size, head_hash, created_at, key_id, signature) \
         VALUES ({}, '{}', {}, '{}', '{}')",
            c.size, c.head_hash, c.created_at, c.key_id, c.signature
        ),
    )
    .await;
}

macro_rules! on_both {
    ($($case:ident),*) => {
        mod sqlite {
            $(#[tokio::test] async fn $case() { super::$case(super::On::Sqlite).await; })*
        }
        mod mariadb {
            $(#[tokio::test] async fn $case() { super::$case(super::On::MariaDb).await; })*
        }
    };
}

on_both!(
    cut_tail_against_published_checkpoints,
    unpublished_rows_and_published_order,
    edited_field,
    deleted_row,
    swapped_rows,
    inserted_rows,
    truncated_tail,
    rewritten_chain,
    forged_checkpoints
);
