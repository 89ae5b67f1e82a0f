//! Appending: the chain grows one position per event, in order, whatever the concurrency.

use blindledger_audit::{AuditWriter, VerifyOptions};
use blindledger_test_support::TestDatabase;

use crate::helpers::{database, event, events, open_log, signer, On};

async fn appends_chain_in_order(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let first = log.append(event(1)).await.unwrap();
    assert_eq!(first.seq, 1);
    let batch = log.append_batch(&events(600)).await.unwrap();
    assert_eq!(batch.first().unwrap().seq, 2);
    assert_eq!(batch.last().unwrap().seq, 601);
    let head = log.head().await.unwrap();
    assert_eq!(head.size, 601);
    assert_eq!(
        blindledger_audit::chain::format_hash(&head.hash),
        batch[599].hash
    );

    // Concurrent single appends through the group-commit writer and directly.
    let writer = AuditWriter::spawn(log.clone(), 256);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (writer, log) = (writer.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                writer.append(event(i)).await.unwrap().seq
            } else {
                log.append(event(i)).await.unwrap().seq
            }
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (602..=801).collect::<Vec<_>>());
    let (_, keys) = signer("audit-1");
    let report = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.rows_checked, 801);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn appends_chain_in_order_on_sqlite() {
    appends_chain_in_order(On::Sqlite).await;
}

#[tokio::test]
async fn appends_chain_in_order_on_mariadb() {
    appends_chain_in_order(On::MariaDb).await;
}

#[tokio::test]
async fn events_with_amounts_are_refused_before_any_write() {
    let db = TestDatabase::sqlite().unwrap();
    let log = open_log(&db).await;
    let mut bad = event(1);
    bad.summary["balance"] = serde_json::json!(100);
    let err = log.append_batch(&[event(0), bad]).await.unwrap_err();
    assert!(err.to_string().contains("balance"), "{err}");
    assert_eq!(log.head().await.unwrap().size, 0);
    let writer = AuditWriter::spawn(log.clone(), 16);
    let mut bad = event(2);
    bad.summary["amount"] = serde_json::json!(1);
    assert!(writer.append(bad).await.is_err());
    assert_eq!(writer.append(event(3)).await.unwrap().seq, 1);
}
