//! Archived segments of the trail (written, verified, pruned from the database, tampered
//! with) and the retention of the trail's sources.

use std::time::Duration;

use blindledger_audit::retention::Retention;
use blindledger_audit::{now_ms, Archive, AuditLog, Importer, VerifyOptions};
use sqlx::Row;

use crate::helpers::{database, events, exec, open_log, signer, On};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn local_archive(dir: &std::path::Path) -> Archive {
    Archive::new(
        blindledger_store::open_object_store(&format!("file://{}", dir.display())).unwrap(),
    )
}

async fn count(log: &AuditLog, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(log.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn archived_rows_leave_the_database_and_still_verify(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let (signer, keys) = signer("audit-1");
    let dir = tempfile::tempdir().unwrap();
    let archive = local_archive(dir.path());

    log.append_batch(&events(20)).await.unwrap();
    let first = log.checkpoint(&signer).await.unwrap().unwrap();
    let segment = archive.append(&log, &first, &keys).await.unwrap().unwrap();
    assert_eq!((segment.first_seq, segment.last_seq), (1, 20));
    assert!(
        archive.append(&log, &first, &keys).await.unwrap().is_none(),
        "nothing new to archive"
    );
    log.append_batch(&events(5)).await.unwrap();
    let second = log.checkpoint(&signer).await.unwrap().unwrap();
    let segment = archive.append(&log, &second, &keys).await.unwrap().unwrap();
    assert_eq!((segment.first_seq, segment.last_seq), (21, 25));
    let report = archive.verify(&keys).await.unwrap();
    assert_eq!((report.segments, report.rows), (2, 25));

    assert_eq!(log.prune_archived(&archive, &keys).await.unwrap(), 25);
    assert_eq!(count(&log, "SELECT COUNT(*) FROM audit_events").await, 0);
    log.append_batch(&events(5)).await.unwrap();

    let with_archive = VerifyOptions {
        archived_through: report.through.clone(),
        ..VerifyOptions::default()
    };
    let verified = log.verify(&keys, &with_archive).await.unwrap();
    assert!(verified.ok, "{verified:#?}");
    assert_eq!((verified.rows_checked, verified.head_size), (5, 30));
    // Without the archive the pruned rows are missing, and that is reported.
    let alone = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(!alone.ok);
    // The first row after the archive edited: found, at its position.
    exec(
        &log,
        "UPDATE audit_events SET principal = 'mallory' WHERE seq = 26",
    )
    .await;
    let edited = log.verify(&keys, &with_archive).await.unwrap();
    assert_eq!(edited.first_problem.unwrap().position, 26);
}

async fn tampered_archives_are_refused(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let (signer, keys) = signer("audit-1");
    let dir = tempfile::tempdir().unwrap();
    let archive = local_archive(dir.path());
    log.append_batch(&events(10)).await.unwrap();
    let first = log.checkpoint(&signer).await.unwrap().unwrap();
    archive.append(&log, &first, &keys).await.unwrap().unwrap();
    log.append_batch(&events(10)).await.unwrap();
    let second = log.checkpoint(&signer).await.unwrap().unwrap();
    archive.append(&log, &second, &keys).await.unwrap().unwrap();
    archive.verify(&keys).await.unwrap();

    let segments = dir.path().join("segments");
    let file = segments.join(format!("{:020}-{:020}.jsonl", 11, 20));
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let refused = |text: String| {
        let file = file.clone();
        let keys = keys.clone();
        let archive = archive.clone();
        async move {
            std::fs::write(&file, text).unwrap();
            let error = archive.verify(&keys).await.unwrap_err().to_string();
            error
        }
    };
    let edited = original.replacen("\"principal\":\"user-", "\"principal\":\"mallory-", 1);
    assert!(refused(edited).await.contains("(edited)"));
    let mut deleted = lines.clone();
    deleted.remove(3);
    assert!(refused(deleted.join("\n"))
        .await
        .contains("deleted, inserted or reordered"));
    let mut reordered = lines.clone();
    reordered.swap(2, 3);
    assert!(refused(reordered.join("\n"))
        .await
        .contains("deleted, inserted or reordered"));
    let truncated = lines[..lines.len() - 2].join("\n");
    assert!(refused(truncated).await.contains("truncated"));
    // A checkpoint signed by another key, over a forged head.
    let (forger, _) = crate::helpers::signer("audit-1");
    let forged_checkpoint = forger.sign(20, &[7; 32], now_ms());
    let mut header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    header["checkpoint"] = serde_json::to_value(&forged_checkpoint).unwrap();
    let mut forged = vec![header.to_string()];
    forged.extend(lines[1..].iter().map(|l| l.to_string()));
    assert!(refused(forged.join("\n")).await.contains("not authentic"));
    // A missing segment breaks the continuity of the rest.
    std::fs::write(&file, &original).unwrap();
    archive.verify(&keys).await.unwrap();
    std::fs::remove_file(segments.join(format!("{:020}-{:020}.jsonl", 1, 10))).unwrap();
    let error = archive.verify(&keys).await.unwrap_err().to_string();
    assert!(error.contains("a segment is missing"), "{error}");
    // Nothing is pruned from a database whose archive does not verify.
    assert!(log.prune_archived(&archive, &keys).await.is_err());
    assert_eq!(count(&log, "SELECT COUNT(*) FROM audit_events").await, 20);
}

/// A decision-log row `age_ms` old.
async fn decision(log: &AuditLog, n: i64, age_ms: i64) {
    sqlx::query(
        "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, revisions, event) \
         VALUES (?, ?, 'alice', '/blindledger.ledger.v1.LedgerService/Deposit', 1, '{}', ?)",
    )
    .bind(format!("d-{n}"))
    .bind(now_ms() - age_ms)
    .bind(br#"{"input":{"resource":{"tenant":"acme","account":"alice"}},"result":{"allow":true}}"#.to_vec())
    .execute(log.pool())
    .await
    .unwrap();
}

async fn job(log: &AuditLog, id: &str, state: &str, age_ms: i64) {
    let at = now_ms() - age_ms;
    exec(log, &format!(
        "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, idempotency_key, request_hash, \
         payload, params, created_at, updated_at) VALUES ('{id}', 'acme', 'deposit', '{state}', 'alice', \
         NULL, '{id}', 'h', X'0102', '{{}}', {at}, {at})")).await;
}

async fn retention_prunes_only_what_the_trail_holds(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let too_short = Retention {
        decision_log: Some(Duration::from_secs(3600)),
        ..Retention::default()
    };
    assert!(log.prune_sources(&too_short, now_ms()).await.is_err());

    for n in 0..3 {
        decision(&log, n, 3 * DAY_MS).await;
    }
    decision(&log, 3, 1_000).await;
    job(&log, "old-done", "COMMITTED", 3 * DAY_MS).await;
    job(&log, "old-running", "RUNNING", 3 * DAY_MS).await;
    job(&log, "new-done", "COMMITTED", 20_000).await;
    let retention = Retention {
        decision_log: Some(Duration::from_secs(2 * 24 * 3600)),
        job_ciphertexts: Some(Duration::from_secs(2 * 24 * 3600)),
        jobs: None,
    };
    // Nothing is in the trail yet: nothing leaves, however old.
    let report = log.prune_sources(&retention, now_ms()).await.unwrap();
    assert_eq!(report, Default::default());
    let imported = Importer::new(log.clone())
        .with_settle_ms(0)
        .run_once()
        .await
        .unwrap();
    assert_eq!(
        (
            imported.decisions,
            imported.job_transitions,
            imported.set_aside
        ),
        (4, 3, 0),
        "{imported:?}"
    );
    // Logged after the import (its time is the ledger's clock): not in the trail yet.
    decision(&log, 4, 3 * DAY_MS).await;

    let report = log.prune_sources(&retention, now_ms()).await.unwrap();
    assert_eq!(
        (
            report.decisions_deleted,
            report.job_ciphertexts_cleared,
            report.jobs_deleted
        ),
        (3, 1, 0)
    );
    assert_eq!(count(&log, "SELECT COUNT(*) FROM decision_log").await, 2);
    let with_payload = |id: &'static str| {
        let log = log.clone();
        async move {
            count(
                &log,
                &format!("SELECT COUNT(*) FROM jobs WHERE id = '{id}' AND payload IS NOT NULL"),
            )
            .await
        }
    };
    assert_eq!(with_payload("old-done").await, 0, "ciphertext cleared");
    for kept in ["old-running", "new-done"] {
        assert_eq!(with_payload(kept).await, 1, "{kept} keeps its ciphertext");
    }

    let jobs_too = Retention {
        jobs: Some(Duration::from_secs(2 * 24 * 3600)),
        ..retention
    };
    let report = log.prune_sources(&jobs_too, now_ms()).await.unwrap();
    assert_eq!(report.jobs_deleted, 1);
    assert_eq!(
        count(&log, "SELECT COUNT(*) FROM jobs WHERE id = 'old-done'").await,
        0
    );
    assert_eq!(count(&log, "SELECT COUNT(*) FROM jobs").await, 2);
    // The trail still verifies: sources leaving changes nothing in it.
    let (_, keys) = signer("audit-1");
    assert!(
        log.verify(&keys, &VerifyOptions::default())
            .await
            .unwrap()
            .ok
    );
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
    archived_rows_leave_the_database_and_still_verify,
    tampered_archives_are_refused,
    retention_prunes_only_what_the_trail_holds
);
