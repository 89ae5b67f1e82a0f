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
