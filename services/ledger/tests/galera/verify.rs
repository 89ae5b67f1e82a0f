//! What must hold after the faults: every acknowledged job committed once, balances equal
//! to a plaintext model, the total conserved.

use std::time::Duration;

use blindledger_keyholder::{decrypt_value, TenantKeys};
use blindledger_proto::ledger::v1 as pb;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cluster::Cluster;
use crate::helpers::{balance, committed, encrypt, key, TestApp, WIDTH};
use crate::workload::{Acknowledged, Operation, ACCOUNTS, TENANT};

/// Every account's opening deposit.
const OPENING: u64 = 1_000;

/// Deposits the opening balance in every account; returns the model's starting point.
pub async fn open_balances(app: &TestApp, keys: &TenantKeys) -> Vec<u64> {
    for account in ACCOUNTS {
        let job = app
            .client
            .deposit(TENANT, account, encrypt(keys, OPENING), &key())
            .await
            .expect("opening deposit");
        committed(app, job).await;
    }
    vec![OPENING; ACCOUNTS.len()]
}

/// Waits for each acknowledged job to finish and checks it committed.
pub async fn all_committed(app: &TestApp, acknowledged: &[Acknowledged]) {
    for ack in acknowledged {
        let job = app
            .client
            .job(&ack.job_id, false)
            .await
            .expect("job readable");
        if job.state() != pb::JobState::Committed {
            committed(app, job).await;
        }
    }
}

/// Checks that each acknowledged operation is exactly one committed job and nothing else
/// was queued; returns the figures.
pub async fn exactly_once(
    app: &TestApp,
    cluster: &Cluster,
    acknowledged: &[Acknowledged],
) -> String {
    all_committed(app, acknowledged).await;
    let mut ids: Vec<&str> = acknowledged.iter().map(|a| a.job_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        acknowledged.len(),
        "two operations got the same job"
    );
    let mut keys: Vec<&str> = acknowledged
        .iter()
        .map(|a| a.idempotency_key.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), acknowledged.len());

    let jobs = cluster.job_states().await;
    let committed = jobs
        .iter()
        .filter(|(state, _)| state == "COMMITTED")
        .count();
    let opening = ACCOUNTS.len();
    assert_eq!(
        jobs.len(),
        acknowledged.len() + opening,
        "a job was queued twice or lost"
    );
    assert_eq!(committed, jobs.len(), "every job committed: {jobs:?}");
    let reclaimed = jobs.iter().filter(|(_, attempts)| *attempts > 1).count();
    format!(
        "{} jobs acknowledged, {committed} committed (with {opening} opening deposits), \
         {reclaimed} taken over by a second attempt",
        acknowledged.len()
    )
}

/// Replays the acknowledged operations, in submission order, on plaintext balances and
/// compares them with the decrypted ones.
pub async fn balances_match_model(
    app: &TestApp,
    keys: &TenantKeys,
    opening: &[u64],
    acknowledged: &[Acknowledged],
) -> String {
    let mut model = opening.to_vec();
    let mut withdrawn = 0;
    let mut refused = 0;
    for ack in acknowledged {
        match ack.operation {
            Operation::Deposit { account, amount } => model[account] += amount,
            Operation::Transfer { from, to, amount } => {
                let moved = if model[from] >= amount { amount } else { 0 };
                if moved == 0 {
                    // The ledger must have moved nothing; its result says so.
                    assert_eq!(moved_by(app, keys, &ack.job_id).await, 0);
                    refused += 1;
                }
                model[from] -= moved;
                model[to] += moved;
            }
            Operation::Withdraw { account, amount } => {
                let moved = if model[account] >= amount { amount } else { 0 };
                if moved == 0 {
                    assert_eq!(moved_by(app, keys, &ack.job_id).await, 0);
                    refused += 1;
                }
                model[account] -= moved;
                withdrawn += moved;
            }
            Operation::Aggregate { .. } => {}
        }
    }
    let mut decrypted = Vec::new();
    for account in ACCOUNTS {
        decrypted.push(balance(app, keys, TENANT, account).await);
    }
    assert_eq!(decrypted, model, "decrypted balances against the model");
    let deposited: u64 = opening.iter().sum::<u64>()
        + acknowledged
            .iter()
            .map(|a| match a.operation {
                Operation::Deposit { amount, .. } => amount,
                _ => 0,
            })
            .sum::<u64>();
    let total: u64 = decrypted.iter().sum();
    assert_eq!(total, deposited - withdrawn, "total conserved");
    format!(
        "decrypted balances equal the plaintext model; {total} held = {deposited} deposited \
         - {withdrawn} withdrawn; {refused} withdrawals or transfers not covered, each moving nothing"
    )
}

async fn moved_by(app: &TestApp, keys: &TenantKeys, job_id: &str) -> u64 {
    let job = app.client.job(job_id, true).await.expect("job results");
    let Some(pb::job::Result::Movement(result)) = job.result else {
        panic!("transfer {job_id} has no movement result")
    };
    decrypt_value(&keys.client_key, WIDTH, &result.moved).expect("moved decrypts")
}

/// Whether the ledger's health service reports SERVING.
pub async fn serving(app: &TestApp) -> bool {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("health endpoint");
    let mut health = HealthClient::new(channel);
    let request = HealthCheckRequest {
        service: "blindledger.ledger.v1.LedgerService".into(),
    };
    let call = tokio::time::timeout(Duration::from_secs(5), health.check(request));
    match call.await {
        Ok(Ok(response)) => response.into_inner().status() == ServingStatus::Serving,
        _ => false,
    }
}
