//! Chains: jobs queued on the same accounts are computed by one worker in a row, each
//! reading the balances the previous one left in memory, and committed in one
//! transaction that writes each account once.

use blindledger_ledger::LedgerConfig;
use blindledger_proto::ledger::v1 as pb;
use blindledger_store::Db;

use crate::helpers::*;

const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

/// An instance that accepts and queues jobs but runs none, so that they queue up.
async fn queue_only(env: &TestEnv) -> TestApp {
    spawn_with(
        LedgerConfig {
            workers: 0,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await
}

/// An instance with one worker computing chains of up to `chain_jobs` jobs.
async fn chain_worker(env: &TestEnv, chain_jobs: usize) -> TestApp {
    spawn_with(
        LedgerConfig {
            workers: 1,
            chain_jobs,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await
}

async fn versions(db: &Db) -> Vec<i64> {
    let mut versions = Vec::new();
    for account in ACCOUNTS {
        versions.push(db.account("acme", account).await.unwrap().version);
    }
    versions
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_queued_on_the_same_accounts_run_as_one_chain() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let api = queue_only(&env).await;
    tenant_with_accounts(&api, &env.keys, "acme", &ACCOUNTS).await;
    let db = Db::connect(env.db.url(), 1).await.unwrap();
    let before = versions(&db).await;
    let c = &api.client;
    let k = &env.keys;
    let deposit = c
        .deposit("acme", "alice", encrypt(k, 500), &key())
        .await
        .unwrap();
    let movements = [
        c.transfer("acme", "alice", "bob", encrypt(k, 200), &key())
            .await
            .unwrap(),
        // 300 left: refused, moves nothing.
        c.transfer("acme", "alice", "carol", encrypt(k, 400), &key())
            .await
            .unwrap(),
        c.transfer("acme", "bob", "carol", encrypt(k, 50), &key())
            .await
            .unwrap(),
        c.withdraw("acme", "alice", encrypt(k, 100), &key())
            .await
            .unwrap(),
    ];

    let worker = chain_worker(&env, 8).await;
    committed(&worker, deposit.clone()).await;
    let mut outcomes = Vec::new();
    for job in &movements {
        outcomes.push(movement(&worker, k, job.clone()).await);
    }
    assert_eq!(outcomes, [(200, true), (0, false), (50, true), (100, true)]);
    let balances = [
        balance(&worker, k, "acme", "alice").await,
        balance(&worker, k, "acme", "bob").await,
        balance(&worker, k, "acme", "carol").await,
    ];
    assert_eq!(balances, [200, 150, 50]);

    // One chain: every account written once (not alice three times), every job committed
    // by the same transaction, and nothing decompressed on the way (each job read the
    // balances the one before left in memory; the reads above came from the cache).
    let after = versions(&db).await;
    let written: Vec<_> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(written, [1, 1, 1], "each account written once");
    let mut committed_at = Vec::new();
    for job in std::iter::once(&deposit).chain(&movements) {
        let row = db.job(&job.id).await.unwrap();
        assert_eq!(row.attempts, 1, "computed once");
        committed_at.push(row.committed_at.unwrap());
    }
    assert!(
        committed_at.iter().all(|t| *t == committed_at[0]),
        "one commit: {committed_at:?}"
    );
    assert_eq!(worker.ledger.value_cache().misses, 0);

    // chain_jobs = 1 runs each job alone: a commit, and a write, per job.
    worker.stop().await;
    let alone = chain_worker(&env, 1).await;
    let before = versions(&db).await;
    let jobs = [
        c.deposit("acme", "alice", encrypt(k, 1), &key())
            .await
            .unwrap(),
        c.deposit("acme", "alice", encrypt(k, 2), &key())
            .await
            .unwrap(),
    ];
    for job in jobs {
        committed(&alone, job).await;
    }
    assert_eq!(versions(&db).await[0] - before[0], 2);
    assert_eq!(balance(&alone, k, "acme", "alice").await, 203);
    alone.stop().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_a_database_writer_spoiled_fails_alone_and_the_rest_of_its_chain_commits() {
    let env = TestEnv::new(Backend::MySql).await;
    let api = queue_only(&env).await;
    tenant_with_accounts(&api, &env.keys, "acme", &ACCOUNTS).await;
    let (c, k) = (&api.client, &env.keys);
    let deposit = c
        .deposit("acme", "alice", encrypt(k, 500), &key())
        .await
        .unwrap();
    let spoiled = c
        .transfer("acme", "alice", "bob", encrypt(k, 100), &key())
        .await
        .unwrap();
    let after = c
        .transfer("acme", "alice", "carol", encrypt(k, 50), &key())
        .await
        .unwrap();
    // Someone with write access to the database replaces the queued amount.
    let pool = sqlx::MySqlPool::connect(env.db.url()).await.unwrap();
    sqlx::query("UPDATE jobs SET payload = ? WHERE id = ?")
        .bind(vec![0x5a_u8; 4096])
        .bind(&spoiled.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let worker = chain_worker(&env, 8).await;
    committed(&worker, deposit).await;
    let failed = worker.client.wait_finished(&spoiled.id).await.unwrap();
    assert_eq!(failed.state(), pb::JobState::Failed);
    assert!(!failed.failure_reason.is_empty());
    assert_eq!(movement(&worker, k, after).await, (50, true));
    let balances = [
        balance(&worker, k, "acme", "alice").await,
        balance(&worker, k, "acme", "bob").await,
        balance(&worker, k, "acme", "carol").await,
    ];
    assert_eq!(balances, [450, 0, 50], "the spoiled transfer moved nothing");
    worker.stop().await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_across_a_chain_and_its_window_is_stored() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let api = queue_only(&env).await;
    tenant_with_accounts(&api, &env.keys, "acme", &["shop"]).await;
    let limits = pb::TransferLimits {
        max_amount: 100,
        window_limit: 150,
        window_seconds: 86_400,
    };
    let (c, k) = (&api.client, &env.keys);
    c.open_account("acme", "dave", Some(limits)).await.unwrap();
    let deposit = c
        .deposit("acme", "dave", encrypt(k, 500), &key())
        .await
        .unwrap();
    // 120 > max; 80 fits; 90 would bring the window to 170 > 150; 70 brings it to 150; a
    // deposit leaves the window as it is; then 10 is past it.
    let mut jobs = Vec::new();
    for amount in [120, 80, 90, 70] {
        jobs.push(
            c.transfer("acme", "dave", "shop", encrypt(k, amount), &key())
                .await
                .unwrap(),
        );
    }
    let top_up = c
        .deposit("acme", "dave", encrypt(k, 5), &key())
        .await
        .unwrap();
    jobs.push(
        c.transfer("acme", "dave", "shop", encrypt(k, 10), &key())
            .await
            .unwrap(),
    );

    let worker = chain_worker(&env, 8).await;
    committed(&worker, deposit).await;
    committed(&worker, top_up).await;
    let mut outcomes = Vec::new();
    for job in jobs {
        outcomes.push(movement(&worker, k, job).await);
    }
    assert_eq!(
        outcomes,
        [(0, false), (80, true), (0, false), (70, true), (0, false)]
    );
    assert_eq!(
        worker.ledger.value_cache().misses,
        0,
        "one chain, nothing decompressed"
    );
    assert_eq!(balance(&worker, k, "acme", "dave").await, 355);
    assert_eq!(balance(&worker, k, "acme", "shop").await, 150);

    // The chain stored the window it ended with: a transfer computed alone, from what is
    // stored, finds it used up.
    worker.stop().await;
    let fresh = chain_worker(&env, 1).await;
    let one = fresh
        .client
        .transfer("acme", "dave", "shop", encrypt(k, 1), &key())
        .await
        .unwrap();
    assert_eq!(movement(&fresh, k, one).await, (0, false));
    assert!(fresh.ledger.value_cache().misses > 0, "read from storage");
    fresh.stop().await;
    api.stop().await;
}
