//! Alert delivery when the webhook receiver is down or slow: the controller keeps working,
//! and the alert arrives once the receiver answers.

use std::time::{Duration, Instant};

use sqlx::Row;

use crate::helpers::{config, TestApp, TestKeys};
use crate::risk_loop::{queued_alerts, seed};
use blindledger_test_support::metadata::NOW;
use blindledger_test_support::webhook::{closed_port, hook_url, Receiver};
use blindledger_test_support::{until, TestDatabase};

/// The longest wait for a delivery attempt to be recorded.
const WAIT: Duration = Duration::from_secs(10);

/// Failed delivery attempts of the queued alerts.
async fn failed_attempts(app: &TestApp) -> i64 {
    let row = sqlx::query("SELECT COALESCE(SUM(attempts), 0) FROM controller_alerts")
        .fetch_one(app.controller.repo().pool())
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn alerts_are_delivered_when_the_receiver_comes_back() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let addr = closed_port();
    let app = TestApp::spawn(config(&db, &keys, Some(hook_url(addr)))).await;
    seed(&app).await;
    let report = app.controller.run_cycle_at(NOW, false).await.unwrap();
    assert_eq!(report.alerts_queued, 1, "{report:?}");
    until("two deliveries failed", WAIT, || async {
        failed_attempts(&app).await >= 2
    })
    .await;

    // Cycles go on while the receiver is away.
    for _ in 0..2 {
        let report = app.controller.run_cycle_at(NOW, true).await.unwrap();
        assert!(report.kinds[0].trained);
        assert_eq!(report.alerts_queued, 0);
    }

    let receiver = Receiver::start_on(addr).await;
    let alerts = receiver.wait_for(1).await;
    assert!(alerts[0]["text"].as_str().unwrap().contains("acme/mule"));
    assert_eq!(queued_alerts(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_cycles() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_secs(5));
    let app = TestApp::spawn(config(&db, &keys, Some(receiver.url()))).await;
    seed(&app).await;
    let report = app.controller.run_cycle_at(NOW, false).await.unwrap();
    assert_eq!(report.alerts_queued, 1);
    until("a delivery timed out", WAIT, || async {
        failed_attempts(&app).await >= 1
    })
    .await;

    let started = Instant::now();
    app.controller.run_cycle_at(NOW, true).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    receiver.set_delay(Duration::ZERO);
    let alerts = receiver.wait_for(1).await;
    // Webhooks are delivered at least once: a request the receiver finished after the
    // controller gave up on it may arrive twice, but it is always the same alert.
    assert!(alerts.iter().all(|a| a["text"] == alerts[0]["text"]));
    assert!(alerts[0]["text"].as_str().unwrap().contains("acme/mule"));
    app.stop().await;
}
