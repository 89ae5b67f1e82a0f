//! The policy shipped in `policies/`: its own Rego tests pass with enough coverage, and
//! it decides real requests through the engine, with and without the risk bundle.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use blindledger_policy::{run_tests, Bundle, Evaluator, PolicyEngine};
use common::bundle;
use serde_json::{json, Value};

fn policies() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

fn teller_transfer() -> Value {
    json!({
        "principal": "alice",
        "roles": ["teller"],
        "tenant_claims": ["acme"],
        "method": "/blindledger.ledger.v1.LedgerService/Transfer",
        "resource": {"tenant": "acme", "account": "alice", "region": "eu-west"},
        "context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z", "risk": {"score": 12}},
    })
}

fn risk_bundle() -> Bundle {
    let mut b = bundle(
        "risk",
        &[(
            "risk/data.json",
            r#"{"tiers": {"acme/alice": "medium", "acme/mallory": "blocked"},
                "limits": {"medium": {"max_amount": 100000, "window_limit": 500000, "window_seconds": 86400}}}"#,
        )],
    );
    b.insert_file(
        ".manifest",
        br#"{"revision": "risk-7", "roots": ["risk"]}"#.to_vec(),
    )
    .unwrap();
    b
}

fn shipped() -> Bundle {
    Bundle::from_dir("blindledger", &policies(), "test").unwrap()
}

#[test]
fn rego_tests_pass_with_coverage_of_at_least_90_percent() {
    let report = run_tests(&policies()).unwrap();
    let failed: Vec<_> = report.results.iter().filter(|r| !r.passed).collect();
    assert!(failed.is_empty(), "failing policy tests: {failed:#?}");
    assert!(
        report.results.len() >= 20,
        "only {} tests ran",
        report.results.len()
    );
    let not_covered: Vec<_> = report
        .coverage
        .files
        .iter()
        .map(|f| (&f.path, &f.not_covered))
        .collect();
    assert!(
        report.coverage.percent >= 90.0,
        "coverage {:.1}% < 90%; not covered: {not_covered:?}",
        report.coverage.percent
    );
}

#[test]
fn shipped_policy_decides_without_risk_data() {
    let engine = PolicyEngine::build(&[shipped()], &teller_transfer()).unwrap();
    let d = engine.decide(&teller_transfer()).unwrap();
    assert!(d.allow, "{:?}", d.reasons);
    assert!(d.obligations.max_amount.is_none());

    let mut elsewhere = teller_transfer();
    elsewhere["context"]["service_region"] = json!("us-east");
    let d = engine.decide(&elsewhere).unwrap();
    assert!(!d.allow);
    assert_eq!(
        d.reasons,
        ["data residency: tenant region eu-west, service region us-east"]
    );

    let mut auditor = teller_transfer();
    auditor["roles"] = json!(["auditor"]);
    auditor["method"] = json!("/blindledger.ledger.v1.LedgerService/GetBalance");
    assert!(!engine.decide(&auditor).unwrap().allow);
}

#[test]
fn shipped_policy_applies_the_risk_bundle() {
    let engine = PolicyEngine::build(&[shipped(), risk_bundle()], &teller_transfer()).unwrap();
    assert_eq!(engine.revisions()["risk"], "risk-7");
    let d = engine.decide(&teller_transfer()).unwrap();
    assert!(d.allow);
    assert_eq!(d.obligations.max_amount, Some(100_000));
    assert_eq!(d.obligations.window_limit, Some(500_000));
    assert_eq!(d.obligations.window_seconds, Some(86_400));

    let mut blocked = teller_transfer();
    blocked["resource"]["account"] = json!("mallory");
    let d = engine.decide(&blocked).unwrap();
    assert!(!d.allow);
    assert_eq!(d.reasons, ["account blocked by risk tier"]);
}

#[test]
fn shipped_mask_erases_the_risk_context() {
    let engine = PolicyEngine::build(&[shipped()], &teller_transfer()).unwrap();
    let decision = engine.decide(&teller_transfer()).unwrap();
    let mut event = engine.decision_event(&teller_transfer(), Some(&decision));
    engine.mask(&mut event).unwrap();
    assert_eq!(event.erased, ["/input/context/risk"]);
    assert!(event.input["context"].get("risk").is_none());
    assert_eq!(event.input["context"]["service_region"], "eu-west");
}

/// The engine decides on the RVM; the interpreter is the reference. Every combination of
/// role, method and resource below (tiers, freezes, revoked keys, residency, tenants) must
/// get the same decision from both, and the combinations must reach every kind of outcome.
#[test]
fn compiled_decisions_equal_the_interpreters_on_every_combination() {
    let mut risk = bundle(
        "risk",
        &[(
            "risk/data.json",
            r#"{"tiers": {"acme/alice": "medium", "acme/bob": "high", "acme/mallory": "blocked",
                          "acme/eve": "critical"},
                "limits": {"medium": {"max_amount": 100, "window_limit": 500, "window_seconds": 60}},
                "frozen": {"acme/carol": {"since": 1}},
                "revoked_keys": {"acme/old-key": {"since": 2}}}"#,
        )],
    );
    risk.insert_file(
        ".manifest",
        br#"{"revision": "r", "roots": ["risk"]}"#.to_vec(),
    )
    .unwrap();
    let engine = PolicyEngine::build(&[shipped(), risk], &teller_transfer()).unwrap();
    assert_eq!(engine.evaluator(), &Evaluator::Vm);

    let roles = [
        json!([]),
        json!(["teller"]),
        json!(["treasury"]),
        json!(["auditor"]),
        json!(["admin"]),
        json!(["intern"]),
        json!(["auditor", "teller"]),
    ];
    let rpcs = [
        "RegisterTenantKeys",
        "GetTenant",
        "OpenAccount",
        "Deposit",
        "Withdraw",
        "Transfer",
        "GetBalance",
        "Aggregate",
        "GetJob",
        "WatchJob",
        "ListTransfers",
        "GetPolicyStatus",
    ];
    let methods = rpcs
        .iter()
        .map(|rpc| format!("/blindledger.ledger.v1.LedgerService/{rpc}"))
        .chain(
            ["Decisions", "Export", "AdminCommand"]
                .iter()
                .map(|name| format!("/blindledger.audit.v1.Dashboard/{name}")),
        )
        .chain(["/grpc.health.v1.Health/Check".to_string()]);
    let resources = [
        json!({"tenant": "acme", "account": "dave", "region": "eu-west", "key_id": "new-key"}),
        json!({"tenant": "acme", "account": "alice", "region": "eu-west", "counterparty": "dave"}),
        json!({"tenant": "acme", "account": "bob", "region": "eu-west"}),
        json!({"tenant": "acme", "account": "mallory"}),
        json!({"tenant": "acme", "account": "eve", "region": "eu-west"}),
        json!({"tenant": "acme", "account": "carol", "region": "eu-west"}),
        json!({"tenant": "acme", "account": "dave", "counterparty": "carol"}),
        json!({"tenant": "acme", "account": "dave", "key_id": "old-key"}),
        json!({"tenant": "acme", "account": "dave", "region": "us-east"}),
        json!({"tenant": "globex", "account": "dave"}),
        json!({}),
    ];
    let mut outcomes = std::collections::BTreeSet::new();
    let mut compared = 0;
    for method in methods {
        for role in &roles {
            for resource in &resources {
                let input = json!({
                    "principal": "p",
                    "roles": role,
                    "tenant_claims": ["acme"],
                    "method": method,
                    "resource": resource,
                    "context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z"},
                });
                let compiled = engine.decide(&input).unwrap();
                let interpreted = engine.decide_interpreted(&input).unwrap();
                assert_eq!(compiled.result, interpreted.result, "input {input}");
                outcomes.insert(match compiled.allow {
                    true => format!("allow {}", !compiled.reasons.is_empty()),
                    false => compiled.reasons[0]
                        .split(' ')
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" "),
                });
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 16 * 7 * 11);
    let expected = [
        "account blocked",
        "account frozen",
        "allow false",
        "allow true",
        "data residency:",
        "receiving account",
        "risk tier",
        "roles [\"intern\"]",
        "tenant globex",
        "tenant key",
        "unknown risk",
    ];
    for outcome in expected {
        assert!(
            outcomes.contains(outcome),
            "{outcome} never decided: {outcomes:?}"
        );
    }
}
