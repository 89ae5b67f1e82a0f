//! One source of job-change notifications per ledger instance: its own workers announce the
//! jobs they change, and a single task reads the changes other instances made from the
//! database and announces those too. `WatchJob` streams wait on these announcements instead
//! of each polling the database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use blindledger_store::now_ms;
use tokio::sync::watch;

use crate::ledger::Ledger;

/// How far back each read looks past the newest change seen: another instance's clock may
/// lag this one's, and a transaction may commit with an `updated_at` a little in the past.
const LOOKBACK_MS: i64 = 5_000;
/// Most changes read at once.
const BATCH: i64 = 5_000;

/// Reads job changes every `interval` while any watch is open, and announces each change
/// once on [`Ledger::job_events`], until `stop` turns true.
pub(crate) async fn run(ledger: Arc<Ledger>, interval: Duration, mut stop: watch::Receiver<bool>) {
    let mut newest = now_ms() - LOOKBACK_MS;
    // The changes announced within the lookback, so a change read twice is announced once.
    let mut announced: HashSet<(String, i64)> = HashSet::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if ledger.open_watches() == 0 {
            // Nothing to tell; start from now when a watch opens.
            newest = newest.max(now_ms() - LOOKBACK_MS);
            announced.clear();
            continue;
        }
        let changes = match ledger
            .db()
            .jobs_changed_after(newest - LOOKBACK_MS, BATCH)
            .await
        {
            Ok(changes) => changes,
            Err(error) => {
                // Read again next time from the same point: nothing is skipped.
                tracing::warn!(%error, "reading job changes failed");
                continue;
            }
        };
        for (id, updated_at) in changes {
            newest = newest.max(updated_at);
            if announced.insert((id.clone(), updated_at)) {
                let _ = ledger.job_events.send(id);
            }
        }
        let horizon = newest - LOOKBACK_MS;
        announced.retain(|(_, at)| *at > horizon);
        metrics::counter!("blindledger_job_feed_reads_total").increment(1);
    }
}
