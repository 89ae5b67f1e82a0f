//! Commits: a job's balance writes and results land together, once, or not at all; what
//! was committed reads back per tenant and account.

use blindledger_store::{CommitOutcome, Db, JobCommit, JobState, StoreError};

use crate::fixtures::{
    balance_write, blob, claim_all, new_job, open_accounts, run_transfer, seqs, submit, transfer,
    transfer_commit,
};

/// Runs a deposit on `account`, keyed `key`, to its commit: the account's version rises.
async fn run_deposit(db: &Db, tenant: &str, account: &str, key: &str) {
    submit(db, &new_job(tenant, "deposit", (account, None), key)).await;
    let claimed = claim_all(db, "worker-1").await;
    let row = db.account(tenant, account).await.unwrap();
    let commit = JobCommit {
        writes: vec![balance_write(&row, blob(40, 512))],
        ..JobCommit::default()
    };
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
}

async fn a_commit_writes_balances_and_results_once(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    let job = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let claimed = claim_all(&db, "worker-1").await;
    let from = db.account("acme", "alice").await.unwrap();
    let to = db.account("acme", "bob").await.unwrap();
    let commit = transfer_commit(&from, &to, blob(9, 256));
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);

    let row = db.job(&job.id).await.unwrap();
    assert_eq!(row.state, JobState::Committed);
    assert_eq!(row.payload, None, "the input is dropped");
    assert_eq!((row.result_moved, row.result_ok), (commit.moved, commit.ok));
    let committed_at = row.committed_at.expect("a commit time");
    assert!(committed_at >= claimed[0].updated_at);
    assert_eq!(row.updated_at, committed_at);
    let alice = db.account("acme", "alice").await.unwrap();
    let bob = db.account("acme", "bob").await.unwrap();
    assert_eq!(alice.version, 1);
    assert_eq!(alice.balance, Some(blob(1, 512)));
    assert_eq!(bob.version, 1);
    assert_eq!(bob.balance, Some(blob(2, 512)));

    // Committing again, even over the current versions, is refused: the job is done.
    let again = transfer_commit(
        &db.account("acme", "alice").await.unwrap(),
        &bob,
        blob(7, 8),
    );
    let outcome = db.commit_job(&claimed[0], "worker-1", &again).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.account("acme", "alice").await.unwrap().version, 1);
    assert_eq!(
        db.account("acme", "bob").await.unwrap().balance,
        Some(blob(2, 512))
    );
    let row = db.job(&job.id).await.unwrap();
    assert_eq!(
        (row.committed_at, row.result_moved),
        (Some(committed_at), Some(blob(9, 256)))
    );
}

async fn a_stale_version_commits_nothing(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    // alice is read, then a deposit moves her on: what was read is one version behind.
    let stale_alice = db.account("acme", "alice").await.unwrap();
    run_deposit(&db, "acme", "alice", "k-0").await;
    let job = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let claimed = claim_all(&db, "worker-1").await;
    let to = db.account("acme", "bob").await.unwrap();

    // bob's write comes first and is right; alice's is stale: the whole commit is
    // refused, bob's write included, and the job stays with its owner.
    let mut stale = transfer_commit(&stale_alice, &to, blob(9, 64));
    stale.writes.reverse();
    let outcome = db.commit_job(&claimed[0], "worker-1", &stale).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::StaleBalance);
    let bob = db.account("acme", "bob").await.unwrap();
    assert_eq!((bob.version, bob.balance), (0, None));
    let alice = db.account("acme", "alice").await.unwrap();
    assert_eq!(alice.version, 1);
    assert_eq!(alice.balance, Some(blob(40, 512)));
    let row = db.job(&job.id).await.unwrap();
    assert_eq!(row.state, JobState::Running);
    assert_eq!((row.result_moved, row.committed_at), (None, None));
    assert_eq!(
        row.payload, job.payload,
        "the input is kept for the recomputation"
    );

    // Recomputed over the versions read now, it commits.
    let fresh = transfer_commit(&alice, &to, blob(9, 64));
    let outcome = db.commit_job(&claimed[0], "worker-1", &fresh).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    assert_eq!(db.account("acme", "alice").await.unwrap().version, 2);
    assert_eq!(db.account("acme", "bob").await.unwrap().version, 1);
}

async fn an_aggregate_commit_stores_its_results(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    let job = submit(&db, &new_job("acme", "aggregate", ("alice", None), "k-1")).await;
    assert_eq!(job.payload, None);
    let claimed = claim_all(&db, "worker-1").await;
    let sums = (blob(1, 30_000), blob(2, 30_000), blob(3, 30_000));
    let commit = JobCommit {
        sums: Some(sums.clone()),
        transfers: Some(42),
        ..JobCommit::default()
    };
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    let row = db.job(&job.id).await.unwrap();
    assert_eq!(row.result_sums, Some(sums));
    assert_eq!(row.result_transfers, Some(42));
    assert_eq!(db.account("acme", "alice").await.unwrap().version, 0);
}

async fn moved_amounts_are_the_accounts_committed_transfers_only(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    open_accounts(&db, "globex", &["alice", "bob"]).await;
    let t1 = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let t1 = run_transfer(&db, &t1, blob(1, 64)).await;
    let t2 = transfer(&db, "acme", "bob", "alice", "k-2").await;
    run_transfer(&db, &t2, blob(2, 64)).await;
    let g1 = transfer(&db, "globex", "alice", "bob", "k-1").await;
    run_transfer(&db, &g1, blob(3, 64)).await;
    // Neither a committed deposit nor an uncommitted transfer counts.
    submit(&db, &new_job("acme", "deposit", ("alice", None), "k-3")).await;
    let claimed = claim_all(&db, "worker-1").await;
    let commit = JobCommit {
        moved: Some(blob(4, 64)),
        ..JobCommit::default()
    };
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    transfer(&db, "acme", "alice", "bob", "k-4").await;

    let moved = |tenant: &'static str, account: &'static str, outgoing: bool| {
        let db = db.clone();
        async move {
            db.moved_amounts(tenant, account, outgoing, 0, i64::MAX)
                .await
                .unwrap()
        }
    };
    assert_eq!(moved("acme", "alice", true).await, [blob(1, 64)]);
    assert_eq!(moved("acme", "alice", false).await, [blob(2, 64)]);
    assert_eq!(moved("acme", "bob", true).await, [blob(2, 64)]);
    assert_eq!(moved("acme", "bob", false).await, [blob(1, 64)]);
    assert_eq!(moved("globex", "alice", true).await, [blob(3, 64)]);
    assert_eq!(moved("globex", "alice", false).await, Vec::<Vec<u8>>::new());

    // `[from, to)`: a transfer committed at `to` is outside, one committed at `from` in.
    let at = t1.committed_at.unwrap();
    let window = |from, to| db.moved_amounts("acme", "alice", true, from, to);
    assert_eq!(window(at, at + 1).await.unwrap(), [blob(1, 64)]);
    assert!(window(at - 1, at).await.unwrap().is_empty());
}

async fn a_pruned_transfer_ciphertext_is_reported(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    transfer(&db, "acme", "alice", "bob", "k-1").await;
    let claimed = claim_all(&db, "worker-1").await;
    let from = db.account("acme", "alice").await.unwrap();
    let to = db.account("acme", "bob").await.unwrap();
    let mut commit = transfer_commit(&from, &to, blob(1, 64));
    commit.moved = None;
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    let read = db.moved_amounts("acme", "alice", true, 0, i64::MAX).await;
    assert!(matches!(read, Err(StoreError::Pruned(_))), "{read:?}");
}

async fn transfers_list_newest_first_in_pages(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob", "carol"]).await;
    open_accounts(&db, "globex", &["alice", "bob"]).await;
    let mut alices = Vec::new();
    for i in 0..5 {
        let (from, to) = if i % 2 == 0 {
            ("alice", "bob")
        } else {
            ("bob", "alice")
        };
        alices.push(transfer(&db, "acme", from, to, &format!("k-{i}")).await);
    }
    let carol = transfer(&db, "acme", "bob", "carol", "k-carol").await;
    submit(
        &db,
        &new_job("acme", "deposit", ("alice", None), "k-deposit"),
    )
    .await;
    transfer(&db, "globex", "alice", "bob", "k-0").await;

    let newest_first: Vec<i64> = seqs(&alices).into_iter().rev().collect();
    let page = db
        .list_transfers("acme", "alice", i64::MAX, 3)
        .await
        .unwrap();
    assert_eq!(seqs(&page), newest_first[..3]);
    assert!(page
        .iter()
        .all(|j| j.tenant == "acme" && j.kind == "transfer"));
    let next = db
        .list_transfers("acme", "alice", page[2].seq, 3)
        .await
        .unwrap();
    assert_eq!(seqs(&next), newest_first[3..]);

    let bobs = db
        .list_transfers("acme", "bob", i64::MAX, 100)
        .await
        .unwrap();
    let mut expected = vec![carol.seq];
    expected.extend(&newest_first);
    assert_eq!(seqs(&bobs), expected);
    let globex = db
        .list_transfers("globex", "alice", i64::MAX, 100)
        .await
        .unwrap();
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0].tenant, "globex");
    assert!(db
        .list_transfers("acme", "dave", i64::MAX, 100)
        .await
        .unwrap()
        .is_empty());
}

conformance!(
    a_commit_writes_balances_and_results_once,
    a_stale_version_commits_nothing,
    an_aggregate_commit_stores_its_results,
    moved_amounts_are_the_accounts_committed_transfers_only,
    a_pruned_transfer_ciphertext_is_reported,
    transfers_list_newest_first_in_pages,
);
