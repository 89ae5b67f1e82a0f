//! How long a cycle over a million logged decisions takes (ignored by default: seeding
//! takes a minute or two). Run with
//! `cargo test --release -p blindledger-controller --test controller -- --ignored --nocapture perf`;
//! `BLINDLEDGER_PERF_ROWS` changes the number of decisions.

use std::time::{Duration, Instant};

use crate::helpers::{config, TestApp, TestKeys};
use blindledger_test_support::metadata::{
    insert_decisions, insert_jobs, Decision, Job, Rng, MINUTE, NOW, TRANSFER,
};
use blindledger_test_support::TestDatabase;

const ACCOUNTS: i64 = 10_000;
const PRINCIPALS: i64 = 2_500;
const CHUNK: usize = 20_000;

/// Decisions `first..first + count` of `total`, spread evenly (in time order, as the
/// ledger appends them) over the baseline day and the window, with their transfer jobs.
fn chunk(rng: &mut Rng, first: usize, count: usize, total: usize) -> (Vec<Decision>, Vec<Job>) {
    let span = 25 * 60 * MINUTE;
    let start = NOW - span;
    let mut decisions = Vec::with_capacity(count);
    let mut jobs = Vec::with_capacity(count);
    for i in first..first + count {
        let account = rng.range(0, ACCOUNTS);
        let at = start + (i as i128 * span as i128 / total as i128) as i64;
        let allowed = rng.range(0, 50) != 0;
        decisions.push(Decision {
            at,
            principal: format!("teller-{}", account % PRINCIPALS),
            roles: vec!["teller"],
            method: TRANSFER.to_string(),
            account: format!("acct-{account}"),
            allowed,
        });
        if allowed {
            jobs.push(Job {
                at: at + 5,
                kind: "transfer",
                from: format!("acct-{account}"),
                to: Some(format!(
                    "acct-{}",
                    (account * 7 + rng.range(0, 5)) % ACCOUNTS
                )),
            });
        }
    }
    (decisions, jobs)
}

// Multi-threaded like the service's runtime: a cycle reads on several tasks at once.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "seeds a million rows; run explicitly to measure"]
async fn perf_cycle_over_a_million_decisions() {
    let rows: usize = std::env::var("BLINDLEDGER_PERF_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    let pool = app.controller.repo().pool().clone();
    let mut rng = Rng::new(5);
    let seeding = Instant::now();
    let (mut decisions, mut jobs) = (0, 0);
    while decisions < rows {
        let (d, j) = chunk(&mut rng, decisions, CHUNK.min(rows - decisions), rows);
        insert_decisions(&pool, &d).await;
        insert_jobs(&pool, &j).await;
        decisions += d.len();
        jobs += j.len();
    }
    println!(
        "seeded {decisions} decisions and {jobs} jobs in {:.1?}",
        seeding.elapsed()
    );

    let started = Instant::now();
    let report = app.controller.run_cycle_at(NOW, true).await.unwrap();
    let took = started.elapsed();
    println!(
        "cycle: {took:.2?} for {} decision rows and {} job rows; {} accounts, {} principals scored",
        report.decision_rows, report.job_rows, report.kinds[0].entities, report.kinds[1].entities
    );
    assert_eq!(report.decision_rows as usize, rows);
    assert!(took < Duration::from_secs(30), "a cycle took {took:?}");
    let again = Instant::now();
    app.controller.run_cycle_at(NOW, false).await.unwrap();
    println!("second cycle (model reused): {:.2?}", again.elapsed());
    app.stop().await;
}
