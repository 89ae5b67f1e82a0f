//! The engine: roots, compile errors, fail-closed decisions, masking, and the test runner.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use blindledger_policy::{
    run_tests, Bundle, Decision, Evaluator, Obligations, PolicyEngine, PolicyError,
};
use common::{bundle, write_tree};
use serde_json::json;

const AUTHZ: &str = r#"package blindledger.authz

default allow := false

allow if input.principal == "alice"

decision := {"allow": allow, "reasons": ["checked"], "obligations": {"max_amount": 10}}
"#;

fn with_manifest(mut b: Bundle, roots: &[&str]) -> Bundle {
    let manifest = json!({"revision": format!("{}-r1", b.name), "roots": roots});
    b.insert_file(".manifest", manifest.to_string().into_bytes())
        .unwrap();
    b
}

fn authz_bundle(decision_policy: &str) -> Bundle {
    with_manifest(
        bundle("blindledger", &[("authz/policy.rego", decision_policy)]),
        &["blindledger", "system"],
    )
}

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn decides_from_the_decision_rule() {
    assert_send_sync_clone::<PolicyEngine>();
    let engine = PolicyEngine::build(&[authz_bundle(AUTHZ)], &json!({})).unwrap();
    let d: Decision = engine.decide(&json!({"principal": "alice"})).unwrap();
    assert!(d.allow);
    assert_eq!(d.reasons, ["checked"]);
    assert_eq!(
        d.obligations,
        Obligations {
            max_amount: Some(10),
            ..Obligations::default()
        }
    );
    assert_eq!(d.result["allow"], true);
    assert!(!engine.decide(&json!({"principal": "bob"})).unwrap().allow);
    assert_eq!(
        engine.revisions(),
        [("blindledger".to_string(), "blindledger-r1".to_string())].into()
    );
}

#[test]
fn overlapping_roots_are_rejected() {
    let risk = with_manifest(
        bundle("risk", &[("data.json", "{}")]),
        &["blindledger/authz"],
    );
    let err = PolicyEngine::build(&[authz_bundle(AUTHZ), risk], &json!({})).unwrap_err();
    assert!(matches!(err, PolicyError::OverlappingRoots { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("'blindledger' (bundle blindledger)"),
        "{err}"
    );

    // A bundle without a manifest owns everything, so it overlaps any other.
    let everything = bundle("all", &[("x.rego", "package x\n")]);
    let err = PolicyEngine::build(&[authz_bundle(AUTHZ), everything], &json!({})).unwrap_err();
    assert!(matches!(err, PolicyError::OverlappingRoots { .. }), "{err}");
}

#[test]
fn packages_and_data_outside_the_roots_are_rejected() {
    let mut outside = authz_bundle(AUTHZ);
    outside
        .insert_file("evil.rego", b"package risk\n\nx := 1\n".to_vec())
        .unwrap();
    let err = PolicyEngine::build(&[outside], &json!({})).unwrap_err();
    assert!(
        matches!(err, PolicyError::PackageOutsideRoots { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("blindledger/evil.rego"), "{err}");

    let mut data = authz_bundle(AUTHZ);
    data.insert_file("risk/data.json", br#"{"tiers": {}}"#.to_vec())
        .unwrap();
    let err = PolicyEngine::build(&[data], &json!({})).unwrap_err();
    assert!(
        matches!(err, PolicyError::DataOutsideRoots { ref path, .. } if path == "risk"),
        "{err}"
    );
}

#[test]
fn rego_syntax_errors_name_the_file() {
    let mut broken = authz_bundle(AUTHZ);
    broken
        .insert_file(
            "authz/broken.rego",
            b"package blindledger.broken\n\nallow if {\n".to_vec(),
        )
        .unwrap();
    let err = PolicyEngine::build(&[broken], &json!({})).unwrap_err();
    assert!(
        matches!(err, PolicyError::Compile { ref file, .. } if file == "blindledger/authz/broken.rego"),
        "{err}"
    );
}

#[test]
fn undefined_decisions_fail_closed() {
    let partial = "package blindledger.authz\n\ndecision := {\"allow\": true} if input.principal\n";
    let engine = PolicyEngine::build(&[authz_bundle(partial)], &json!({"principal": "x"})).unwrap();
    let err = engine.decide(&json!({})).unwrap_err();
    assert!(
        matches!(err, PolicyError::UndefinedDecision { .. }),
        "{err}"
    );
    // Building checks the warm-up decision the same way.
    let err = PolicyEngine::build(&[authz_bundle(partial)], &json!({})).unwrap_err();
    assert!(
        matches!(err, PolicyError::UndefinedDecision { .. }),
        "{err}"
    );
    // No decision rule at all is an evaluation error, not an allow.
    let none = "package blindledger.authz\n\nother := 1\n";
    assert!(PolicyEngine::build(&[authz_bundle(none)], &json!({})).is_err());
}

#[test]
fn decisions_run_compiled_and_fall_back_to_the_interpreter() {
    let engine = PolicyEngine::build(&[authz_bundle(AUTHZ)], &json!({})).unwrap();
    assert_eq!(engine.evaluator(), &Evaluator::Vm);
    assert_eq!(engine.evaluator().to_string(), "rvm");

    // regorus 0.14.1's RVM evaluates a partial object rule with a constant key
    // (`limits.max_amount := 10`) to the bare value. The warm-up check catches the
    // difference, and the policy decides on the interpreter.
    let constant_keys = r#"package blindledger.authz

limits.max_amount := 10

decision := {"allow": input.principal == "alice", "obligations": limits}
"#;
    let warm = json!({"principal": "x"});
    let engine = PolicyEngine::build(&[authz_bundle(constant_keys)], &warm).unwrap();
    let Evaluator::Interpreter { reason } = engine.evaluator() else {
        panic!("a `with` policy ran compiled");
    };
    assert!(reason.contains("warm-up input"), "{reason}");
    let d = engine.decide(&json!({"principal": "alice"})).unwrap();
    assert!(d.allow);
    assert_eq!(d.obligations.max_amount, Some(10));
    assert!(!engine.decide(&json!({"principal": "bob"})).unwrap().allow);
}

#[test]
fn runaway_decisions_fail_closed() {
    // Allowed for a small input, but a large one runs past the instruction budget.
    let policy = r#"package blindledger.authz

decision := {"allow": count(pairs) >= 0} if {
	pairs := [[a, b] | some a in input.items; some b in input.items]
}
"#;
    let engine = PolicyEngine::build(&[authz_bundle(policy)], &json!({"items": [1]})).unwrap();
    assert!(engine.decide(&json!({"items": [1, 2, 3]})).unwrap().allow);
    let items: Vec<u32> = (0..2000).collect();
    let err = engine.decide(&json!({ "items": items })).unwrap_err();
    assert!(matches!(err, PolicyError::Eval { .. }), "{err}");
}

#[test]
fn malformed_decisions_fail_closed() {
    let cases = [
        "decision := {\"allow\": \"yes\"}",
        "decision := {\"reasons\": []}",
        "decision := true",
        "decision := {\"allow\": true, \"reasons\": [1]}",
        "decision := {\"allow\": true, \"obligations\": {\"max_amount\": -1}}",
        "decision := {\"allow\": true, \"obligations\": {\"daily_cap\": 5}}",
    ];
    for case in cases {
        let policy = format!("package blindledger.authz\n\n{case}\n");
        let err = PolicyEngine::build(&[authz_bundle(&policy)], &json!({})).unwrap_err();
        assert!(
            matches!(err, PolicyError::MalformedDecision(_)),
            "{case}: {err}"
        );
    }
}

#[test]
fn mask_erases_and_upserts_pointers() {
    let mask = r#"package system.log

mask contains "/input/resource/account"
mask contains "/input/absent/path"
mask contains {"op": "upsert", "path": "/input/principal", "value": "redacted"}
mask contains "/result/reasons" if input.input.resource.tenant == "acme"
"#;
    let mut b = authz_bundle(AUTHZ);
    b.insert_file("system/log/mask.rego", mask.as_bytes().to_vec())
        .unwrap();
    let engine = PolicyEngine::build(&[b], &json!({})).unwrap();
    let input = json!({"principal": "alice", "resource": {"tenant": "acme", "account": "alice"}});
    let decision = engine.decide(&input).unwrap();
    let mut event = engine.decision_event(&input, Some(&decision));
    assert_eq!(event.path, "blindledger/authz/decision");
    assert_eq!(event.bundles["blindledger"].revision, "blindledger-r1");
    engine.mask(&mut event).unwrap();
    assert_eq!(event.erased, ["/input/resource/account", "/result/reasons"]);
    assert_eq!(event.masked, ["/input/principal"]);
    assert_eq!(
        event.input,
        json!({"principal": "redacted", "resource": {"tenant": "acme"}})
    );
    assert!(event.result.unwrap().get("reasons").is_none());
}

#[test]
fn without_a_mask_rule_nothing_is_masked() {
    let engine = PolicyEngine::build(&[authz_bundle(AUTHZ)], &json!({})).unwrap();
    let input = json!({"principal": "alice", "context": {"risk": {"score": 3}}});
    let mut event = engine.decision_event(&input, None);
    engine.mask(&mut event).unwrap();
    assert_eq!(event.input, input);
    assert!(event.erased.is_empty() && event.masked.is_empty());
}

#[test]
fn malformed_masks_are_errors() {
    let mut b = authz_bundle(AUTHZ);
    b.insert_file(
        "system/log/mask.rego",
        b"package system.log\n\nmask contains \"/data/secret\"\n".to_vec(),
    )
    .unwrap();
    let engine = PolicyEngine::build(&[b], &json!({})).unwrap();
    let mut event = engine.decision_event(&json!({"a": 1}), None);
    assert!(matches!(engine.mask(&mut event), Err(PolicyError::Mask(_))));
    assert_eq!(event.input, json!({"a": 1}), "nothing applied");
}

#[test]
fn test_runner_reports_results_and_coverage() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("app/policy.rego", "package app\n\nallow if input.ok\n\nlimit := data.config.limit\n"),
            ("other/unused.rego", "package other\n\nunused if {\n\tinput.never\n}\n"),
            ("config/data.json", r#"{"limit": 3}"#),
            (
                "app/policy_test.rego",
                "package app_test\n\nimport data.app\n\ntest_allow if app.allow with input as {\"ok\": true}\n\ntest_limit if app.limit == 3\n\ntest_fails if app.allow with input as {}\n\ntest_errors if 1 / 0 == 1\n\ntodo_later if false\n",
            ),
        ],
    );
    let report = run_tests(dir.path()).unwrap();
    let outcome: Vec<(&str, bool)> = report
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.passed))
        .collect();
    assert_eq!(
        outcome,
        [
            ("test_allow", true),
            ("test_errors", false),
            ("test_fails", false),
            ("test_limit", true)
        ]
    );
    assert!(report.results.iter().all(|r| r.package == "app_test"));
    assert!(!report.all_passed());
    let files: Vec<&str> = report
        .coverage
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(files, ["app/policy.rego", "other/unused.rego"]);
    assert!(
        report.coverage.files[0].covered.contains(&3),
        "{:?}",
        report.coverage
    );
    assert!(
        report.coverage.files[1].not_covered.contains(&4),
        "{:?}",
        report.coverage
    );
    assert!(report.coverage.percent > 0.0 && report.coverage.percent < 100.0);
}

#[test]
fn test_runner_fails_when_there_are_no_tests() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("app/policy.rego", "package app\n\nallow := true\n")],
    );
    let err = run_tests(dir.path()).unwrap_err();
    assert!(err.to_string().starts_with("no tests found"), "{err}");
}
