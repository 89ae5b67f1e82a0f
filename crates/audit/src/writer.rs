//! Group commit: many concurrent single appends, few transactions.
//!
//! Each append through [`AuditWriter`] waits for its own commit, but the events of callers
//! arriving while a transaction is in flight are gathered and written together in the next
//! one. A caller gets the same guarantee as [`AuditLog::append`] (its event is durable when
//! the call returns) at a fraction of the transactions. A failed batch fails every caller in
//! it; none of its events was appended.

use tokio::sync::{mpsc, oneshot};

use crate::append::Appended;
use crate::db::AuditLog;
use crate::error::{AuditError, Result};
use crate::event::NewEvent;

/// Events pending before callers wait for room.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Appended, String>>;

/// A handle appending through a background group-committing task. Cheap to clone; the task
/// stops once every handle is dropped.
#[derive(Debug, Clone)]
pub struct AuditWriter {
    sender: mpsc::Sender<(NewEvent, Reply)>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime; one transaction holds at most
    /// `max_batch` events.
    pub fn spawn(log: AuditLog, max_batch: usize) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(log, receiver, max_batch.max(1)));
        AuditWriter { sender }
    }

    /// Appends `event`, returning once it is committed.
    pub async fn append(&self, event: NewEvent) -> Result<Appended> {
        // Checked here so one bad event cannot fail the batch it would have joined.
        event.canonical_summary()?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((event, reply))
            .await
            .map_err(|_| AuditError::AppendFailed("audit writer stopped".into()))?;
        answer
            .await
            .map_err(|_| AuditError::AppendFailed("audit writer stopped".into()))?
            .map_err(AuditError::AppendFailed)
    }
}

async fn run(log: AuditLog, mut receiver: mpsc::Receiver<(NewEvent, Reply)>, max_batch: usize) {
    let mut events = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    while let Some((event, reply)) = receiver.recv().await {
        events.push(event);
        replies.push(reply);
        while events.len() < max_batch {
            match receiver.try_recv() {
                Ok((event, reply)) => {
                    events.push(event);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        match log.append_batch(&events).await {
            Ok(appended) => {
                for (reply, row) in replies.drain(..).zip(appended) {
                    let _ = reply.send(Ok(row));
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, events = events.len(), "audit batch append failed");
                let message = err.to_string();
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
        events.clear();
    }
}
