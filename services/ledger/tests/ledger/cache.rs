//! The cache of decompressed values: filled by commits and reads, and never answering for
//! bytes an account no longer holds (another instance committed, a row was restored).

use blindledger_ledger::LedgerConfig;
use blindledger_store::Db;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_balance_another_instance_changed_is_never_read_from_memory() {
    let env = TestEnv::new(Backend::MySql).await;
    // `reader` serves the API only: every job runs on `worker`.
    let reader = spawn_with(
        LedgerConfig {
            workers: 0,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await;
    let worker = spawn_with(
        LedgerConfig {
            fhe_parallel_jobs: 2,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await;
    tenant_with_accounts(&worker, &env.keys, "acme", &["alice", "bob"]).await;
    let deposit = worker
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 300), &key())
        .await
        .unwrap();
    committed(&worker, deposit).await;

    // The commit filled the worker's cache: reading alice there decompresses nothing.
    let before = worker.ledger.value_cache();
    assert_eq!(balance(&worker, &env.keys, "acme", "alice").await, 300);
    let after = worker.ledger.value_cache();
    assert_eq!(after.misses, before.misses, "a committed balance is held");
    assert_eq!(after.hits, before.hits + 1);

    // The reader decompresses alice once, then answers from memory.
    assert_eq!(balance(&reader, &env.keys, "acme", "alice").await, 300);
    assert_eq!(balance(&reader, &env.keys, "acme", "alice").await, 300);
    let stats = reader.ledger.value_cache();
    assert_eq!((stats.hits, stats.misses), (1, 1));

    let db = Db::connect(env.db.url(), 1).await.unwrap();
    let at_300 = db.account("acme", "alice").await.unwrap();

    // Another instance commits a transfer, on balances it holds: it decompresses nothing,
    // neither for the job nor for reading its result.
    let before = worker.ledger.value_cache();
    let transfer = worker
        .client
        .transfer("acme", "alice", "bob", encrypt(&env.keys, 100), &key())
        .await
        .unwrap();
    let transfer = committed(&worker, transfer).await;
    assert_eq!(movement(&worker, &env.keys, transfer).await, (100, true));
    assert_eq!(worker.ledger.value_cache().misses, before.misses);

    // The reader's entry is for bytes alice no longer holds: it is not used.
    assert_eq!(balance(&reader, &env.keys, "acme", "alice").await, 200);
    assert_eq!(balance(&reader, &env.keys, "acme", "bob").await, 100);
    let stats = reader.ledger.value_cache();
    assert_eq!(
        (stats.hits, stats.misses),
        (1, 3),
        "the changed balances were decompressed from storage"
    );

    // A row put back to earlier bytes (a restore, a hand edit) reads as it is stored, on
    // both instances, whatever they held.
    sqlx_restore(&env, &at_300).await;
    assert_eq!(balance(&reader, &env.keys, "acme", "alice").await, 300);
    assert_eq!(balance(&worker, &env.keys, "acme", "alice").await, 300);
    reader.stop().await;
    worker.stop().await;
}

/// Writes `row`'s balance back into its account, as a restore from a backup would.
async fn sqlx_restore(env: &TestEnv, row: &blindledger_store::AccountRow) {
    let pool = sqlx::MySqlPool::connect(env.db.url()).await.unwrap();
    sqlx::query(
        "UPDATE accounts SET balance = ?, version = version + 1 WHERE tenant = ? AND name = ?",
    )
    .bind(row.balance.as_deref())
    .bind(&row.tenant)
    .bind(&row.name)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cache_every_read_decompresses() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = spawn_with(
        LedgerConfig {
            balance_cache_mib: 0,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let deposit = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 42), &key())
        .await
        .unwrap();
    committed(&app, deposit).await;
    for _ in 0..2 {
        assert_eq!(balance(&app, &env.keys, "acme", "alice").await, 42);
    }
    let stats = app.ledger.value_cache();
    assert_eq!((stats.entries, stats.bytes, stats.hits), (0, 0, 0));
    assert_eq!(stats.misses, 2);
    app.stop().await;
}
