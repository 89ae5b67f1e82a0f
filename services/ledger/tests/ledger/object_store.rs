//! Server keys in an S3-compatible object store shared by two ledger processes: a tenant
//! registers its keys through one, the other computes its jobs with the key it reads back
//! from the bucket. A store that refuses the credentials leaves nothing registered.
//!
//! The server comes from `BLINDLEDGER_TEST_S3_ENDPOINT`, `BLINDLEDGER_TEST_S3_ACCESS_KEY`,
//! `BLINDLEDGER_TEST_S3_SECRET_KEY` and `BLINDLEDGER_TEST_S3_BUCKET` (`scripts/test.sh`
//! starts one and sets them).

use blindledger_proto::ledger::v1 as pb;
use tonic::Code;

use crate::helpers::*;

/// The test server's settings, as the ledger reads them (`AWS_*`), with `secret` as the
/// secret key and objects under `prefix`.
fn s3_settings(secret: Option<&str>, prefix: &str) -> Vec<(String, String)> {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run scripts/test.sh, which starts an S3-compatible server")
        })
    };
    let bucket = var("BLINDLEDGER_TEST_S3_BUCKET");
    vec![
        ("AWS_ENDPOINT".into(), var("BLINDLEDGER_TEST_S3_ENDPOINT")),
        ("AWS_ALLOW_HTTP".into(), "true".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            var("BLINDLEDGER_TEST_S3_ACCESS_KEY"),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            secret.map_or_else(|| var("BLINDLEDGER_TEST_S3_SECRET_KEY"), str::to_owned),
        ),
        (
            "BLINDLEDGER_LEDGER_OBJECT_STORE_URL".into(),
            format!("s3://{bucket}/{prefix}"),
        ),
    ]
}

fn borrowed(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_share_server_keys_through_s3() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let s3 = s3_settings(None, &prefix);

    // The API instance runs no jobs; the worker instance serves no tenant of its own.
    let mut api_settings = borrowed(&s3);
    api_settings.push(("BLINDLEDGER_LEDGER_WORKERS", "0"));
    let (mut api, client) = start_process_with(&env, &api_settings).await;
    let (mut worker, _) = start_process_with(&env, &borrowed(&s3)).await;

    client
        .register_keys("acme", "local", WIDTH, &env.keys, |_, _| {})
        .await
        .unwrap();
    client.open_account("acme", "alice", None).await.unwrap();
    let deposit = client
        .deposit("acme", "alice", encrypt(&env.keys, 4_200), &key())
        .await
        .unwrap();
    let done = client.wait_job(&deposit.id).await.unwrap();
    assert_eq!(done.state(), pb::JobState::Committed, "{done:?}");
    let (width, balance, _) = client.balance("acme", "alice").await.unwrap();
    assert_eq!(
        blindledger_keyholder::decrypt_value(&env.keys.client_key, width, &balance).unwrap(),
        4_200
    );
    // Nothing was written to the local directory: the key is in the bucket only.
    let local = env.objects.path().join("server-keys");
    assert!(!local.exists(), "{} exists", local.display());

    // Wrong credentials: the registration fails as unavailable and leaves no tenant.
    let wrong = s3_settings(Some("not-the-secret"), &prefix);
    let (mut refused, bad_client) = start_process_with(&env, &borrowed(&wrong)).await;
    let result = bad_client
        .register_keys("globex", "local", WIDTH, &env.keys, |_, _| {})
        .await;
    assert_eq!(code(result), Code::Unavailable);
    assert_eq!(code(client.tenant("globex").await), Code::NotFound);

    for child in [&mut api, &mut worker, &mut refused] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}
