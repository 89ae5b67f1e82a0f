//! Conservation: random deposits and interleaved transfers, including overdrafts, sent to
//! two instances on one database (one computing two jobs at once), with their balance
//! caches on; every decrypted balance matches a plaintext model and the total is
//! conserved.

use std::collections::BTreeMap;

use blindledger_keyholder::{decrypt_flag, decrypt_value};
use blindledger_proto::ledger::v1 as pb;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::*;

const TENANT: &str = "acme";
const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

#[tokio::test(flavor = "multi_thread")]
async fn conservation_on_mariadb() {
    conservation(Backend::MySql, 7).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn conservation_on_sqlite() {
    conservation(Backend::Sqlite, 11).await;
}

/// A submitted movement and the model's expectation of it.
struct Expected {
    job: pb::Job,
    moved: u64,
}

async fn conservation(backend: Backend, seed: u64) {
    let env = TestEnv::new(backend).await;
    let app = env.spawn().await;
    let second = spawn_with(
        blindledger_ledger::LedgerConfig {
            fhe_parallel_jobs: 2,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await;
    let instances = [&app, &second];
    tenant_with_accounts(&app, &env.keys, TENANT, &ACCOUNTS).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model: BTreeMap<&str, u64> = ACCOUNTS.iter().map(|a| (*a, 0)).collect();
    let mut jobs = Vec::new();

    for (i, (account, amount)) in [("alice", 500), ("bob", rng.random_range(100..300))]
        .into_iter()
        .enumerate()
    {
        let job = instances[i % 2]
            .client
            .deposit(TENANT, account, encrypt(&env.keys, amount), &key())
            .await
            .unwrap();
        *model.get_mut(account).unwrap() += amount;
        jobs.push(Expected { job, moved: amount });
    }
    // An overdraft first (carol holds nothing), then random transfers, all queued at once
    // so that workers interleave them; the model applies them in submission order.
    let mut plan = vec![("carol", "alice", 50u64)];
    for _ in 0..4 {
        let from = ACCOUNTS[rng.random_range(0..3)];
        let to = ACCOUNTS
            .iter()
            .copied()
            .filter(|a| *a != from)
            .nth(rng.random_range(0..2))
            .unwrap();
        plan.push((from, to, rng.random_range(1..400)));
    }
    for (i, (from, to, amount)) in plan.into_iter().enumerate() {
        let job = instances[i % 2]
            .client
            .transfer(TENANT, from, to, encrypt(&env.keys, amount), &key())
            .await
            .unwrap();
        let moved = if model[from] >= amount { amount } else { 0 };
        *model.get_mut(from).unwrap() -= moved;
        *model.get_mut(to).unwrap() += moved;
        jobs.push(Expected { job, moved });
    }
    let withdrawal = second
        .client
        .withdraw(TENANT, "bob", encrypt(&env.keys, 60), &key())
        .await
        .unwrap();
    let withdrawn = if model["bob"] >= 60 { 60 } else { 0 };
    *model.get_mut("bob").unwrap() -= withdrawn;
    jobs.push(Expected {
        job: withdrawal,
        moved: withdrawn,
    });

    for expected in &jobs {
        let done = committed(&app, expected.job.clone()).await;
        if done.kind() != pb::JobKind::Deposit {
            let full = app.client.job(&done.id, true).await.unwrap();
            let Some(pb::job::Result::Movement(result)) = full.result else {
                panic!("movement results missing")
            };
            let moved = decrypt_value(&env.keys.client_key, WIDTH, &result.moved).unwrap();
            assert_eq!(
                moved, expected.moved,
                "job {} moved the wrong amount",
                done.id
            );
            assert_eq!(
                decrypt_flag(&env.keys.client_key, &result.ok).unwrap(),
                expected.moved > 0
            );
        }
    }
    let mut total = 0;
    for account in ACCOUNTS {
        let actual = balance(&app, &env.keys, TENANT, account).await;
        assert_eq!(actual, model[account], "balance of {account}");
        total += actual;
    }
    assert_eq!(total, 500 + jobs[1].moved - withdrawn, "total is conserved");
    assert_eq!(jobs[2].moved, 0, "the overdraft moved nothing");

    check_aggregate(&app, &env, &jobs).await;
    app.stop().await;
    second.stop().await;
}

/// Aggregates over alice's transfers: sums in and out, and the count above a threshold.
async fn check_aggregate(app: &TestApp, env: &TestEnv, jobs: &[Expected]) {
    let threshold = 100;
    let transfers: Vec<_> = jobs
        .iter()
        .filter(|e| e.job.kind() == pb::JobKind::Transfer)
        .collect();
    let out: Vec<u64> = transfers
        .iter()
        .filter(|e| e.job.accounts[0] == "alice")
        .map(|e| e.moved)
        .collect();
    let inc: u64 = transfers
        .iter()
        .filter(|e| e.job.accounts[1] == "alice")
        .map(|e| e.moved)
        .sum();
    let from = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let to = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    let job = app
        .client
        .aggregate(TENANT, "alice", from, to, threshold, &key())
        .await
        .unwrap();
    committed(app, job.clone()).await;
    let full = app.client.job(&job.id, true).await.unwrap();
    let Some(pb::job::Result::Aggregate(result)) = full.result else {
        panic!("aggregate results missing")
    };
    let ck = &env.keys.client_key;
    assert_eq!(
        decrypt_value(ck, WIDTH, &result.sum_out).unwrap(),
        out.iter().sum::<u64>()
    );
    assert_eq!(decrypt_value(ck, WIDTH, &result.sum_in).unwrap(), inc);
    let above = out.iter().filter(|m| **m > threshold).count() as u64;
    assert_eq!(
        decrypt_value(ck, WIDTH, &result.count_above).unwrap(),
        above
    );
}
