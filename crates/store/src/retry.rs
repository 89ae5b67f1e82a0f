//! Whole-transaction retries after a lost race.
//!
//! Galera certifies a transaction only at COMMIT: a concurrent write elsewhere in the
//! cluster makes it fail with 1213 (or 1020, 1205), and the only correct response is to run
//! the whole transaction again from its first statement. SQLite's busy errors are handled
//! the same way.

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

/// Attempts per transaction, the first included.
const ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled each time, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// Runs `transaction` until it succeeds, fails with an error that is not a conflict, or has
/// conflicted [`ATTEMPTS`] times (that last conflict is returned).
pub(crate) async fn retry_conflicts<T, F, Fut>(
    name: &'static str,
    mut transaction: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
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
                let jitter = rand::random_range(0..=backoff.as_millis() as u64 / 2);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}
