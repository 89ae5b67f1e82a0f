//! A database migrated by the single migration history that came before the per-owner sets
//! (versions 1 to 12, applied in version order) upgrades in place: `Db::migrate` applies
//! only what is new, keeps the rows, and carries the orders the controller had carried out
//! (`admin_actions.applied_at`) into its own `controller_applied_actions`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use blindledger_store::{Db, MigrationSet};
use blindledger_test_support::TestDatabase;
use sqlx::Row;

/// The last version of the single history.
const BEFORE_THE_SPLIT: i64 = 12;

/// Applies versions 1 to 12 as the former single migrator did: each in version order, then
/// its row in sqlx's history table.
async fn migrate_as_before_the_split(db: &Db) {
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let mut history: Vec<_> = MigrationSet::ALL
        .iter()
        .flat_map(|set| set.migrator(db.backend()).iter())
        .filter(|m| m.version <= BEFORE_THE_SPLIT)
        .collect();
    history.sort_by_key(|m| m.version);
    assert_eq!(history.len(), BEFORE_THE_SPLIT as usize);
    for migration in history {
        sqlx::raw_sql(&migration.sql)
            .execute(db.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?, ?, TRUE, ?, 0)",
        )
        .bind(migration.version)
        .bind(migration.description.to_string())
        .bind(migration.checksum.to_vec())
        .execute(db.pool())
        .await
        .unwrap();
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn upgrades_in_place(database: TestDatabase) {
    let db = Db::connect(database.url(), 2).await.unwrap();
    migrate_as_before_the_split(&db).await;
    // Two officers' rollbacks: one the controller had carried out, one still pending.
    for (id, applied_at) in [(1, Some(1_000_i64)), (2, None)] {
        sqlx::query(
            "INSERT INTO admin_actions (id, command, target, reason, officer, accepted_at, \
             audit_seq, applied_at) VALUES (?, 'rollback_bundle', 'blindledger@v1', 'r', \
             'officer-1', 1, 1, ?)",
        )
        .bind(id as i64)
        .bind(applied_at)
        .execute(db.pool())
        .await
        .unwrap();
    }

    db.migrate().await.unwrap();
    let newest: i64 = MigrationSet::ALL
        .iter()
        .flat_map(|set| set.migrator(db.backend()).iter())
        .map(|m| m.version)
        .max()
        .unwrap();
    assert!(newest > BEFORE_THE_SPLIT);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        newest,
        "every version applied once"
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM admin_actions").await,
        2,
        "the rows are kept"
    );
    let applied = sqlx::query("SELECT action_id, applied_at FROM controller_applied_actions")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let applied: Vec<(i64, i64)> = applied.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(applied, [(1, 1_000)], "the carried-out order, and only it");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_admin_action_feed").await,
        2
    );

    // Migrating again changes nothing.
    db.migrate().await.unwrap();
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM _sqlx_migrations").await,
        newest
    );
    db.close().await;
    database.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_database_from_before_the_migration_sets_upgrades_in_place_on_sqlite() {
    upgrades_in_place(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn a_database_from_before_the_migration_sets_upgrades_in_place_on_mariadb() {
    upgrades_in_place(TestDatabase::mysql().await.unwrap()).await;
}
