//! Throwaway databases, events and keys shared by the tests.

use std::collections::BTreeMap;

use blindledger_audit::{AuditLog, CheckpointKeys, CheckpointSigner, EventKind, NewEvent};
use blindledger_test_support::TestDatabase;
use serde_json::json;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    MariaDb,
}

/// A fresh database on `on` (see [`TestDatabase`]).
pub async fn database(on: On) -> TestDatabase {
    match on {
        On::Sqlite => TestDatabase::sqlite().unwrap(),
        On::MariaDb => TestDatabase::mysql().await.unwrap(),
    }
}

/// The audit log on `db`, migrated.
pub async fn open_log(db: &TestDatabase) -> AuditLog {
    AuditLog::connect(db.url(), 8, true).await.unwrap()
}

/// A decision-like event numbered `i`.
pub fn event(i: i64) -> NewEvent {
    NewEvent::new(
        EventKind::Decision,
        1_700_000_000_000 + i,
        format!("user-{}", i % 7),
        format!("acme/acct-{}", i % 13),
        json!({
            "decision_id": format!("d-{i}"),
            "method": "/blindledger.ledger.v1.LedgerService/Transfer",
            "outcome": if i % 5 == 0 { "deny" } else { "allow" },
            "revision": "rev-1",
        }),
    )
}

pub fn events(n: i64) -> Vec<NewEvent> {
    (1..=n).map(event).collect()
}

/// A signer and the keys that verify it.
pub fn signer(kid: &str) -> (CheckpointSigner, CheckpointKeys) {
    let signer = CheckpointSigner::generate(kid);
    let pems = BTreeMap::from([(kid.to_string(), signer.public_key_pem().unwrap())]);
    (signer, CheckpointKeys::from_pems(&pems).unwrap())
}

/// Runs a statement on the test database (tampering, seeding).
pub async fn exec(log: &AuditLog, sql: &str) {
    sqlx::query(sql).execute(log.pool()).await.unwrap();
}
