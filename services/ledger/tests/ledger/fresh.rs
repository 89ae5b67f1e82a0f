//! Values the ledger holds without ever having computed them — the zero balance of a new
//! account, the sums of an aggregate over a period without transfers — reach the key
//! holder as ciphertexts that pass the client's conformance check and decrypt to zero.

use std::time::{Duration, SystemTime};

use blindledger_keyholder::decrypt_value;
use blindledger_proto::ledger::v1 as pb;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_never_touched_account_reads_zero() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["carol"]).await;

    let (width, first, version) = app.client.balance("acme", "carol").await.unwrap();
    assert_eq!((width, version), (WIDTH, 0));
    assert_eq!(
        decrypt_value(&env.keys.client_key, width, &first).unwrap(),
        0
    );
    // A fresh encryption each time, as for any other balance: nothing on the wire tells a
    // never-touched account from one whose balance came back to zero.
    let (_, second, _) = app.client.balance("acme", "carol").await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        decrypt_value(&env.keys.client_key, width, &second).unwrap(),
        0
    );

    // An aggregate over a period in which nothing happened: zero sums, zero count.
    let now = SystemTime::now();
    let job = app
        .client
        .aggregate(
            "acme",
            "carol",
            now - Duration::from_secs(3600),
            now + Duration::from_secs(60),
            0,
            &key(),
        )
        .await
        .unwrap();
    committed(&app, job.clone()).await;
    let full = app.client.job(&job.id, true).await.unwrap();
    let Some(pb::job::Result::Aggregate(result)) = full.result else {
        panic!("aggregate results missing")
    };
    assert_eq!(result.transfers, 0);
    for value in [&result.sum_out, &result.sum_in, &result.count_above] {
        assert_eq!(
            decrypt_value(&env.keys.client_key, WIDTH, value).unwrap(),
            0
        );
    }
    app.stop().await;
}
