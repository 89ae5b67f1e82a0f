//! Where decision-log events go: a durable writer supplied by the service.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use blindledger_policy::DecisionEvent;
use blindledger_store::{now_ms, Db, DecisionRecord};
use futures::future::BoxFuture;

/// A durable decision-log writer ([`DbDecisionSink`] in the services).
///
/// [`PolicyGate::authorize`](crate::PolicyGate::authorize) waits for `record` before it
/// answers, and denies the request when it fails: no decision without an audit record.
pub trait DecisionSink: Send + Sync + 'static {
    /// Stores one (already masked) event; the error text is logged, never returned to callers.
    fn record<'a>(&'a self, event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>>;
}

/// Keeps events in memory, for tests and tools; a service must use a durable sink.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<DecisionEvent>>,
}

impl MemorySink {
    /// Creates an empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns how many events were recorded.
    pub fn len(&self) -> usize {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no event was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns a copy of every event recorded so far, oldest first.
    pub fn events(&self) -> Vec<DecisionEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl DecisionSink for MemorySink {
    fn record<'a>(&'a self, event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>> {
        // A panic while holding the lock cannot leave a half-pushed Vec, so a poisoned lock
        // is still consistent.
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.clone());
        Box::pin(futures::future::ready(Ok(())))
    }
}

/// Writes decision-log events to the `decision_log` table before the decision takes effect;
/// the audit service imports them into the audit trail from there.
#[derive(Debug, Clone)]
pub struct DbDecisionSink {
    db: Db,
}

impl DbDecisionSink {
    /// A sink writing through `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl DecisionSink for DbDecisionSink {
    fn record<'a>(&'a self, event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let allowed = event
                .result
                .as_ref()
                .and_then(|r| r.get("allow"))
                .and_then(|a| a.as_bool())
                .unwrap_or(false);
            let revisions: BTreeMap<&str, &str> = event
                .bundles
                .iter()
                .map(|(name, b)| (name.as_str(), b.revision.as_str()))
                .collect();
            let method = event
                .input
                .get("method")
                .and_then(|m| m.as_str())
                .unwrap_or_default()
                .to_owned();
            let record = DecisionRecord {
                decision_id: event.decision_id.clone(),
                logged_at: now_ms(),
                principal: event.requested_by.clone().unwrap_or_default(),
                method,
                allowed,
                revisions: serde_json::to_string(&revisions).map_err(|e| e.to_string())?,
                event: serde_json::to_vec(event).map_err(|e| e.to_string())?,
            };
            self.db
                .record_decision(&record)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
