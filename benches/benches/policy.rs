//! Criterion benches of the policy gate: one decision of the shipped policy on a realistic
//! input (with a risk bundle that puts obligations on the account), on regorus's compiled
//! form (what services use) and on its interpreter, and the whole gate call (input,
//! decision, masking, decision-log event) with an in-memory sink.

use std::path::Path;
use std::sync::Arc;

use blindledger_gate::{MemorySink, PolicyGate, Principal, Resource};
use blindledger_policy::{Bundle, Evaluator, PolicyEngine};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const TRANSFER: &str = "/blindledger.ledger.v1.LedgerService/Transfer";

fn engine() -> PolicyEngine {
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let policy = Bundle::from_dir("blindledger", &policies, "bench").expect("policy bundle");
    let mut risk = Bundle::new("risk");
    risk.insert_file(
        ".manifest",
        br#"{"revision": "r1", "roots": ["risk"]}"#.to_vec(),
    )
    .expect("manifest");
    let data = json!({
        "tiers": {"acme/alice": "high", "acme/bob": "low"},
        "limits": {"high": {"max_amount": 10000, "window_limit": 50000, "window_seconds": 86400}}
    });
    risk.insert_file("risk/data.json", data.to_string().into_bytes())
        .expect("data");
    PolicyEngine::build(&[policy, risk], &input()).expect("engine")
}

fn input() -> serde_json::Value {
    json!({
        "principal": "tom",
        "roles": ["teller"],
        "tenant_claims": ["acme"],
        "method": TRANSFER,
        "resource": {"tenant": "acme", "account": "alice", "region": "eu-west"},
        "context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z"}
    })
}

fn decisions(c: &mut Criterion) {
    let engine = engine();
    let input = input();
    let decision = engine.decide(&input).expect("decides");
    assert!(decision.allow && decision.obligations.max_amount == Some(10000));
    assert_eq!(engine.evaluator(), &Evaluator::Vm);
    c.bench_function("policy/decide_transfer_with_obligations", |b| {
        b.iter(|| engine.decide(&input))
    });
    c.bench_function("policy/decide_transfer_with_obligations_interpreted", |b| {
        b.iter(|| engine.decide_interpreted(&input))
    });

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let gate = PolicyGate::new("eu-west", Arc::new(MemorySink::new()));
    gate.install(engine);
    let principal = Principal {
        subject: "tom".into(),
        roles: vec!["teller".into()],
        tenants: vec!["acme".into()],
        ..Principal::default()
    };
    let resource = Resource {
        tenant: Some("acme".into()),
        account: Some("alice".into()),
        region: Some("eu-west".into()),
        ..Resource::default()
    };
    c.bench_function("policy/gate_authorize_memory_sink", |b| {
        b.iter(|| {
            runtime
                .block_on(gate.authorize(&principal, TRANSFER, resource.clone()))
                .expect("allowed")
        })
    });
}

criterion_group!(benches, decisions);
criterion_main!(benches);
