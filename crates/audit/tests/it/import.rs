//! Importing the ledger's decision log, job state changes and bundle activations.

use blindledger_audit::{now_ms, AuditLog, Importer, VerifyOptions};
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{database, exec, open_log, signer, On};

/// A decision-log row as the ledger writes it, `age_ms` in the past.
async fn decision(log: &AuditLog, n: i64, allowed: bool, age_ms: i64) {
    let event = json!({
        "decision_id": format!("d-{n}"),
        "path": "blindledger/authz/decision",
        "input": {"principal": "alice", "method": "/blindledger.ledger.v1.LedgerService/Transfer",
                  "resource": {"tenant": "acme", "account": "alice"}},
        "result": {"allow": allowed, "reasons": ["velocity too high"],
                   "obligations": {"max_amount": 5000, "window_limit": 20000}},
        "bundles": {"blindledger": {"revision": "r7"}},
        "timestamp": "2025-01-01T00:00:00Z",
    });
    sqlx::query(
        "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, revisions, event) \
         VALUES (?, ?, 'alice', '/blindledger.ledger.v1.LedgerService/Transfer', ?, ?, ?)",
    )
    .bind(format!("d-{n}"))
    .bind(now_ms() - age_ms)
    .bind(i64::from(allowed))
    .bind(r#"{"blindledger":"r7","risk":"k3"}"#)
    .bind(serde_json::to_vec(&event).unwrap())
    .execute(log.pool())
    .await
    .unwrap();
}

async fn summaries(log: &AuditLog, kind: &str) -> Vec<Value> {
    let rows = sqlx::query("SELECT summary, subject FROM audit_events WHERE kind = ? ORDER BY seq")
        .bind(kind)
        .fetch_all(log.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.try_get::<String, _>(0).unwrap()).unwrap();
            v["_subject"] = json!(r.try_get::<String, _>(1).unwrap());
            v
        })
        .collect()
}

async fn job_update(log: &AuditLog, state: &str, at: i64, extra: &str) {
    exec(
        log,
        &format!("UPDATE jobs SET state = '{state}', updated_at = {at}{extra} WHERE id = 'job-1'"),
    )
    .await;
}

async fn imports_each_source_once(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let importer = Importer::new(log.clone());
    for n in 0..3 {
        decision(&log, n, n != 1, 10_000).await;
    }
    let t0 = now_ms() - 9_000;
    exec(&log, &format!(
        "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, idempotency_key, request_hash, \
         payload, params, created_at, updated_at) VALUES ('job-1', 'acme', 'transfer', 'PENDING', 'alice', \
         'bob', 'k1', 'h', {}, '{{\"max_amount\":5000}}', {t0}, {t0})", blob(2048, on))).await;
    exec(
        &log,
        &format!(
            "INSERT INTO controller_activations (name, revision, action, actor, activated_at) \
         VALUES ('blindledger', 'r7', 'activate', 'ci', {t0})"
        ),
    )
    .await;

    let report = importer.run_once().await.unwrap();
    assert_eq!(
        (report.decisions, report.job_transitions, report.activations),
        (3, 1, 1)
    );
    assert_eq!(
        importer.run_once().await.unwrap().total(),
        0,
        "a second run imports nothing"
    );

    let decisions = summaries(&log, "decision").await;
    assert_eq!(decisions[1]["outcome"], json!("deny"));
    assert_eq!(decisions[1]["revision"], json!("r7"));
    assert_eq!(decisions[1]["reasons"], json!(["velocity too high"]));
    assert_eq!(decisions[1]["_subject"], json!("acme/alice"));
    let text = decisions.iter().map(Value::to_string).collect::<String>();
    assert!(
        !text.contains("5000") && !text.contains("max_amount"),
        "no limits: {text}"
    );

    // Two changes between runs are one transition; a late commit inside the overlap counts.
    job_update(&log, "RUNNING", t0 + 1, "").await;
    job_update(
        &log,
        "COMMITTED",
        t0 + 2,
        &format!(", payload = NULL, result_moved = {}", blob(1000, on)),
    )
    .await;
    decision(&log, 3, false, 8_000).await;
    let report = importer.run_once().await.unwrap();
    assert_eq!((report.decisions, report.job_transitions), (1, 1));
    let jobs = summaries(&log, "job_transition").await;
    assert_eq!(
        (&jobs[0]["from"], &jobs[0]["to"]),
        (&Value::Null, &json!("PENDING"))
    );
    assert_eq!(jobs[0]["ciphertext_bytes"], json!(2048));
    assert_eq!(
        (&jobs[1]["from"], &jobs[1]["to"]),
        (&json!("PENDING"), &json!("COMMITTED"))
    );
    assert_eq!(jobs[1]["result_bytes"], json!(1000));
    assert_eq!(jobs[1]["_subject"], json!("acme/alice"));
    assert!(!jobs[0].to_string().contains("5000"));
    let activation = &summaries(&log, "bundle_activation").await[0];
    assert_eq!(activation["_subject"], json!("bundle:blindledger"));

    // Importers racing each other still import every row once.
    for n in 10..60 {
        decision(&log, n, true, 5_000).await;
    }
    let racers: Vec<_> = (0..3)
        .map(|_| {
            let importer = importer.clone();
            tokio::spawn(async move { importer.run_once().await.unwrap().decisions })
        })
        .collect();
    let mut imported = 0;
    for racer in racers {
        imported += racer.await.unwrap();
    }
    assert_eq!(imported, 50);
    assert!(log.import_position("decision_log").await.unwrap() > 0);
    let (_, keys) = signer("audit-1");
    let verified = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.rows_checked, 3 + 1 + 1 + 1 + 1 + 50);
    db.drop_db().await.unwrap();
}

/// A literal blob of `n` bytes in the engine's SQL.
fn blob(n: usize, on: On) -> String {
    match on {
        On::Sqlite => format!("zeroblob({n})"),
        On::MariaDb => format!("REPEAT(X'00', {n})"),
    }
}

#[tokio::test]
async fn imports_each_source_once_on_sqlite() {
    imports_each_source_once(On::Sqlite).await;
}

#[tokio::test]
async fn imports_each_source_once_on_mariadb() {
    imports_each_source_once(On::MariaDb).await;
}

/// A decision-log row naming a 100,000-character account, as a writer to the ledger's
/// database (or a ledger that did not bound its input) could leave it.
async fn hostile_decision(log: &AuditLog, age_ms: i64) {
    let huge = "x".repeat(100_000);
    let event = json!({
        "decision_id": "d-hostile",
        "input": {"principal": "mallory", "method": "/blindledger.ledger.v1.LedgerService/OpenAccount",
                  "resource": {"tenant": "acme", "account": huge}},
        "result": {"allow": false, "reasons": []},
        "bundles": {"blindledger": {"revision": "r7"}},
    });
    sqlx::query(
        "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, revisions, event) \
         VALUES ('d-hostile', ?, 'mallory', '/blindledger.ledger.v1.LedgerService/OpenAccount', 0, '{}', ?)",
    )
    .bind(now_ms() - age_ms)
    .bind(serde_json::to_vec(&event).unwrap())
    .execute(log.pool())
    .await
    .unwrap();
}

async fn a_row_that_cannot_be_imported_is_set_aside(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let importer = Importer::new(log.clone()).with_settle_ms(0);
    decision(&log, 0, true, 10_000).await;
    hostile_decision(&log, 9_000).await;
    decision(&log, 2, false, 8_000).await;
    let report = importer.run_once().await.unwrap();
    assert_eq!((report.decisions, report.set_aside), (2, 1));
    assert_eq!(log.import_position("decision_log").await.unwrap(), 3);

    // Recorded in the trail itself: which row of which source, and why, bounded.
    let set_aside = summaries(&log, "import_set_aside").await;
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0]["source"], json!("decision_log"));
    assert_eq!(set_aside[0]["source_seq"], json!(2));
    assert_eq!(set_aside[0]["_subject"], json!("decision_log:2"));
    let text = set_aside.iter().map(Value::to_string).collect::<String>();
    assert!(text.len() < 1_000 && !text.contains("xxxx"), "{text}");

    // What follows is imported as usual, and the chain verifies.
    decision(&log, 3, true, 0).await;
    assert_eq!(importer.run_once().await.unwrap().decisions, 1);
    let (_, keys) = signer("audit-1");
    let verified = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.rows_checked, 2 + 1 + 1);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_row_that_cannot_be_imported_is_set_aside_on_sqlite() {
    a_row_that_cannot_be_imported_is_set_aside(On::Sqlite).await;
}

#[tokio::test]
async fn a_row_that_cannot_be_imported_is_set_aside_on_mariadb() {
    a_row_that_cannot_be_imported_is_set_aside(On::MariaDb).await;
}
