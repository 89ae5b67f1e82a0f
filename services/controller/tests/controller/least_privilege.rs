//! The controller on MariaDB under its own user, holding only the grants of
//! `blindledger_store::grants`: policy pushes, a cycle with its alert delivered, officers'
//! orders carried out, all work; writing the audit trail, the ledger's tables or an
//! officer's order is refused.

use std::time::Duration;

use blindledger_audit::admin::Command;
use blindledger_controller::scores::ScoresQuery;
use blindledger_policy::Bundle;
use blindledger_store::grants::{self, DbUser, Service};
use blindledger_store::Db;
use blindledger_test_support::metadata::{bursts_at_night, ordinary, Rng, NOW};
use blindledger_test_support::webhook::Receiver;
use blindledger_test_support::{until, TestDatabase, TestUser};
use secrecy::SecretString;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{AnyPool, Connection as _, MySqlConnection, Row};

use crate::helpers::{config, json, policies_dir, signed, TestApp, TestKeys, CI_KID};

/// MariaDB's ER_TABLEACCESS_DENIED_ERROR: "command denied to user for table".
const TABLE_ACCESS_DENIED: u16 = 1142;

/// Migrates `db` as the test's administrator and returns a pool on it with the same rights,
/// to write what other services would.
async fn migrated(db: &TestDatabase) -> AnyPool {
    let admin = Db::connect(db.url(), 1)
        .await
        .expect("administrator connects");
    admin.migrate().await.expect("migrations apply");
    admin.close().await;
    AnyPool::connect(db.url())
        .await
        .expect("administrator pool")
}

/// A new user for the controller, holding exactly its grants on `db`.
async fn controller_user(db: &TestDatabase) -> TestUser {
    let user = db.create_user("controller").await.expect("user created");
    let account = DbUser::new(user.name(), user.host()).expect("a valid account");
    let database = db.database_name().expect("a MariaDB database");
    let statements = grants::grants(Service::Controller, database, &account);
    user.grant(&statements).await.expect("grants apply");
    user
}

/// MariaDB's error number for `sql` run as the user behind `conn`, `None` if it ran.
async fn refusal(conn: &mut MySqlConnection, sql: &str) -> Option<u16> {
    let result = sqlx::raw_sql(sql).execute(conn).await;
    result
        .err()?
        .as_database_error()?
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// Pushes a signed policy bundle as CI and expects it activated.
async fn push(app: &TestApp, keys: &TestKeys, archive: Vec<u8>) {
    let pushed = app
        .http
        .post(app.url("/v1/policy/push"))
        .bearer_auth(keys.token("pipeline", &["ci"]))
        .body(archive)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200, "{}", pushed.text().await.unwrap());
}

/// The shipped policy at revision `v2`, with one more rule file.
fn second_revision(keys: &TestKeys) -> Vec<u8> {
    let mut v2 = Bundle::from_dir("blindledger", &policies_dir(), "v2").unwrap();
    v2.insert_file(
        "blindledger/authz/note.rego",
        b"package blindledger.authz\n\nnote := 1\n".to_vec(),
    )
    .unwrap();
    signed(v2, &keys.ci, CI_KID)
}

/// What the controller's credentials must not do: touch the audit trail, issue or change an
/// officer's order, write the ledger's tables, read balances, or read another service's
/// tables behind the views it publishes (ciphertexts, keys, parameters).
const REFUSED: &[&str] = &[
    "UPDATE audit_events SET summary = '{}' WHERE seq = 1",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_head SET size = 0 WHERE id = 1",
    "INSERT INTO audit_checkpoints (size, head_hash, created_at, key_id, signature) \
     VALUES (1, REPEAT('0', 64), 0, 'audit-1', 'forged')",
    "SELECT COUNT(*) FROM audit_events",
    "DELETE FROM frozen_accounts",
    "INSERT INTO revoked_tenant_keys (tenant, key_id, reason, revoked_at, officer, audit_seq) \
     VALUES ('acme', 'k', 'x', 0, 'x', 0)",
    "INSERT INTO admin_actions (command, target, reason, officer, accepted_at, audit_seq) \
     VALUES ('rollback_bundle', 'blindledger@v2', 'x', 'x', 0, 0)",
    "DELETE FROM admin_actions",
    "UPDATE admin_actions SET applied_at = 1",
    "SELECT target FROM admin_actions",
    "SELECT signed_command FROM frozen_accounts",
    // The API's gate appends its decisions; none is ever changed or removed.
    "UPDATE decision_log SET allowed = 1",
    "DELETE FROM decision_log",
    "UPDATE jobs SET state = 'FAILED'",
    "SELECT balance FROM accounts",
    "UPDATE tenants SET region = 'elsewhere'",
    "SELECT payload FROM jobs",
    "SELECT params FROM jobs",
    "SELECT public_key FROM tenants",
    "DROP TABLE controller_alerts",
    "DROP VIEW ledger_job_feed",
];

#[tokio::test]
async fn the_controller_runs_under_its_own_user() {
    let db = TestDatabase::mysql().await.unwrap();
    let admin = migrated(&db).await;
    let user = controller_user(&db).await;
    let keys = TestKeys::new();
    let receiver = Receiver::start().await;
    let mut config = config(&db, &keys, Some(receiver.url()));
    config.database_url = SecretString::from(user.url().to_owned());
    config.migrate = false;
    config.admin_sync_ms = 0;
    let app = TestApp::spawn(config).await;

    // The ledger's metadata (written as the ledger would), a push, and a cycle: features,
    // a model, tiers, score history, a risk bundle, an alert delivered from the outbox.
    let mut rng = Rng::new(11);
    ordinary(&mut rng, 40).insert(&admin).await;
    bursts_at_night(&mut rng).insert(&admin).await;
    push(&app, &keys, keys.signed_policy("v1")).await;
    let report = app.controller.run_cycle_at(NOW, false).await.unwrap();
    assert_eq!(report.alerts_queued, 1, "{report:?}");
    assert!(report.risk_bundle.is_some(), "{report:?}");
    receiver.wait_for(1).await;
    let repo = app.controller.repo();
    until(
        "the alert is marked delivered",
        Duration::from_secs(30),
        || async { repo.undelivered_alerts().await.unwrap() == 0 },
    )
    .await;
    let again = app.controller.run_cycle_at(NOW, true).await.unwrap();
    assert!(again.kinds[0].trained, "{again:?}");
    let scores = app
        .controller
        .scores(&ScoresQuery::default())
        .await
        .unwrap();
    assert!(!scores.entities.is_empty());

    // A second revision replayed against the decision log; its history readable.
    push(&app, &keys, second_revision(&keys)).await;
    let history = app
        .http
        .get(app.url("/v1/policy/history"))
        .bearer_auth(keys.token("olivia", &["auditor"]))
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 200);
    let history = json(history).await.to_string();
    assert!(
        history.contains("v1") && history.contains("v2"),
        "{history}"
    );

    // Officers' orders as the audit service records them: a freeze and a rollback.
    sqlx::query(
        "INSERT INTO frozen_accounts (tenant, account, reason, since, officer, audit_seq, \
         signed_command) VALUES ('acme', 'mule', 'review', 1, 'officer-1', 1, ?)",
    )
    .bind(keys.order(Command::Freeze, "acme/mule"))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO admin_actions (command, target, reason, officer, accepted_at, audit_seq, \
         signed_command) VALUES ('rollback_bundle', 'blindledger@v1', 'review', 'officer-1', \
         1, 2, ?)",
    )
    .bind(keys.order(Command::RollbackBundle, "blindledger@v1"))
    .execute(&admin)
    .await
    .unwrap();
    let sync = app.controller.sync_admin().await.unwrap();
    assert_eq!(sync.rollbacks, ["blindledger@v1"], "{sync:?}");
    assert!(
        sync.risk_bundle.is_some_and(|b| b.new),
        "the freeze is published"
    );
    assert_eq!(
        repo.active_revision("blindledger")
            .await
            .unwrap()
            .as_deref(),
        Some("v1")
    );
    // Carried out once, recorded in the controller's own table; the order is untouched.
    let applied = sqlx::query("SELECT COUNT(*) FROM controller_applied_actions")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(applied.get::<i64, _>(0), 1);
    let again = app.controller.sync_admin().await.unwrap();
    assert!(again.rollbacks.is_empty(), "{again:?}");
    let order = sqlx::query("SELECT COUNT(*) FROM admin_actions WHERE applied_at IS NULL")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(order.get::<i64, _>(0), 1);
    // The API's requests were decided by the policy and logged under the controller's user.
    let logged = sqlx::query(
        "SELECT COUNT(*) FROM decision_log WHERE method = '/blindledger.controller.v1.Api/Push'",
    )
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(
        logged.get::<i64, _>(0) >= 1,
        "pushes are in the decision log"
    );

    let mut conn = MySqlConnection::connect(user.url()).await.unwrap();
    for sql in REFUSED {
        assert_eq!(
            refusal(&mut conn, sql).await,
            Some(TABLE_ACCESS_DENIED),
            "{sql}"
        );
    }
    conn.close().await.unwrap();

    app.stop().await;
    admin.close().await;
    user.drop_user().await.unwrap();
    db.drop_db().await.unwrap();
}
