//! Throwaway databases, events and keys shared by the tests.

use std::collections::BTreeMap;

use blindledger_audit::{AuditLog, CheckpointKeys, CheckpointSigner, EventKind, NewEvent};
use serde_json::json;

/// A database for one test: a SQLite file, or a MariaDB database dropped by `cleanup`.
pub struct TestDb {
    pub url: String,
    mysql: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    MariaDb,
}

impl TestDb {
    pub async fn new(on: On) -> Self {
        match on {
            On::Sqlite => Self::sqlite(),
            On::MariaDb => Self::mysql().await,
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("audit.db").display()
        );
        TestDb {
            url,
            mysql: None,
            _dir: Some(dir),
        }
    }

    /// A fresh `bl_test_<uuid>` on the server of `BLINDLEDGER_TEST_MYSQL_URL`.
    pub async fn mysql() -> Self {
        use sqlx::Connection;
        let server = std::env::var("BLINDLEDGER_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
        let server = server.trim_end_matches('/').to_string();
        let name = format!("bl_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::MySqlConnection::connect(&server)
            .await
            .expect("MariaDB for tests (set BLINDLEDGER_TEST_MYSQL_URL)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        TestDb {
            url: format!("{server}/{name}"),
            mysql: Some((server, name)),
            _dir: None,
        }
    }

    pub async fn log(&self) -> AuditLog {
        AuditLog::connect(&self.url, 8, true).await.unwrap()
    }

    /// Drops a MariaDB test database.
    pub async fn cleanup(self) {
        use sqlx::Connection;
        if let Some((server, name)) = &self.mysql {
            let mut conn = sqlx::MySqlConnection::connect(server).await.unwrap();
            sqlx::query(&format!("DROP DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
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
