//! One tenant cannot starve the others: its open jobs and job watches are bounded, and
//! workers take ready jobs in turns across tenants.

use blindledger_store::{Db, NewJob};
use tonic::Code;

use crate::helpers::*;

fn exhausted<T: std::fmt::Debug>(result: Result<T, blindledger_client::ClientError>) {
    let err = result.expect_err("refused");
    assert_eq!(
        err.status().map(tonic::Status::code),
        Some(Code::ResourceExhausted),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_at_its_quota_is_refused_and_the_others_are_not() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    // An API-only instance: jobs stay queued.
    config.workers = 0;
    config.max_open_jobs_per_tenant = 2;
    config.max_watches_per_tenant = 1;
    let app = spawn_with(config, &env.admin_token()).await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    tenant_with_accounts(&app, &env.keys, "globex", &["bob"]).await;
    let amount = encrypt(&env.keys, 1);
    let deposit = |tenant: &'static str, account: &'static str, key: String| {
        let (client, amount) = (app.client.clone(), amount.clone());
        async move { client.deposit(tenant, account, amount, &key).await }
    };

    let retried = key();
    let first = deposit("acme", "alice", retried.clone()).await.unwrap();
    deposit("acme", "alice", key()).await.unwrap();
    exhausted(deposit("acme", "alice", key()).await);
    // A retry of a queued job is still answered with it, and the other tenant queues.
    assert_eq!(
        deposit("acme", "alice", retried).await.unwrap().id,
        first.id
    );
    let other = deposit("globex", "bob", key()).await.unwrap();

    let watching = app.client.watch_job(&first.id).await.unwrap();
    exhausted(app.client.watch_job(&first.id).await.map(drop));
    // Still open at shutdown, on a job that never runs: the stop ends it.
    let _globex = app.client.watch_job(&other.id).await.unwrap();
    // Closing the watch gives the place back.
    drop(watching);
    let client = app.client.clone();
    blindledger_test_support::eventually(
        "acme's watch place is free again",
        std::time::Duration::from_secs(10),
        || {
            let client = client.clone();
            let id = first.id.clone();
            async move { client.watch_job(&id).await.ok().map(drop) }
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_take_ready_jobs_in_turns_across_tenants() {
    let env = TestEnv::new(Backend::MySql).await;
    let app = {
        let mut config = env.config();
        config.workers = 0;
        spawn_with(config, &env.admin_token()).await
    };
    tenant_with_accounts(&app, &env.keys, "acme", &["a1", "a2", "a3"]).await;
    tenant_with_accounts(&app, &env.keys, "globex", &["g1"]).await;
    let db = Db::connect(env.db.url(), 2).await.unwrap();
    let job = |tenant: &str, account: &str| NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: tenant.into(),
        kind: "deposit".into(),
        account_a: account.into(),
        account_b: None,
        idempotency_key: key(),
        request_hash: "h".into(),
        payload: None,
        params: "{}".into(),
        trace_parent: None,
    };
    // acme queued three ready jobs before globex queued one.
    for account in ["a1", "a2", "a3"] {
        db.submit_job(&job("acme", account)).await.unwrap();
    }
    db.submit_job(&job("globex", "g1")).await.unwrap();
    let claimed = db.claim_jobs("test", 60_000, 2).await.unwrap();
    let tenants: Vec<_> = claimed.iter().map(|j| j.tenant.as_str()).collect();
    assert_eq!(
        tenants,
        ["acme", "globex"],
        "globex waits behind one acme job, not three"
    );
    db.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_follows_a_job_that_another_instance_changes() {
    use futures::StreamExt as _;
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = {
        let mut config = env.config();
        config.workers = 0;
        config.watch_poll_ms = 100;
        spawn_with(config, &env.admin_token()).await
    };
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let job = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 1), &key())
        .await
        .unwrap();
    let mut watching = app.client.watch_job(&job.id).await.unwrap();
    let first = watching.next().await.unwrap().unwrap();
    assert_eq!(
        first.state(),
        blindledger_proto::ledger::v1::JobState::Pending
    );

    // Another instance claims it: this instance's workers never touch it, and its watch
    // learns of it from the change feed (each stream re-reads on its own only every 30 s).
    let db = Db::connect(env.db.url(), 2).await.unwrap();
    let claimed = db.claim_jobs("other-instance", 60_000, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), watching.next())
        .await
        .expect("the watch saw the other instance's change")
        .unwrap()
        .unwrap();
    assert_eq!(
        next.state(),
        blindledger_proto::ledger::v1::JobState::Running
    );
    db.close().await;
    app.stop().await;
}
