//! Two ledger instances on one MariaDB database, concurrent transfers on the same accounts:
//! no update is lost, and the jobs apply in submission order.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_lose_no_update() {
    let env = TestEnv::new(Backend::MySql).await;
    let first = env.spawn().await;
    let second = env.spawn().await;
    tenant_with_accounts(&first, &env.keys, "acme", &["alice", "bob"]).await;
    committed(
        &first,
        first
            .client
            .deposit("acme", "alice", encrypt(&env.keys, 300), &key())
            .await
            .unwrap(),
    )
    .await;
    committed(
        &second,
        second
            .client
            .deposit("acme", "bob", encrypt(&env.keys, 300), &key())
            .await
            .unwrap(),
    )
    .await;

    // Six transfers in both directions, submitted alternately to the two instances and
    // concurrently, so both instances' workers race for the same two balances.
    let plan = [
        ("alice", "bob", 40),
        ("bob", "alice", 25),
        ("alice", "bob", 10),
        ("bob", "alice", 5),
        ("alice", "bob", 60),
        ("bob", "alice", 30),
    ];
    let submissions = plan.iter().enumerate().map(|(i, (from, to, amount))| {
        let app = if i % 2 == 0 { &first } else { &second };
        let amount = encrypt(&env.keys, *amount);
        async move {
            app.client
                .transfer("acme", from, to, amount, &key())
                .await
                .unwrap()
        }
    });
    let jobs = futures::future::join_all(submissions).await;
    for (i, job) in jobs.into_iter().enumerate() {
        committed(if i % 2 == 0 { &first } else { &second }, job).await;
    }
    let moved_to_bob: i64 = plan
        .iter()
        .map(|(from, _, a)| {
            if *from == "alice" {
                *a as i64
            } else {
                -(*a as i64)
            }
        })
        .sum();
    let alice = balance(&first, &env.keys, "acme", "alice").await;
    let bob = balance(&second, &env.keys, "acme", "bob").await;
    assert_eq!(alice as i64, 300 - moved_to_bob);
    assert_eq!(bob as i64, 300 + moved_to_bob);
    first.stop().await;
    second.stop().await;
}
