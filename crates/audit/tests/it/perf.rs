//! Throughput with a million rows (ignored by default; run with `--ignored --nocapture`):
//! batch, sequential single and concurrent single appends, then a full verification.
//! `BLINDLEDGER_AUDIT_PERF_ROWS` changes the row count.

use std::time::Instant;

use blindledger_audit::{AuditLog, AuditWriter, EventKind, NewEvent, VerifyOptions};
use blindledger_test_support::TestDatabase;
use serde_json::json;

use crate::helpers::{database, open_log, signer, On};

const METHODS: [&str; 4] = ["Transfer", "Deposit", "Withdraw", "Aggregate"];

/// A realistic decision event: 1,000 principals, 10,000 accounts, 7 days.
pub fn decision(i: i64) -> NewEvent {
    let method = format!(
        "/blindledger.ledger.v1.LedgerService/{}",
        METHODS[(i % 4) as usize]
    );
    NewEvent::new(
        EventKind::Decision,
        1_700_000_000_000 + i * 600,
        format!("user-{}", i % 1000),
        format!("tenant-{}/acct-{}", i % 10, i % 10_000),
        json!({
            "decision_id": format!("0190c6c2-{i:012}"),
            "log_seq": i,
            "method": method,
            "outcome": if i % 10 == 0 { "deny" } else { "allow" },
            "revision": format!("rev-{}", i / 200_000),
            "revisions": {"blindledger": format!("rev-{}", i / 200_000), "risk": "r-12"},
            "reasons": if i % 10 == 0 { json!(["velocity above tier limit"]) } else { json!([]) },
        }),
    )
}

fn rows() -> i64 {
    std::env::var("BLINDLEDGER_AUDIT_PERF_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn rate(n: i64, started: Instant) -> f64 {
    n as f64 / started.elapsed().as_secs_f64()
}

async fn throughput(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let total = rows();
    let started = Instant::now();
    for start in (0..total).step_by(1000) {
        let batch: Vec<_> = (start..(start + 1000).min(total)).map(decision).collect();
        log.append_batch(&batch).await.unwrap();
    }
    println!(
        "{on:?}: batch append (1000/tx): {total} rows, {:.0} events/s",
        rate(total, started)
    );

    let started = Instant::now();
    for i in 0..1000 {
        log.append(decision(total + i)).await.unwrap();
    }
    println!(
        "{on:?}: single append, sequential: {:.0} events/s",
        rate(1000, started)
    );

    let writer = AuditWriter::spawn(log.clone(), 512);
    let started = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for i in 0..200 {
                    writer.append(decision(t * 1000 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    println!(
        "{on:?}: single append, 64 concurrent callers (group commit): {:.0} events/s",
        rate(64 * 200, started)
    );

    let (_, keys) = signer("audit-1");
    let started = Instant::now();
    let report = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok);
    println!(
        "{on:?}: verify: {} rows, {:.0} rows/s",
        report.rows_checked,
        rate(report.rows_checked, started)
    );
    keep_or_cleanup(db, &log).await;
}

/// Keeps the database for the dashboard bench when `BLINDLEDGER_AUDIT_PERF_KEEP` is set.
async fn keep_or_cleanup(db: TestDatabase, log: &AuditLog) {
    if std::env::var_os("BLINDLEDGER_AUDIT_PERF_KEEP").is_some() {
        println!("kept: {}", db.url());
        std::mem::forget(db);
    } else {
        log.close().await;
        db.drop_db().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million rows: run with --ignored --nocapture"]
async fn throughput_on_sqlite() {
    throughput(On::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million rows: run with --ignored --nocapture"]
async fn throughput_on_mariadb() {
    throughput(On::MariaDb).await;
}
