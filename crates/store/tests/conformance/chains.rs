//! Chains: the later jobs one worker claims with a job because they wait on nothing else,
//! and their commit, all or nothing.

use blindledger_store::{CommitOutcome, Db, JobCommit, JobRow, JobState};

use crate::fixtures::{
    balance_write, blob, claim_all, new_job, open_accounts, seqs, submit, transfer, LONG_LEASE_MS,
};

async fn deposit(db: &Db, account: &str, key: &str) -> JobRow {
    submit(db, &new_job("acme", "deposit", (account, None), key)).await
}

async fn a_chain_takes_only_jobs_that_wait_on_it_alone(db: Db) {
    open_accounts(&db, "acme", &["a1", "a2", "a3", "a4", "a5", "a6"]).await;
    // Before the head, on a5: leased by another worker.
    let elsewhere = deposit(&db, "a5", "k-0").await;
    assert_eq!(
        seqs(&db.claim_jobs("worker-2", LONG_LEASE_MS, 1).await.unwrap()),
        [elsewhere.seq]
    );
    let head = deposit(&db, "a1", "k-1").await;
    let pay = transfer(&db, "acme", "a1", "a2", "k-2").await;
    let unrelated = deposit(&db, "a3", "k-3").await;
    let onward = transfer(&db, "acme", "a2", "a4", "k-4").await;
    let waits_for_a5 = transfer(&db, "acme", "a1", "a5", "k-5").await;
    let aggregate = submit(&db, &new_job("acme", "aggregate", ("a4", None), "k-6")).await;
    let after_aggregate = deposit(&db, "a4", "k-7").await;
    let after_unrelated = transfer(&db, "acme", "a3", "a6", "k-8").await;
    let last = deposit(&db, "a2", "k-9").await;

    let claimed = db.claim_jobs("worker-1", LONG_LEASE_MS, 1).await.unwrap();
    assert_eq!(seqs(&claimed), [head.seq]);
    let followers = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        seqs(&followers),
        [pay.seq, onward.seq, last.seq],
        "a1's transfer to a2, a2's onward transfer and a2's deposit join; a3 is another \
         chain, a5 waits for a job before the head, a4 waits for the aggregate"
    );
    for job in &followers {
        assert_eq!(
            (job.state, job.attempts, job.tenant.as_str()),
            (JobState::Running, 1, "acme")
        );
    }
    // What is left is claimed as before: the unrelated deposit is ready, the rest wait.
    let rest = claim_all(&db, "worker-3").await;
    assert_eq!(seqs(&rest), [unrelated.seq]);
    for job in [
        &waits_for_a5,
        &aggregate,
        &after_aggregate,
        &after_unrelated,
    ] {
        assert_eq!(db.job(&job.id).await.unwrap().state, JobState::Pending);
    }
}

async fn a_chain_is_bounded_and_never_follows_an_aggregate(db: Db) {
    open_accounts(&db, "acme", &["a1", "a2"]).await;
    let head = deposit(&db, "a1", "k-1").await;
    let second = deposit(&db, "a1", "k-2").await;
    let third = deposit(&db, "a1", "k-3").await;
    let claimed = claim_all(&db, "worker-1").await;
    assert_eq!(seqs(&claimed), [head.seq]);
    let none = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 0)
        .await
        .unwrap();
    assert!(none.is_empty(), "a chain of one");
    let one = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 1)
        .await
        .unwrap();
    assert_eq!(seqs(&one), [second.seq], "at most `max`");
    assert_eq!(db.job(&third.id).await.unwrap().state, JobState::Pending);

    let aggregate = submit(&db, &new_job("acme", "aggregate", ("a2", None), "k-4")).await;
    let after = deposit(&db, "a2", "k-5").await;
    let claimed = claim_all(&db, "worker-1").await;
    assert_eq!(seqs(&claimed), [aggregate.seq]);
    let followers = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 5)
        .await
        .unwrap();
    assert!(followers.is_empty(), "an aggregate runs alone");
    assert_eq!(db.job(&after.id).await.unwrap().state, JobState::Pending);
}

async fn a_chain_commits_whole_or_not_at_all(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    let head = deposit(&db, "alice", "k-1").await;
    let pay = transfer(&db, "acme", "alice", "bob", "k-2").await;
    let claimed = claim_all(&db, "worker-1").await;
    let followers = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 4)
        .await
        .unwrap();
    assert_eq!(seqs(&followers), [pay.seq]);
    let (alice, bob) = (
        db.account("acme", "alice").await.unwrap(),
        db.account("acme", "bob").await.unwrap(),
    );
    // Each account written once, by the last job that changed it, over the version read
    // before the chain.
    let first = JobCommit::default();
    let second = JobCommit {
        writes: vec![
            balance_write(&alice, blob(1, 512)),
            balance_write(&bob, blob(2, 512)),
        ],
        moved: Some(blob(3, 256)),
        ok: Some(blob(4, 64)),
        ..JobCommit::default()
    };

    // A lease lost on one job: nothing is written, the head's included.
    db.release_job(pay.seq, "worker-1").await.unwrap();
    let lost = db
        .commit_jobs(
            &[(&claimed[0], &first), (&followers[0], &second)],
            "worker-1",
        )
        .await
        .unwrap();
    assert_eq!(lost, CommitOutcome::LeaseLost);
    assert_eq!(db.job(&head.id).await.unwrap().state, JobState::Running);
    assert_eq!(
        db.account("acme", "alice").await.unwrap().version,
        alice.version
    );

    let again = db
        .claim_followers(&claimed[0], "worker-1", LONG_LEASE_MS, 4)
        .await
        .unwrap();
    assert_eq!(seqs(&again), [pay.seq]);
    let done = db
        .commit_jobs(&[(&claimed[0], &first), (&again[0], &second)], "worker-1")
        .await
        .unwrap();
    assert_eq!(done, CommitOutcome::Committed);
    let (head, pay) = (
        db.job(&head.id).await.unwrap(),
        db.job(&pay.id).await.unwrap(),
    );
    assert_eq!(
        (head.state, pay.state),
        (JobState::Committed, JobState::Committed)
    );
    assert_eq!(head.committed_at, pay.committed_at, "one transaction");
    assert_eq!(pay.result_moved, Some(blob(3, 256)));
    for (name, before, bytes) in [("alice", &alice, blob(1, 512)), ("bob", &bob, blob(2, 512))] {
        let after = db.account("acme", name).await.unwrap();
        assert_eq!(after.version, before.version + 1, "{name} written once");
        assert_eq!(after.balance, Some(bytes));
    }
}

conformance!(
    a_chain_takes_only_jobs_that_wait_on_it_alone,
    a_chain_is_bounded_and_never_follows_an_aggregate,
    a_chain_commits_whole_or_not_at_all,
);
