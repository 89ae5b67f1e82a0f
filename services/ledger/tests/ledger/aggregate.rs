//! Aggregates over history: running totals through midnights stand in for the transfers
//! of the whole days of a period, and every figure matches a plaintext model whether the
//! totals were folded by an earlier aggregate, by the background fold, or not at all.

use std::time::{Duration, SystemTime};

use blindledger_keyholder::decrypt_value;
use blindledger_proto::ledger::v1 as pb;

use crate::helpers::*;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A committed transfer, dated `age_ms` before the test's start.
struct Past {
    from: &'static str,
    to: &'static str,
    amount: u64,
    age_ms: i64,
}

const HISTORY: [Past; 7] = [
    Past {
        from: "alice",
        to: "bob",
        amount: 100,
        age_ms: 40 * DAY_MS,
    },
    Past {
        from: "bob",
        to: "alice",
        amount: 30,
        age_ms: 35 * DAY_MS,
    },
    Past {
        from: "alice",
        to: "bob",
        amount: 250,
        age_ms: 20 * DAY_MS + 5 * HOUR_MS,
    },
    Past {
        from: "alice",
        to: "bob",
        amount: 60,
        age_ms: 10 * DAY_MS,
    },
    Past {
        from: "bob",
        to: "alice",
        amount: 5,
        age_ms: DAY_MS + HOUR_MS,
    },
    Past {
        from: "alice",
        to: "carol",
        amount: 7,
        age_ms: DAY_MS + 2 * HOUR_MS,
    },
    Past {
        from: "alice",
        to: "bob",
        amount: 120,
        age_ms: 0,
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn aggregates_read_running_totals_and_match_the_model() {
    let env = TestEnv::new(Backend::Sqlite).await;
    // No background fold: which aggregate folds which total is the test's to say.
    let app = spawn_with(
        blindledger_ledger::LedgerConfig {
            fold_interval_ms: 0,
            ..env.config()
        },
        &env.admin_token(),
    )
    .await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "bob", "carol"]).await;
    for account in ["alice", "bob"] {
        let job = app
            .client
            .deposit("acme", account, encrypt(&env.keys, 1_000), &key())
            .await
            .unwrap();
        committed(&app, job).await;
    }
    let now = blindledger_store::now_ms();
    let pool = sqlx::SqlitePool::connect(env.db.url()).await.unwrap();
    for past in &HISTORY {
        let job = app
            .client
            .transfer(
                "acme",
                past.from,
                past.to,
                encrypt(&env.keys, past.amount),
                &key(),
            )
            .await
            .unwrap();
        let job = committed(&app, job).await;
        sqlx::query("UPDATE jobs SET committed_at = ? WHERE id = ?")
            .bind(now - past.age_ms)
            .bind(&job.id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let totals = |account: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64,)>("SELECT COUNT(*) FROM account_totals WHERE account = ?")
                .bind(account)
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    assert_eq!(totals("alice").await, 0);

    // Shorter than a day: every transfer read; no total.
    check(&app, &env, "alice", 2 * HOUR_MS, 100).await;
    assert_eq!(totals("alice").await, 0);
    // Thirty days: the first aggregate folds the totals at both midnights...
    check(&app, &env, "alice", 30 * DAY_MS, 100).await;
    let folded = totals("alice").await;
    assert!(
        folded >= 3,
        "totals at the period's midnights were stored ({folded})"
    );
    // ...which the next one reads, with the same figures, as do longer periods and
    // other thresholds.
    check(&app, &env, "alice", 30 * DAY_MS, 100).await;
    check(&app, &env, "alice", 45 * DAY_MS, 50).await;
    check(&app, &env, "bob", 36 * DAY_MS, 0).await;

    // The background fold brings accounts that moved money yesterday up to the latest
    // settled midnight: carol, whom no aggregate read yet (running it again stores
    // nothing twice).
    app.ledger.fold_totals().await.unwrap();
    assert_eq!(totals("carol").await, 1, "carol's incoming total");
    app.ledger.fold_totals().await.unwrap();
    assert_eq!(totals("carol").await, 1);
    check(&app, &env, "carol", 3 * DAY_MS, 0).await;
    check(&app, &env, "alice", 30 * DAY_MS, 100).await;
    check(&app, &env, "alice", 3 * DAY_MS, 50).await;
    app.stop().await;
}

/// Aggregates `account` over the last `span_ms` (and the minute to come) and compares
/// each figure with the plaintext model of [`HISTORY`].
async fn check(app: &TestApp, env: &TestEnv, account: &str, span_ms: i64, threshold: u64) {
    let age_limit = span_ms;
    let in_period = |p: &&Past| p.age_ms < age_limit;
    let out: Vec<u64> = HISTORY
        .iter()
        .filter(in_period)
        .filter(|p| p.from == account)
        .map(|p| p.amount)
        .collect();
    let inc: Vec<u64> = HISTORY
        .iter()
        .filter(in_period)
        .filter(|p| p.to == account)
        .map(|p| p.amount)
        .collect();
    let started = SystemTime::now();
    let from = started - Duration::from_millis(span_ms as u64);
    let job = app
        .client
        .aggregate(
            "acme",
            account,
            from,
            started + Duration::from_secs(60),
            threshold,
            &key(),
        )
        .await
        .unwrap();
    let done = committed(app, job).await;
    assert_eq!(
        done.state(),
        pb::JobState::Committed,
        "{}",
        done.failure_reason
    );
    let full = app.client.job(&done.id, true).await.unwrap();
    let Some(pb::job::Result::Aggregate(result)) = full.result else {
        panic!("aggregate results missing")
    };
    let ck = &env.keys.client_key;
    let what = format!("{account} over {span_ms} ms above {threshold}");
    assert_eq!(
        decrypt_value(ck, WIDTH, &result.sum_out).unwrap(),
        out.iter().sum::<u64>(),
        "out: {what}"
    );
    assert_eq!(
        decrypt_value(ck, WIDTH, &result.sum_in).unwrap(),
        inc.iter().sum::<u64>(),
        "in: {what}"
    );
    assert_eq!(
        decrypt_value(ck, WIDTH, &result.count_above).unwrap(),
        out.iter().filter(|a| **a > threshold).count() as u64,
        "count: {what}"
    );
    assert_eq!(result.transfers, (out.len() + inc.len()) as u64, "{what}");
}
