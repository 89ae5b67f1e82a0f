//! Audit events: what is appended, and what is read back.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{AuditError, Result};

/// Largest summary, in bytes of canonical JSON (the column holds 4096 characters).
pub const MAX_SUMMARY_BYTES: usize = 4000;
/// Largest principal or subject, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Summary keys that could hold a plaintext amount, a balance or a ciphertext. Summaries
/// carry metadata only; sizes go under keys such as `ciphertext_bytes`.
const FORBIDDEN_KEYS: &[&str] = &[
    "amount",
    "amounts",
    "balance",
    "balances",
    "ciphertext",
    "plaintext",
    "moved",
    "payload",
];

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A policy decision (from the decision log).
    Decision,
    /// A job changed state (PENDING → RUNNING → COMMITTED | FAILED).
    JobTransition,
    /// A policy bundle revision became active.
    BundleActivation,
    /// A policy bundle failed to load or verify.
    BundleFailure,
    /// A signed admin command, accepted or rejected.
    AdminCommand,
    /// A tenant registered (or replaced) its keys.
    KeyRegistration,
    /// A source row the importer could not turn into an event, set aside: which row of
    /// which table, and why. The row stays in its table.
    ImportSetAside,
}

impl EventKind {
    /// Every kind, in a fixed order.
    pub const ALL: [EventKind; 7] = [
        EventKind::Decision,
        EventKind::JobTransition,
        EventKind::BundleActivation,
        EventKind::BundleFailure,
        EventKind::AdminCommand,
        EventKind::KeyRegistration,
        EventKind::ImportSetAside,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Decision => "decision",
            EventKind::JobTransition => "job_transition",
            EventKind::BundleActivation => "bundle_activation",
            EventKind::BundleFailure => "bundle_failure",
            EventKind::AdminCommand => "admin_command",
            EventKind::KeyRegistration => "key_registration",
            EventKind::ImportSetAside => "import_set_aside",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// An event to append. Its position and hashes are assigned by the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// When it happened (Unix ms).
    pub occurred_at: i64,
    /// Who acted (a token subject, an officer key id, a service).
    pub principal: String,
    /// What it concerned: `tenant/account`, `tenant`, or `bundle:<name>`.
    pub subject: String,
    /// Metadata about the event (a JSON object): ids, method, outcome, revisions, sizes.
    /// Never an amount, a balance or a ciphertext.
    pub summary: Value,
}

impl NewEvent {
    /// Creates an event.
    pub fn new(
        kind: EventKind,
        occurred_at: i64,
        principal: impl Into<String>,
        subject: impl Into<String>,
        summary: Value,
    ) -> Self {
        NewEvent {
            kind,
            occurred_at,
            principal: principal.into(),
            subject: subject.into(),
            summary,
        }
    }

    /// Checks the event and renders its summary canonically (keys sorted, no whitespace).
    pub(crate) fn canonical_summary(&self) -> Result<String> {
        if !self.summary.is_object() {
            return Err(AuditError::InvalidEvent(
                "summary must be a JSON object".into(),
            ));
        }
        for (name, value) in [("principal", &self.principal), ("subject", &self.subject)] {
            if value.chars().count() > MAX_NAME_CHARS {
                return Err(AuditError::InvalidEvent(format!("{name} is too long")));
            }
        }
        check_keys(&self.summary)?;
        let text = canonical_json(&self.summary);
        if text.len() > MAX_SUMMARY_BYTES {
            return Err(AuditError::InvalidEvent("summary is too large".into()));
        }
        Ok(text)
    }
}

/// Refuses summaries with a key that could carry an amount, balance or ciphertext.
fn check_keys(value: &Value) -> Result<()> {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if FORBIDDEN_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                    return Err(AuditError::InvalidEvent(format!(
                        "summary field '{key}' is not allowed: metadata only"
                    )));
                }
                check_keys(value)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_keys),
        _ => Ok(()),
    }
}

/// Serialises `value` with object keys sorted bytewise at every level and no whitespace,
/// whatever map type serde_json was built with.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let mut out = Map::new();
                for (key, value) in entries {
                    out.insert(key.clone(), sorted(value));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// A stored audit event, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredEvent {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Event kind name (kept as stored, so a tampered kind is still shown).
    pub kind: String,
    /// When it happened (Unix ms).
    pub occurred_at: i64,
    /// Who acted.
    pub principal: String,
    /// What it concerned.
    pub subject: String,
    /// Summary JSON text, as stored and hashed.
    pub summary: String,
    /// The previous row's hash, hex.
    pub prev_hash: String,
    /// This row's hash, hex.
    pub hash: String,
}

impl StoredEvent {
    /// The summary parsed as JSON (`null` when it is not valid JSON).
    pub fn summary_json(&self) -> Value {
        serde_json::from_str(&self.summary).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(summary: Value) -> NewEvent {
        NewEvent::new(EventKind::Decision, 1, "alice", "acme/alice", summary)
    }

    #[test]
    fn summaries_are_canonical() {
        let text = event(json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": "é"}}))
            .canonical_summary()
            .unwrap();
        assert_eq!(text, r#"{"a":{"c":"é","z":[1,{"x":3,"y":2}]},"b":1}"#);
    }

    #[test]
    fn amounts_and_ciphertexts_are_refused_at_any_depth() {
        for summary in [
            json!({"amount": 5}),
            json!({"job": {"Balance": "x"}}),
            json!({"list": [{"ciphertext": "00"}]}),
        ] {
            let err = event(summary).canonical_summary().unwrap_err();
            assert!(err.to_string().contains("not allowed"), "{err}");
        }
        assert!(event(json!({"ciphertext_bytes": 2048}))
            .canonical_summary()
            .is_ok());
    }

    #[test]
    fn oversized_and_non_object_summaries_are_refused() {
        assert!(event(json!("text")).canonical_summary().is_err());
        let big = "x".repeat(MAX_SUMMARY_BYTES);
        assert!(event(json!({ "note": big })).canonical_summary().is_err());
        let mut long = event(json!({}));
        long.principal = "p".repeat(MAX_NAME_CHARS + 1);
        assert!(long.canonical_summary().is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
