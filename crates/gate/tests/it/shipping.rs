//! Decision logs shipped as OPA ships them: gzip JSON arrays POSTed to a decision-log
//! service (here one written from OPA's API description, in test-support), or JSON lines
//! to a file. Every recorded event arrives once, a service that is down is retried without
//! slowing a decision, and a full queue drops the oldest events.

use std::sync::Arc;
use std::time::Duration;

use blindledger_gate::{
    MemorySink, PolicyGate, Principal, Resource, ShipLimits, ShipTarget, ShippingSink,
};
use blindledger_policy::PolicyEngine;
use blindledger_test_support::LogCollector;
use serde_json::json;

use crate::support::policy_bundle;

const METHOD: &str = "/blindledger.ledger.v1.LedgerService/Transfer";

fn limits() -> ShipLimits {
    ShipLimits {
        max_queued: 1_000,
        max_batch: 4,
        max_delay: Duration::from_millis(50),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
    }
}

fn gate(target: ShipTarget, limits: ShipLimits) -> (PolicyGate, Arc<MemorySink>) {
    let memory = Arc::new(MemorySink::new());
    let sink = ShippingSink::new(memory.clone(), target, limits).unwrap();
    let gate = PolicyGate::with_instance_id("eu", Arc::new(sink), "ledger-eu-1");
    let warm = json!({"principal": "warm", "roles": [], "context": {"service_region": "eu"}});
    gate.install(PolicyEngine::build(&[policy_bundle("r1")], &warm).unwrap());
    (gate, memory)
}

async fn decide(gate: &PolicyGate, n: usize) {
    let principal = Principal {
        subject: "alice".to_string(),
        roles: vec!["teller".to_string()],
        tenants: vec!["acme".to_string()],
        ..Principal::default()
    };
    for _ in 0..n {
        let resource = Resource {
            tenant: Some("acme".into()),
            account: Some("alice".into()),
            ..Resource::default()
        };
        // Allowed or denied, every decision is logged.
        let _ = gate.authorize(&principal, METHOD, resource).await;
    }
}

fn ids(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["decision_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn events_reach_a_decision_log_service_once_even_when_it_was_down() {
    let collector = LogCollector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("logs.token");
    std::fs::write(&token, "log-writer-token\n").unwrap();
    // Down for its first three requests: the batches are retried.
    collector.refuse_next(3);
    let target = ShipTarget::Http {
        url: collector.url(),
        token_file: Some(token),
    };
    let (gate, memory) = gate(target, limits());
    decide(&gate, 10).await;
    let shipped = collector.wait_for(10).await;
    assert_eq!(shipped.len(), 10, "each event once");
    let recorded: Vec<String> = memory
        .events()
        .iter()
        .map(|e| e.decision_id.clone())
        .collect();
    assert_eq!(ids(&shipped), recorded, "in the order they were decided");
    assert!(collector.requests() >= 3 + 3, "retried after refusals");
    assert_eq!(
        collector.authorization().as_deref(),
        Some("Bearer log-writer-token")
    );
    let event = &shipped[0];
    assert_eq!(event["path"], "blindledger/authz/decision");
    assert_eq!(event["labels"]["id"], "ledger-eu-1");
    assert_eq!(event["labels"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(event["bundles"]["blindledger"]["revision"].is_string());
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_events_not_decisions() {
    let collector = LogCollector::start().await;
    collector.refuse_next(u64::MAX);
    let target = ShipTarget::Http {
        url: collector.url(),
        token_file: None,
    };
    let (gate, memory) = gate(
        target,
        ShipLimits {
            max_queued: 5,
            ..limits()
        },
    );
    // Decisions are answered at once while the service refuses everything.
    tokio::time::timeout(Duration::from_secs(5), decide(&gate, 12))
        .await
        .expect("decisions do not wait for shipping");
    assert_eq!(memory.len(), 12, "the durable log has every event");
    collector.refuse_next(0);
    let recorded: Vec<String> = memory
        .events()
        .iter()
        .map(|e| e.decision_id.clone())
        .collect();
    let newest = recorded.last().unwrap().clone();
    let shipped = blindledger_test_support::eventually(
        "the newest event is shipped",
        Duration::from_secs(10),
        || {
            let shipped = ids(&collector.events());
            let newest = newest.clone();
            async move { shipped.contains(&newest).then_some(shipped) }
        },
    )
    .await;
    // The queue held 5; one batch (4) may have been in flight when older events were
    // dropped from it: never more, never twice, the newest always.
    assert!(shipped.len() <= 5 + 4, "{} shipped", shipped.len());
    let mut unique = shipped.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), shipped.len(), "no event twice");
    assert!(recorded[recorded.len() - 5..]
        .iter()
        .all(|id| shipped.contains(id)));
}

#[tokio::test]
async fn json_lines_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.jsonl");
    let (gate, memory) = gate(ShipTarget::File(path.clone()), limits());
    decide(&gate, 6).await;
    let recorded: Vec<String> = memory
        .events()
        .iter()
        .map(|e| e.decision_id.clone())
        .collect();
    blindledger_test_support::eventually("six lines in the file", Duration::from_secs(10), || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (text.lines().count() == 6).then_some(())
        }
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(ids(&lines), recorded);
}
