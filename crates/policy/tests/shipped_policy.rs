//! The policy shipped in `policies/`: its own Rego tests pass with enough coverage, and
//! it decides real requests through the engine, with and without the risk bundle.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Instant;

use blindledger_policy::{run_tests, Bundle, PolicyEngine};
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

/// Prints the cost of one decision on the shipped policy (clone of the warmed engine, input
/// conversion, evaluation, parsing):
/// `cargo test -p blindledger-policy --release --test shipped_policy -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand"]
fn measure_decision_cost() {
    let engine = PolicyEngine::build(&[shipped(), risk_bundle()], &teller_transfer()).unwrap();
    let input = teller_transfer();
    for _ in 0..200 {
        engine.decide(&input).unwrap();
    }
    let rounds = 5;
    let per_round = 2000;
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..per_round {
            assert!(engine.decide(&input).unwrap().allow);
        }
        samples.push(started.elapsed().as_secs_f64() * 1e6 / per_round as f64);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "per decision: min {:.1} µs, median {:.1} µs, max {:.1} µs",
        samples[0],
        samples[rounds / 2],
        samples[rounds - 1]
    );
}
