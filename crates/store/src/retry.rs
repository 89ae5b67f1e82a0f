//! Whole-transaction retries after a lost race.
//!
//! Galera certifies a transaction only at COMMIT: a concurrent write elsewhere in the
//! cluster makes it fail with 1213 (or 1020, 1205), and the only correct response is to run
//! the whole transaction again from its first statement. SQLite's busy errors are handled
//! the same way. Every service's write transactions go through [`retry_transaction`], so
//! the rule lives here once.

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

/// Attempts per transaction, the first included. The audit trail's appends all lock the
/// chain's head, so a busy trail sees more lost races than the ledger's jobs do.
const ATTEMPTS: u32 = 8;
/// Wait before the first retry; doubled each time, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// An error that says whether running the whole transaction again may succeed.
pub trait Retryable {
    /// True for a lost race only ([`StoreError::Conflict`]): the transaction was rolled
    /// back and nothing of it is stored. A lost connection during COMMIT is not one: the
    /// outcome is unknown, and running it again could apply it twice.
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        StoreError::is_retryable(self)
    }
}

/// Runs `transaction` until it succeeds, fails with an error that is not a conflict, or has
/// conflicted [`ATTEMPTS`] times (that last conflict is returned). `name` labels the
/// `blindledger_db_transaction_retries_total` counter and the logs.
pub async fn retry_transaction<T, E, F, Fut>(name: &'static str, mut transaction: F) -> Result<T, E>
where
    E: Retryable,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(err) if err.is_retryable() && attempt < ATTEMPTS => {
                metrics::counter!("blindledger_db_transaction_retries_total", "transaction" => name)
                    .increment(1);
                tracing::debug!(
                    transaction = name,
                    attempt,
                    "transaction conflict, retrying"
                );
                let jitter = rand::random_range(0..=backoff.as_millis() as u64);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}
