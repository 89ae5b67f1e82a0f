//! Where decision-log events go: a durable writer supplied by the service.

use std::sync::{Mutex, PoisonError};

use blindledger_policy::DecisionEvent;
use futures::future::BoxFuture;

/// A durable decision-log writer (the ledger implements it over its database).
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
