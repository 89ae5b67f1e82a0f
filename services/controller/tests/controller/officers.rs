//! Officers' orders are acted on only when an officer's signature backs them: a row in
//! `frozen_accounts`, `revoked_tenant_keys` or `admin_actions` written by anyone else (a
//! database writer, the audit service's credentials without an officer) is neither
//! published in the risk bundle nor carried out.

use blindledger_audit::admin::{generate_officer_keypair, sign_command, Command, CommandPayload};
use blindledger_test_support::TestDatabase;
use serde_json::Value;
use sqlx::AnyPool;

use crate::helpers::{config, TestApp, TestKeys, OFFICER_KID};

/// What a row says and the signed command it carries (none: NULL).
struct Row<'a> {
    tenant: &'a str,
    name: &'a str,
    signed: Option<String>,
}

async fn insert(pool: &AnyPool, table: &str, rows: &[Row<'_>]) {
    let (name_column, time_column) = match table {
        "frozen_accounts" => ("account", "since"),
        _ => ("key_id", "revoked_at"),
    };
    for row in rows {
        let sql = format!(
            "INSERT INTO {table} (tenant, {name_column}, reason, {time_column}, officer, \
             audit_seq, signed_command) VALUES (?, ?, 'review', 1, ?, 1, ?)"
        );
        sqlx::query(&sql)
            .bind(row.tenant)
            .bind(row.name)
            .bind(OFFICER_KID)
            .bind(row.signed.clone())
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn queue_rollback(pool: &AnyPool, target: &str, signed: Option<String>) {
    sqlx::query(
        "INSERT INTO admin_actions (command, target, reason, officer, accepted_at, audit_seq, \
         signed_command) VALUES ('rollback_bundle', ?, 'review', ?, 1, 1, ?)",
    )
    .bind(target)
    .bind(OFFICER_KID)
    .bind(signed)
    .execute(pool)
    .await
    .unwrap();
}

/// The keys of `field` in the served risk bundle's data.
fn published(app: &TestApp, field: &str) -> Vec<String> {
    let risk = app.controller.bundle("risk").expect("a risk bundle");
    let data: Value = serde_json::from_slice(risk.bundle.file("risk/data.json").unwrap()).unwrap();
    let entries = data[field].as_object().cloned().unwrap_or_default();
    entries.keys().cloned().collect()
}

async fn forged_orders_are_neither_published_nor_carried_out(db: &TestDatabase) {
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(db, &keys, None)).await;
    let controller = &app.controller;
    for revision in ["v1", "v2"] {
        let archive = keys.signed_policy(revision);
        controller.push(archive, "pipeline", None).await.unwrap();
    }
    let pool = controller.repo().pool();

    // Signed by a key that is not an officer's, under the officer's key id.
    let (stranger, _) = generate_officer_keypair().unwrap();
    let forged = |command, target: &str| {
        let payload = CommandPayload::new(command, target, "review", OFFICER_KID);
        serde_json::to_string(&sign_command(&payload, &stranger).unwrap()).unwrap()
    };
    let frozen = [
        Row {
            tenant: "acme",
            name: "unsigned",
            signed: None,
        },
        Row {
            tenant: "acme",
            name: "forged",
            signed: Some(forged(Command::Freeze, "acme/forged")),
        },
        // An officer's real freeze of another account, copied onto this row.
        Row {
            tenant: "acme",
            name: "copied",
            signed: Some(keys.order(Command::Freeze, "acme/other")),
        },
        // An officer's unfreeze, stored as a freeze.
        Row {
            tenant: "acme",
            name: "lifted",
            signed: Some(keys.order(Command::Unfreeze, "acme/lifted")),
        },
        Row {
            tenant: "acme",
            name: "garbage",
            signed: Some("{not json".into()),
        },
        Row {
            tenant: "acme",
            name: "mule",
            signed: Some(keys.order(Command::Freeze, "acme/mule")),
        },
    ];
    insert(pool, "frozen_accounts", &frozen).await;
    let revoked = [
        Row {
            tenant: "acme",
            name: "k-unsigned",
            signed: None,
        },
        Row {
            tenant: "acme",
            name: "k-frozen",
            signed: Some(keys.order(Command::Freeze, "acme/k-frozen")),
        },
        Row {
            tenant: "acme",
            name: "k1",
            signed: Some(keys.order(Command::RevokeTenantKey, "acme/k1")),
        },
    ];
    insert(pool, "revoked_tenant_keys", &revoked).await;

    // Rollbacks: unsigned, forged, signed for another revision, signed two hours ago, and one
    // real order.
    queue_rollback(pool, "blindledger@v1", None).await;
    queue_rollback(
        pool,
        "blindledger@v1",
        Some(forged(Command::RollbackBundle, "blindledger@v1")),
    )
    .await;
    queue_rollback(
        pool,
        "blindledger@v1",
        Some(keys.order(Command::RollbackBundle, "blindledger@v2")),
    )
    .await;
    let mut old = CommandPayload::new(
        Command::RollbackBundle,
        "blindledger@v1",
        "review",
        OFFICER_KID,
    );
    old.issued_at -= 2 * 3_600_000;
    let old = serde_json::to_string(&sign_command(&old, &keys.officer).unwrap()).unwrap();
    queue_rollback(pool, "blindledger@v1", Some(old)).await;

    let sync = controller.sync_admin().await.unwrap();
    assert!(sync.rollbacks.is_empty(), "{sync:?}");
    assert_eq!(sync.refused.len(), 4, "{sync:?}");
    assert_eq!(controller.bundle("blindledger").unwrap().revision(), "v2");
    assert_eq!(published(&app, "frozen"), ["acme/mule"]);
    assert_eq!(published(&app, "revoked_keys"), ["acme/k1"]);

    // Refused orders are marked done, not retried; a real one is carried out.
    queue_rollback(
        pool,
        "blindledger@v1",
        Some(keys.order(Command::RollbackBundle, "blindledger@v1")),
    )
    .await;
    let sync = controller.sync_admin().await.unwrap();
    assert_eq!(sync.rollbacks, ["blindledger@v1"], "{sync:?}");
    assert!(sync.refused.is_empty(), "{sync:?}");
    assert_eq!(controller.bundle("blindledger").unwrap().revision(), "v1");
    app.stop().await;
}

#[tokio::test]
async fn forged_orders_are_neither_published_nor_carried_out_on_sqlite() {
    forged_orders_are_neither_published_nor_carried_out(&TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn forged_orders_are_neither_published_nor_carried_out_on_mariadb() {
    let db = TestDatabase::mysql().await.unwrap();
    forged_orders_are_neither_published_nor_carried_out(&db).await;
    db.drop_db().await.unwrap();
}
