//! The ledger and the audit importer on MariaDB, each under its own user holding only the
//! grants of `blindledger_store::grants`: the ledger runs a deposit end to end, yet its
//! credentials can neither rewrite nor read the audit trail; the audit service's user
//! imports what the ledger did and signs a checkpoint, yet cannot write the ledger's tables
//! (nor change a row of the trail it appends to).

use std::collections::BTreeMap;

use blindledger_audit::{AuditLog, CheckpointKeys, CheckpointSigner, Importer, VerifyOptions};
use blindledger_ledger::Application;
use blindledger_store::grants::{self, DbUser, Service};
use blindledger_store::Db;
use blindledger_test_support::{TestDatabase, TestUser};
use secrecy::SecretString;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Connection as _, MySqlConnection};

use crate::helpers::*;

/// MariaDB's ER_TABLEACCESS_DENIED_ERROR: "command denied to user for table".
const TABLE_ACCESS_DENIED: u16 = 1142;

/// Migrates `db` as the test's administrator: the services below run with `migrate = false`.
async fn migrate(db: &TestDatabase) {
    let admin = Db::connect(db.url(), 1)
        .await
        .expect("administrator connects");
    admin.migrate().await.expect("migrations apply");
    admin.close().await;
}

/// A new user for `service`, holding exactly its grants on `db`.
async fn service_user(db: &TestDatabase, service: Service) -> TestUser {
    let user = db
        .create_user(service.as_str())
        .await
        .expect("user created");
    let account = DbUser::new(user.name(), user.host()).expect("a valid account");
    let database = db.database_name().expect("a MariaDB database");
    let statements = grants::grants(service, database, &account);
    user.grant(&statements).await.expect("grants apply");
    user
}

/// Asserts that MariaDB refuses each statement to the user behind `url` for want of a
/// privilege on its table.
async fn assert_refused(url: &str, statements: &[&str]) {
    let mut conn = MySqlConnection::connect(url)
        .await
        .expect("the user connects");
    for sql in statements {
        let result = sqlx::raw_sql(sql).execute(&mut conn).await;
        let number = result
            .as_ref()
            .err()
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.try_downcast_ref::<MySqlDatabaseError>())
            .map(MySqlDatabaseError::number);
        assert_eq!(number, Some(TABLE_ACCESS_DENIED), "{sql}: {result:?}");
    }
    conn.close().await.unwrap();
}

/// What whoever holds the ledger's credentials would try on the audit trail, and on what
/// the ledger only appends or keeps.
const LEDGER_REFUSED: &[&str] = &[
    "UPDATE audit_events SET summary = '{}' WHERE seq = 1",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_head SET size = 0 WHERE id = 1",
    "INSERT INTO audit_checkpoints (size, head_hash, created_at, key_id, signature) \
     VALUES (1, REPEAT('0', 64), 0, 'audit-1', 'forged')",
    "INSERT INTO audit_events (seq, kind, occurred_at, principal, subject, summary, prev_hash, \
     hash) VALUES (99, 'decision', 0, 'x', 'x', '{}', REPEAT('0', 64), REPEAT('0', 64))",
    "DELETE FROM audit_events",
    "SELECT COUNT(*) FROM audit_events",
    "REPLACE INTO audit_cursors (name, position, updated_at) VALUES ('decision_log', 0, 0)",
    "DELETE FROM frozen_accounts",
    "UPDATE decision_log SET allowed = 1",
    "DELETE FROM decision_log",
    "DELETE FROM jobs",
    "UPDATE controller_entity_risk SET tier = 'low'",
    "DROP TABLE audit_events",
];

/// What the audit service's credentials must not do: write the ledger's tables or read
/// balances, or change the trail it appends to.
const AUDIT_REFUSED: &[&str] = &[
    "UPDATE jobs SET state = 'FAILED'",
    "DELETE FROM jobs",
    "INSERT INTO jobs (id, tenant, kind, state, account_a, idempotency_key, request_hash, \
     params, created_at, updated_at) VALUES ('x', 'acme', 'deposit', 'PENDING', 'alice', 'k', \
     'h', '{}', 0, 0)",
    "UPDATE accounts SET balance = NULL",
    "INSERT INTO accounts (tenant, name, created_at, updated_at) VALUES ('acme', 'eve', 0, 0)",
    "SELECT balance FROM accounts",
    "UPDATE tenants SET region = 'elsewhere'",
    "INSERT INTO tenants (name, region, width_bits, public_key, key_id, server_key_path, \
     server_key_size, created_at, updated_at) VALUES ('eve', 'x', 32, '', 'k', 'p', 0, 0, 0)",
    "DELETE FROM tenants",
    "UPDATE audit_events SET summary = '{}' WHERE seq = 1",
    "DELETE FROM audit_events WHERE seq > 1",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_checkpoints SET size = 0",
    "UPDATE decision_log SET allowed = 1",
    "UPDATE controller_activations SET revision = 'x'",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_ledger_user_deposits_but_cannot_touch_the_audit_trail() {
    let env = TestEnv::new(Backend::MySql).await;
    migrate(&env.db).await;
    let ledger = service_user(&env.db, Service::Ledger).await;
    let audit = service_user(&env.db, Service::Audit).await;

    // Its user may not change the schema: a ledger left to migrate says what to do instead.
    let mut config = env.config();
    config.database_url = SecretString::from(ledger.url().to_owned());
    let Err(refused) = Application::build(config.clone()).await else {
        panic!("the ledger's user migrated the schema");
    };
    assert!(
        format!("{refused:#}").contains("migrate = false"),
        "{refused:#}"
    );

    // The real ledger under its own user: keys, an account, a deposit committed.
    config.migrate = false;
    let app = spawn_with(config, &env.admin_token()).await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let job = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 125), &key())
        .await
        .unwrap();
    committed(&app, job).await;
    assert_eq!(balance(&app, &env.keys, "acme", "alice").await, 125);
    app.stop().await;

    // The audit service's user imports what the ledger did, and signs a checkpoint.
    let log = AuditLog::connect(audit.url(), 2, false).await.unwrap();
    let imported = Importer::new(log.clone())
        .with_settle_ms(0)
        .run_once()
        .await
        .unwrap();
    assert!(
        imported.decisions >= 4 && imported.job_transitions >= 1,
        "{imported:?}"
    );
    let signer = CheckpointSigner::generate("audit-1");
    let checkpoint = log
        .checkpoint(&signer)
        .await
        .unwrap()
        .expect("a checkpoint");
    log.refresh_statistics().await.unwrap();

    assert_refused(ledger.url(), LEDGER_REFUSED).await;
    assert_refused(audit.url(), AUDIT_REFUSED).await;

    // The trail is whole, and still ends at the checkpoint.
    let pems = BTreeMap::from([("audit-1".to_owned(), signer.public_key_pem().unwrap())]);
    let keys = CheckpointKeys::from_pems(&pems).unwrap();
    let report = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.head_size, checkpoint.size);
    log.close().await;
    ledger.drop_user().await.unwrap();
    audit.drop_user().await.unwrap();
}
