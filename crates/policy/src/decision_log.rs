//! Decision-log events in OPA's format, so OPA's tooling and log pipelines can read them.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A bundle's revision as recorded in an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRevision {
    /// The manifest revision active when the decision was made.
    pub revision: String,
}

/// One decision, as OPA logs it. Empty and absent fields are left out of the JSON, as OPA
/// leaves them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// Unique id of the decision.
    pub decision_id: String,
    /// The rule decided, slash-separated without `data` (e.g. `blindledger/authz/decision`).
    pub path: String,
    /// The input (`null` once erased whole by a mask).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
    /// The decision, absent when evaluation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Active bundles and their revisions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bundles: BTreeMap<String, BundleRevision>,
    /// When the decision was made, RFC 3339 in UTC.
    pub timestamp: String,
    /// Timings such as `timer_rego_query_eval_ns`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, u64>,
    /// Paths removed by the mask rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<String>,
    /// Paths replaced by the mask rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// Labels of the deciding service (id, version, region).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Why no decision could be made, as OPA writes it: `{"code", "message"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Trace id of the request, linking the event to its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Span id of the decision within that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// Who asked (the caller's principal or address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

impl DecisionEvent {
    /// Creates an event with a new random id and the current time; other fields empty.
    pub fn new(path: &str, input: Value, result: Option<Value>) -> DecisionEvent {
        DecisionEvent {
            decision_id: uuid::Uuid::new_v4().to_string(),
            path: path.to_string(),
            input,
            result,
            bundles: BTreeMap::new(),
            timestamp: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            metrics: BTreeMap::new(),
            erased: Vec::new(),
            masked: Vec::new(),
            labels: BTreeMap::new(),
            error: None,
            trace_id: None,
            span_id: None,
            requested_by: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DecisionEvent;

    #[test]
    fn empty_fields_are_left_out() {
        let event = DecisionEvent::new("a/b", serde_json::json!({"x": 1}), None);
        let json = serde_json::to_value(&event).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["decision_id", "input", "path", "timestamp"]);
        assert!(event.timestamp.ends_with('Z'));
    }
}
