//! Running totals: written once per boundary, read at or before a time, and the accounts
//! whose transfers no total covers yet.

use blindledger_store::{Db, TotalRow};

use crate::fixtures::{blob, open_accounts, run_transfer, transfer};

const DAY_MS: i64 = 86_400_000;
/// A UTC midnight.
const MIDNIGHT: i64 = 19_700 * DAY_MS;

fn total(days: i64, seed: u8) -> TotalRow {
    TotalRow {
        through_ms: MIDNIGHT + days * DAY_MS,
        total: blob(seed, 4_000),
        transfers: days * 10,
    }
}

async fn the_latest_total_at_or_before_a_time_is_read(db: Db) {
    for (days, seed) in [(0, 1), (1, 2), (2, 3)] {
        db.insert_total("acme", "alice", "out", &total(days, seed))
            .await
            .unwrap();
    }
    db.insert_total("acme", "alice", "in", &total(5, 9))
        .await
        .unwrap();
    db.insert_total("acme", "alice", "above:100", &total(5, 9))
        .await
        .unwrap();
    db.insert_total("globex", "alice", "out", &total(5, 9))
        .await
        .unwrap();

    let at = |at_ms| db.total_at_or_before("acme", "alice", "out", at_ms);
    assert_eq!(at(MIDNIGHT + DAY_MS).await.unwrap(), Some(total(1, 2)));
    assert_eq!(
        at(MIDNIGHT + 2 * DAY_MS - 1).await.unwrap(),
        Some(total(1, 2))
    );
    assert_eq!(at(i64::MAX).await.unwrap(), Some(total(2, 3)));
    assert_eq!(at(MIDNIGHT - 1).await.unwrap(), None);
    let bob = db.total_at_or_before("acme", "bob", "out", i64::MAX).await;
    assert_eq!(bob.unwrap(), None);

    assert_eq!(
        db.total_series("acme", "alice").await.unwrap(),
        ["above:100", "in", "out"]
    );
    assert_eq!(db.total_series("globex", "alice").await.unwrap(), ["out"]);
    assert!(db.total_series("acme", "bob").await.unwrap().is_empty());
}

async fn a_total_stored_twice_keeps_the_first(db: Db) {
    db.insert_total("acme", "alice", "out", &total(1, 1))
        .await
        .unwrap();
    let mut other = total(1, 2);
    other.transfers = 99;
    db.insert_total("acme", "alice", "out", &other)
        .await
        .unwrap();
    let stored = db
        .total_at_or_before("acme", "alice", "out", i64::MAX)
        .await
        .unwrap();
    assert_eq!(stored, Some(total(1, 1)));
}

async fn accounts_to_fold_have_transfers_no_total_covers(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob", "carol"]).await;
    open_accounts(&db, "globex", &["alice", "bob"]).await;
    let job = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let at = run_transfer(&db, &job, blob(1, 64))
        .await
        .committed_at
        .unwrap();
    let job = transfer(&db, "globex", "bob", "alice", "k-1").await;
    run_transfer(&db, &job, blob(2, 64)).await;
    transfer(&db, "acme", "carol", "bob", "k-2").await;

    let fold = |since, before, limit| db.accounts_to_fold(since, before, limit);
    let pair = |t: &str, a: &str| (t.to_owned(), a.to_owned());
    let all = vec![
        pair("acme", "alice"),
        pair("acme", "bob"),
        pair("globex", "alice"),
        pair("globex", "bob"),
    ];
    assert_eq!(fold(0, i64::MAX, 100).await.unwrap(), all);
    assert_eq!(fold(0, i64::MAX, 2).await.unwrap(), all[..2]);
    // `[since, before)`: a transfer committed at `before` is left for the next fold.
    assert!(fold(0, at, 100).await.unwrap().is_empty());
    assert_eq!(fold(at, at + 1, 100).await.unwrap()[..2], all[..2]);

    // A total of alice's outflow through a time after the transfer covers it; a total of
    // another series or one through the transfer's time does not.
    let covering = |through_ms| TotalRow {
        through_ms,
        total: blob(5, 64),
        transfers: 1,
    };
    db.insert_total("acme", "alice", "in", &covering(at + 1))
        .await
        .unwrap();
    db.insert_total("acme", "alice", "out", &covering(at))
        .await
        .unwrap();
    assert_eq!(fold(0, i64::MAX, 100).await.unwrap(), all);
    db.insert_total("acme", "alice", "out", &covering(at + 1))
        .await
        .unwrap();
    assert_eq!(fold(0, i64::MAX, 100).await.unwrap(), all[1..]);
}

conformance!(
    the_latest_total_at_or_before_a_time_is_read,
    a_total_stored_twice_keeps_the_first,
    accounts_to_fold_have_transfers_no_total_covers,
);
