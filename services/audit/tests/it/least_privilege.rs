//! The audit service on MariaDB under its own user, holding only the grants of
//! `blindledger_store::grants`: it imports, signs checkpoints, serves every page and accepts
//! officers' commands; writing the ledger's or the controller's tables, or changing a row of
//! the trail, is refused.

use std::time::Duration;

use blindledger_audit::admin::Command;
use blindledger_audit::{now_ms, AuditLog};
use blindledger_store::grants::{self, DbUser, Service};
use blindledger_test_support::{until, TestDatabase, TestUser};
use serde_json::Value;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Connection as _, MySqlConnection};

use crate::helpers::{
    controller_activation, controller_push, controller_risk, controller_score,
    controller_tier_change, impact_report, ledger_decision, ledger_job, spawn_app_with, TestApp,
};

/// MariaDB's ER_TABLEACCESS_DENIED_ERROR: "command denied to user for table".
const TABLE_ACCESS_DENIED: u16 = 1142;

const WAIT: Duration = Duration::from_secs(20);

/// A new user for the audit service, holding exactly its grants on `db`.
async fn audit_user(db: &TestDatabase) -> TestUser {
    let user = db.create_user("audit").await.expect("user created");
    let account = DbUser::new(user.name(), user.host()).expect("a valid account");
    let database = db.database_name().expect("a MariaDB database");
    let statements = grants::grants(Service::Audit, database, &account);
    user.grant(&statements).await.expect("grants apply");
    user
}

/// Rows as the ledger and the controller write them, through the administrator's `log`.
async fn seed(log: &AuditLog) {
    let now = now_ms();
    ledger_decision(log, 1, "alice", true, now - 5_000).await;
    ledger_decision(log, 2, "mallory", false, now - 4_000).await;
    ledger_job(log, "job-1", "COMMITTED", now - 3_000, 2048).await;
    controller_activation(log, "blindledger", "r1", "activate", now - 2_000).await;
    controller_push(
        log,
        "r1",
        ("activated", "ok"),
        impact_report("r1"),
        now - 2_000,
    )
    .await;
    let alice = ("account", "acme/alice");
    controller_risk(log, alice, "high", 0.81, now - 1_000).await;
    controller_score(log, alice, 0.81, now - 1_000).await;
    controller_tier_change(log, "acme/alice", "low", "high", now - 1_000).await;
}

/// Sends an officer's signed command as an admin and expects it accepted.
async fn command(app: &TestApp, kind: Command, target: &str) {
    let response = app
        .http
        .post(app.url("/api/admin/command"))
        .bearer_auth(app.token("ada", &["admin"]))
        .json(&app.signed(kind, target))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(status, 200, "{target}: {}", response.text().await.unwrap());
}

/// What the audit service's credentials must not do.
const REFUSED: &[&str] = &[
    "UPDATE jobs SET state = 'FAILED'",
    "DELETE FROM jobs",
    "UPDATE accounts SET balance = NULL",
    "SELECT balance FROM accounts",
    "UPDATE tenants SET region = 'elsewhere'",
    "DELETE FROM decision_log",
    "UPDATE controller_entity_risk SET tier = 'low'",
    "INSERT INTO controller_activations (name, revision, action, actor, activated_at) \
     VALUES ('blindledger', 'r0', 'activate', 'x', 0)",
    "SELECT archive FROM controller_bundles",
    "SELECT features FROM controller_entity_risk",
    "SELECT payload FROM jobs",
    "SELECT public_key FROM tenants",
    "UPDATE admin_actions SET applied_at = 1",
    "UPDATE audit_events SET summary = '{}' WHERE seq = 1",
    "DELETE FROM audit_events WHERE seq > 1",
    "UPDATE audit_checkpoints SET size = 0",
    "DELETE FROM audit_checkpoints",
    "DROP TABLE audit_events",
];

#[tokio::test]
async fn the_audit_service_runs_under_its_own_user() {
    let db = TestDatabase::mysql().await.unwrap();
    let admin = AuditLog::connect(db.url(), 2, true).await.unwrap();
    let user = audit_user(&db).await;
    seed(&admin).await;
    let app = spawn_app_with(user.url(), |config| config.migrate = false).await;

    let log = &app.log;
    until("the sources are imported", WAIT, || async {
        log.import_position("decision_log").await.unwrap() >= 2
            && log.import_position("controller_activations").await.unwrap() >= 1
    })
    .await;
    until("a checkpoint is signed", WAIT, || async {
        !log.checkpoints().await.unwrap().is_empty()
    })
    .await;
    log.refresh_statistics().await.unwrap();

    for (kind, target) in [
        (Command::Freeze, "acme/alice"),
        (Command::Unfreeze, "acme/alice"),
        (Command::Freeze, "acme/bob"),
        (Command::RevokeTenantKey, "acme/key-1"),
        (Command::RollbackBundle, "blindledger@r1"),
    ] {
        command(&app, kind, target).await;
    }
    let (_, data) = app.get("/api/policy-data").await;
    let data: Value = serde_json::from_str(&data).unwrap();
    assert!(data["frozen"]["acme/bob"].is_object(), "{data}");
    assert!(data["revoked_keys"]["acme/key-1"].is_object(), "{data}");

    for (path, shows) in [
        ("/", "Denials"),
        ("/decisions", "mallory"),
        ("/transactions", "job-1"),
        ("/transactions/job-1", "2048 bytes"),
        ("/attention", "acme/bob"),
        ("/risk", "acme/alice"),
        ("/bundles", "r1"),
        ("/export.csv", "job-1"),
        ("/api/audit/checkpoints", "signature"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(shows), "{path} shows {shows}: {body}");
    }
    let (_, attention) = app.get("/attention").await;
    assert!(!attention.contains("cannot be read"), "{attention}");
    let (_, report) = app.get("/api/audit/verify").await;
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["ok"], true, "{report}");

    let mut conn = MySqlConnection::connect(user.url()).await.unwrap();
    for sql in REFUSED {
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

    app.stop().await;
    admin.close().await;
    user.drop_user().await.unwrap();
    db.drop_db().await.unwrap();
}
