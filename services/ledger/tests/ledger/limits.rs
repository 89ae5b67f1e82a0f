//! Plaintext limits enforced on encrypted amounts: a transfer above the account's maximum
//! or past its window limit moves nothing, and only decryption tells.

use blindledger_proto::ledger::v1 as pb;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn limits_are_enforced_homomorphically() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["shop"]).await;
    let limits = pb::TransferLimits {
        max_amount: 100,
        window_limit: 150,
        window_seconds: 86_400,
    };
    app.client
        .open_account("acme", "dave", Some(limits))
        .await
        .unwrap();
    committed(
        &app,
        app.client
            .deposit("acme", "dave", encrypt(&env.keys, 500), &key())
            .await
            .unwrap(),
    )
    .await;

    // 120 > max; 80 fits; 90 would bring the window to 170 > 150; 70 brings it to 150.
    let mut expected_dave = 500;
    for (amount, moves) in [(120, false), (80, true), (90, false), (70, true)] {
        let job = app
            .client
            .transfer("acme", "dave", "shop", encrypt(&env.keys, amount), &key())
            .await
            .unwrap();
        let done = committed(&app, job).await;
        assert_eq!(
            done.state(),
            pb::JobState::Committed,
            "a refused transfer still commits"
        );
        if moves {
            expected_dave -= amount;
        }
    }
    assert_eq!(
        balance(&app, &env.keys, "acme", "dave").await,
        expected_dave
    );
    assert_eq!(
        balance(&app, &env.keys, "acme", "shop").await,
        500 - expected_dave
    );
    app.stop().await;
}

/// A window written before allowances were kept holds the outflow so far in
/// `window_spent`. The next transfer counts its allowance from it (the limit less the
/// outflow, never below zero) and writes the allowance instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_stored_as_an_outflow_is_carried_over() {
    use blindledger_fhe::ops::Value;
    use blindledger_fhe::{wire, FheExecutor};

    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["shop"]).await;
    // A ten-year window: the test cannot straddle two of them.
    let window_seconds = 10 * 365 * 86_400;
    let limits = pb::TransferLimits {
        max_amount: 100,
        window_limit: 150,
        window_seconds,
    };
    app.client
        .open_account("acme", "dave", Some(limits))
        .await
        .unwrap();
    let deposit = app
        .client
        .deposit("acme", "dave", encrypt(&env.keys, 500), &key())
        .await
        .unwrap();
    committed(&app, deposit).await;

    // 110 moved out so far, stored the former way.
    let keys = env.keys.clone();
    let spent = tokio::task::spawn_blocking(move || {
        let fhe = FheExecutor::new(1, 1).unwrap();
        let key = fhe.insert("test", &keys.server_key);
        let amount = encrypt(&keys, 110);
        fhe.run(&key, || {
            let list = wire::decode_amount(&amount, WIDTH).unwrap();
            Value::expand(&list, WIDTH).unwrap().compress().unwrap()
        })
    })
    .await
    .unwrap();
    let length = i64::try_from(window_seconds).unwrap() * 1000;
    let now = blindledger_store::now_ms();
    let pool = sqlx::SqlitePool::connect(env.db.url()).await.unwrap();
    sqlx::query(
        "UPDATE accounts SET window_start = ?, window_spent = ?, window_remaining = NULL, \
         window_base = NULL WHERE tenant = 'acme' AND name = 'dave'",
    )
    .bind(now - now.rem_euclid(length))
    .bind(spent)
    .execute(&pool)
    .await
    .unwrap();

    // 41 would bring the window to 151; 40 brings it to 150.
    for (amount, moved) in [(41, 0), (40, 40), (1, 0)] {
        let job = app
            .client
            .transfer("acme", "dave", "shop", encrypt(&env.keys, amount), &key())
            .await
            .unwrap();
        let done = committed(&app, job).await;
        assert_eq!(movement(&app, &env.keys, done).await.0, moved, "{amount}");
    }
    assert_eq!(balance(&app, &env.keys, "acme", "dave").await, 460);
    let (spent, remaining): (Option<Vec<u8>>, Option<Vec<u8>>) = sqlx::query_as(
        "SELECT window_spent, window_remaining FROM accounts WHERE tenant = 'acme' AND name = 'dave'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(spent.is_none(), "the former outflow is cleared");
    assert!(remaining.is_some(), "the allowance replaces it");
    app.stop().await;
}
