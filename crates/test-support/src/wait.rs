//! Waiting for something to happen, with a deadline: the one polling loop of the tests.
//!
//! Tests wait on the event itself (a channel, a notification) where the code under test
//! offers one; where it only reports a state (a status RPC, a row, a counter), they poll
//! it with [`eventually`] instead of sleeping for a guessed time.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// First pause between two probes; doubled after each miss up to [`MAX_INTERVAL`].
const FIRST_INTERVAL: Duration = Duration::from_millis(5);
/// Longest pause between two probes.
const MAX_INTERVAL: Duration = Duration::from_millis(200);

/// Probes until `probe` returns `Some`, and returns its value; panics with `what` (what the
/// test was waiting for) and the time waited when nothing came within `timeout`.
///
/// The probe runs at once, then after pauses growing from 5 ms to 200 ms, so a state that
/// is reached quickly is seen quickly and a slow one costs few probes. A probe that is
/// itself slow counts against the deadline.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let deadline = started + timeout;
    let mut interval = FIRST_INTERVAL;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        let now = Instant::now();
        assert!(
            now < deadline,
            "timed out after {:?} waiting until {what}",
            now - started
        );
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

/// [`eventually`] for a condition without a value.
pub async fn until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, timeout, || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
    .await
}

/// [`until`] for tests without an async runtime (a test driving other processes): the
/// same probes and pauses, on the calling thread.
pub fn until_blocking(what: &str, timeout: Duration, condition: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    assert!(
        holds_within(timeout, condition),
        "timed out after {:?} waiting until {what}",
        started.elapsed()
    );
}

/// Probes `condition` on the calling thread until it holds or `timeout` passes; says which.
/// For clean-ups, which must not panic.
#[allow(clippy::disallowed_methods)] // No runtime to block: sleeping the thread is right.
pub fn holds_within(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let mut interval = FIRST_INTERVAL;
    loop {
        if condition() {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_value() {
        let mut probes = 0;
        let value = eventually("the third probe", Duration::from_secs(5), || {
            probes += 1;
            let n = probes;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(value, 3);
    }

    #[test]
    fn blocking_waits_for_the_condition() {
        let mut probes = 0;
        until_blocking("the second probe", Duration::from_secs(5), || {
            probes += 1;
            probes == 2
        });
        assert_eq!(probes, 2);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after")]
    async fn panics_at_the_deadline() {
        until("never", Duration::from_millis(50), || async { false }).await;
    }
}
