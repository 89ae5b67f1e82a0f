//! Impact analysis of a candidate policy: the last logged decision inputs replayed against
//! the active bundles and against the candidate, and the differences counted. Each replayed
//! input is also decided by the candidate's interpreter, so a policy that regorus's compiled
//! form (which services decide with) gets wrong is caught before it is activated.

use std::collections::BTreeMap;

use blindledger_policy::{Decision, Evaluator, Obligations, PolicyEngine, PolicyError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Changed decisions listed in a report as examples.
const EXAMPLES: usize = 20;

/// How a candidate would have decided the recent past differently.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImpactReport {
    /// Revision of the active policy compared against (`None`: no policy was active, which
    /// services treat as "deny everything").
    pub baseline_revision: Option<String>,
    /// Decisions replayed.
    pub replayed: u64,
    /// Decisions whose outcome changes: `allow` flips, or the obligations of an allowed
    /// request differ.
    pub changed: u64,
    /// Allowed before, denied by the candidate.
    pub allow_to_deny: u64,
    /// Denied before, allowed by the candidate.
    pub deny_to_allow: u64,
    /// Allowed by both, with different obligations.
    pub obligations_changed: u64,
    /// Evaluation errors of the active policy (each a denial).
    pub errors_before: u64,
    /// Evaluation errors of the candidate (each a denial).
    pub errors_after: u64,
    /// Replayed inputs the candidate's compiled decision and its interpreter's disagree on.
    #[serde(default)]
    pub evaluator_mismatches: u64,
    /// Changed decisions per gRPC method.
    pub by_method: BTreeMap<String, u64>,
    /// Changed decisions per principal.
    pub by_principal: BTreeMap<String, u64>,
    /// Some of the changed decisions.
    pub examples: Vec<ChangedDecision>,
}

/// One decision the candidate changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedDecision {
    /// The logged decision's id.
    pub decision_id: String,
    /// Its method.
    pub method: String,
    /// Its principal.
    pub principal: String,
    /// The active policy's outcome.
    pub before: Outcome,
    /// The candidate's outcome.
    pub after: Outcome,
}

/// A decision reduced to what is compared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether the request is allowed (an evaluation error is a denial).
    pub allow: bool,
    /// The obligations of an allowed request.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub obligations: Obligations,
    /// Whether evaluation failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

fn is_empty(obligations: &Obligations) -> bool {
    obligations == &Obligations::default()
}

impl Outcome {
    fn of(result: Result<Decision, PolicyError>) -> Self {
        match result {
            Ok(decision) if decision.allow => Outcome {
                allow: true,
                obligations: decision.obligations,
                error: false,
            },
            Ok(_) => Outcome::default(),
            Err(_) => Outcome {
                error: true,
                ..Outcome::default()
            },
        }
    }
}

/// Replays `inputs` (decision id, logged input) against `active` (none: deny all) and
/// `candidate`. Blocking: run it on a blocking thread.
pub fn replay(
    active: Option<&PolicyEngine>,
    candidate: &PolicyEngine,
    inputs: &[(String, Value)],
) -> ImpactReport {
    let mut report = ImpactReport {
        baseline_revision: active.and_then(|e| e.revisions().get("blindledger").cloned()),
        ..ImpactReport::default()
    };
    for (decision_id, input) in inputs {
        let before = match active {
            Some(engine) => Outcome::of(engine.decide(input)),
            None => Outcome::default(),
        };
        let compiled = candidate.decide(input);
        if candidate.evaluator() == &Evaluator::Vm
            && !same_decision(&compiled, &candidate.decide_interpreted(input))
        {
            report.evaluator_mismatches += 1;
        }
        let after = Outcome::of(compiled);
        report.replayed += 1;
        report.errors_before += u64::from(before.error);
        report.errors_after += u64::from(after.error);
        if !count_change(&mut report, &before, &after) {
            continue;
        }
        let text = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (method, principal) = (text("method"), text("principal"));
        *report.by_method.entry(method.clone()).or_default() += 1;
        *report.by_principal.entry(principal.clone()).or_default() += 1;
        if report.examples.len() < EXAMPLES {
            report.examples.push(ChangedDecision {
                decision_id: decision_id.clone(),
                method,
                principal,
                before,
                after,
            });
        }
    }
    report
}

/// Whether two evaluations gave the same decision, or both failed.
fn same_decision(a: &Result<Decision, PolicyError>, b: &Result<Decision, PolicyError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.result == b.result,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// Counts the change from `before` to `after`, if any; says whether there was one.
fn count_change(report: &mut ImpactReport, before: &Outcome, after: &Outcome) -> bool {
    match (before.allow, after.allow) {
        (true, false) => report.allow_to_deny += 1,
        (false, true) => report.deny_to_allow += 1,
        (true, true) if before.obligations != after.obligations => report.obligations_changed += 1,
        _ => return false,
    }
    report.changed += 1;
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use blindledger_policy::Bundle;
    use serde_json::json;

    use super::*;

    fn engine(policy: &str) -> PolicyEngine {
        let mut bundle = Bundle::new("blindledger");
        let manifest = br#"{"revision": "r", "roots": ["blindledger"]}"#;
        bundle.insert_file(".manifest", manifest.to_vec()).unwrap();
        let rego = format!("package blindledger.authz\n\n{policy}");
        bundle
            .insert_file("authz/policy.rego", rego.into_bytes())
            .unwrap();
        PolicyEngine::build(&[bundle], &json!({"principal": "warm"})).unwrap()
    }

    #[test]
    fn replay_counts_changes_and_evaluator_mismatches() {
        let active = engine(r#"decision := {"allow": input.principal != "carol"}"#);
        // regorus 0.14.1's compiled form turns `limits` into a bare number; only bob's
        // decisions read it, so the warm-up input does not show it.
        let candidate = engine(
            r#"limits.max_amount := 10

decision := {"allow": true, "obligations": limits} if input.principal == "bob"

decision := {"allow": input.principal != "alice"} if input.principal != "bob"
"#,
        );
        assert_eq!(candidate.evaluator(), &Evaluator::Vm);
        let inputs: Vec<(String, Value)> = ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|p| (format!("d-{p}"), json!({"principal": p, "method": "/m"})))
            .collect();
        let report = replay(Some(&active), &candidate, &inputs);
        assert_eq!(report.replayed, 4);
        assert_eq!(report.evaluator_mismatches, 1);
        // alice allowed → denied; bob allowed → compiled error (denied); carol denied → allowed.
        assert_eq!(report.allow_to_deny, 2);
        assert_eq!(report.deny_to_allow, 1);
        assert_eq!(report.errors_after, 1);
        assert_eq!(report.by_principal.get("dave"), None);
    }
}
