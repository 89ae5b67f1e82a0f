//! Decision-log latency with a million audit rows (ignored by default; run with
//! `--ignored --nocapture`). Fills a fresh SQLite database, or uses the database of
//! `BLINDLEDGER_AUDIT_BENCH_URL` as it is (e.g. one kept by the audit crate's perf test),
//! then times every filter of the page over real HTTP.

use std::time::{Duration, Instant};

use blindledger_audit::{AuditLog, EventKind, NewEvent};
use blindledger_test_support::TestDatabase;
use serde_json::json;

use crate::helpers::spawn_app;

const ROWS: i64 = 1_000_000;
const ROUNDS: usize = 20;
const METHODS: [&str; 4] = ["Transfer", "Deposit", "Withdraw", "Aggregate"];

/// The audit crate's perf events: 1,000 principals, 4 methods, 10 % denials, 5 revisions,
/// one every 600 ms from 2023-11-14.
fn decision(i: i64) -> NewEvent {
    let revision = format!("rev-{}", i / 200_000);
    NewEvent::new(
        EventKind::Decision,
        1_700_000_000_000 + i * 600,
        format!("user-{}", i % 1000),
        format!("tenant-{}/acct-{}", i % 10, i % 10_000),
        json!({
            "decision_id": format!("0190c6c2-{i:012}"), "log_seq": i,
            "method": format!("/blindledger.ledger.v1.LedgerService/{}", METHODS[(i % 4) as usize]),
            "outcome": if i % 10 == 0 { "deny" } else { "allow" },
            "revision": revision.clone(), "revisions": {"blindledger": revision, "risk": "r-12"},
            "reasons": if i % 10 == 0 { json!(["velocity above tier limit"]) } else { json!([]) },
        }),
    )
}

async fn fill(url: &str) {
    let log = AuditLog::connect(url, 2, true).await.unwrap();
    let started = Instant::now();
    for start in (0..ROWS).step_by(5000) {
        let batch: Vec<_> = (start..start + 5000).map(decision).collect();
        log.append_batch(&batch).await.unwrap();
    }
    println!(
        "filled {ROWS} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    log.close().await;
}

/// The filters timed: each alone, combined, a time window, a deep page, and
/// combinations that match nothing (the whole index range is read).
fn cases() -> Vec<(&'static str, String)> {
    let mid = 1_700_000_000_000 + ROWS / 2 * 600;
    vec![
        ("none", String::new()),
        ("result", "result=deny".into()),
        ("principal", "principal=user-42".into()),
        ("method", "method=Deposit".into()),
        ("revision", "revision=rev-3".into()),
        (
            "time window (1 h)",
            format!("from={mid}&to={}", mid + 3_600_000),
        ),
        ("principal+result", "principal=user-40&result=deny".into()),
        (
            "method+result+revision",
            "method=Withdraw&result=deny&revision=rev-2".into(),
        ),
        (
            "principal+time",
            format!("principal=user-7&from={}&to={}", mid - 86_400_000, mid),
        ),
        ("deep page", format!("before={mid}:{}", ROWS / 2)),
        (
            "no match: principal+method",
            "principal=user-42&method=Deposit".into(),
        ),
        (
            "no match: method+result",
            "method=Deposit&result=deny".into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a million rows: run with --ignored --nocapture"]
async fn decision_log_p95_with_a_million_rows() {
    let db = TestDatabase::sqlite().unwrap();
    let url = match std::env::var("BLINDLEDGER_AUDIT_BENCH_URL") {
        Ok(url) => url,
        Err(_) => {
            fill(db.url()).await;
            db.url().to_owned()
        }
    };
    let app = spawn_app(&url).await;
    let token = app.auditor();
    let mut all = Vec::new();
    for (name, query) in cases() {
        let mut times = Vec::new();
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let response = app
                .http
                .get(app.url(&format!("/decisions?{query}")))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}");
            response.text().await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "{name:28} p50 {:>7.1} ms  p95 {:>7.1} ms",
            ms(times[ROUNDS / 2]),
            ms(times[ROUNDS * 95 / 100])
        );
        all.extend(times);
    }
    all.sort();
    let p95 = all[all.len() * 95 / 100];
    println!(
        "all filters: {} requests, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        all.len(),
        ms(all[all.len() / 2]),
        ms(p95),
        ms(all[all.len() - 1])
    );
    assert!(p95 < Duration::from_millis(200), "p95 {p95:?}");
    app.stop().await;
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
