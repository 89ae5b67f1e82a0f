//! The job queue: submission, idempotency keys, counts and the change feed.

use std::time::Duration;

use blindledger_store::{
    now_ms, CommitOutcome, Db, JobCommit, JobState, StoreError, SubmitOutcome,
};
use blindledger_test_support::until;

use crate::fixtures::{new_job, open_accounts, request_hash, seqs, submit, LONG_LEASE_MS};

async fn a_submitted_job_reads_back_pending(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    let job = new_job("acme", "transfer", ("alice", Some("bob")), "k-1");
    let before = now_ms();
    let created = submit(&db, &job).await;
    let read = db.job(&job.id).await.unwrap();
    for row in [&created, &read] {
        assert_eq!(row.id, job.id);
        assert_eq!(
            (row.tenant.as_str(), row.kind.as_str()),
            ("acme", "transfer")
        );
        assert_eq!(row.state, JobState::Pending);
        assert_eq!(row.account_a, "alice");
        assert_eq!(row.account_b.as_deref(), Some("bob"));
        assert_eq!(row.request_hash, job.request_hash);
        assert_eq!(row.payload, job.payload);
        assert_eq!(row.params, job.params);
        assert_eq!(row.trace_parent, job.trace_parent);
        assert_eq!(row.attempts, 0);
        assert_eq!(row.failure_reason, None);
        assert_eq!(
            (row.result_moved.as_ref(), row.result_ok.as_ref()),
            (None, None)
        );
        assert_eq!(
            (row.result_sums.as_ref(), row.result_transfers),
            (None, None)
        );
        assert_eq!(row.committed_at, None);
        assert!((before..=now_ms()).contains(&row.created_at));
        assert_eq!(row.updated_at, row.created_at);
    }

    let mut deposit = new_job("acme", "deposit", ("alice", None), "k-2");
    deposit.trace_parent = None;
    let second = submit(&db, &deposit).await;
    assert!(second.seq > created.seq, "seq follows submission");
    assert_eq!((second.account_b, second.trace_parent), (None, None));
    assert!(matches!(
        db.job("00000000-0000-0000-0000-000000000000").await,
        Err(StoreError::NotFound)
    ));
}

async fn the_same_idempotency_key_returns_the_first_job(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    let first = submit(&db, &new_job("acme", "deposit", ("alice", None), "k-1")).await;

    // A retry: the same request under the same key, with the id a new attempt would get.
    let retry = new_job("acme", "deposit", ("alice", None), "k-1");
    assert_ne!(retry.id, first.id);
    let SubmitOutcome::Existing(existing) = db.submit_job(&retry).await.unwrap() else {
        panic!("a retry must return the first job");
    };
    assert_eq!(
        (existing.id.as_str(), existing.seq),
        (first.id.as_str(), first.seq)
    );
    assert!(matches!(db.job(&retry.id).await, Err(StoreError::NotFound)));
    assert_eq!(db.queue_depth().await.unwrap(), 1, "no second row");

    assert!(db.has_idempotency_key("acme", "k-1").await.unwrap());
    assert!(!db.has_idempotency_key("acme", "k-2").await.unwrap());
    assert!(!db.has_idempotency_key("globex", "k-1").await.unwrap());
}

async fn a_key_reused_for_another_request_is_refused(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    let first = submit(&db, &new_job("acme", "deposit", ("alice", None), "k-1")).await;

    let mut other = new_job("acme", "withdraw", ("alice", None), "k-1");
    other.request_hash = request_hash(&["another request"]);
    assert!(matches!(
        db.submit_job(&other).await.unwrap(),
        SubmitOutcome::KeyReused
    ));
    assert!(matches!(db.job(&other.id).await, Err(StoreError::NotFound)));
    let kept = db.job(&first.id).await.unwrap();
    assert_eq!(
        (kept.kind.as_str(), kept.request_hash),
        ("deposit", first.request_hash)
    );

    // Keys are the tenant's own: another tenant may use the same one.
    open_accounts(&db, "globex", &["alice"]).await;
    submit(&db, &new_job("globex", "deposit", ("alice", None), "k-1")).await;
    assert_eq!(db.queue_depth().await.unwrap(), 2);
}

/// Idempotency keys are any printable ASCII the client picks (the ledger checks no more):
/// two keys that differ only in case are two keys, on every backend.
async fn idempotency_keys_are_case_sensitive(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    submit(
        &db,
        &new_job("acme", "deposit", ("alice", None), "Order-7f3A"),
    )
    .await;
    assert!(!db.has_idempotency_key("acme", "order-7f3a").await.unwrap());
    let other = new_job("acme", "withdraw", ("alice", None), "order-7f3a");
    let outcome = db.submit_job(&other).await.unwrap();
    assert!(
        matches!(outcome, SubmitOutcome::Created(_)),
        "a different key must queue a new job, got {outcome:?}"
    );
    assert_eq!(db.queue_depth().await.unwrap(), 2);
}

async fn job_counts_follow_the_job_states(db: Db) {
    open_accounts(&db, "acme", &["a1", "a2", "a3"]).await;
    open_accounts(&db, "globex", &["g1"]).await;
    assert_eq!(db.jobs_by_state().await.unwrap(), (0, 0));
    assert_eq!(db.queue_depth().await.unwrap(), 0);
    let acme: Vec<_> = [("a1", "k-1"), ("a2", "k-2"), ("a3", "k-3")]
        .into_iter()
        .map(|(account, key)| new_job("acme", "deposit", (account, None), key))
        .collect();
    for job in &acme {
        submit(&db, job).await;
    }
    let globex = submit(&db, &new_job("globex", "deposit", ("g1", None), "k-1")).await;
    assert_eq!(db.open_jobs("acme").await.unwrap(), 3);
    assert_eq!(db.open_jobs("globex").await.unwrap(), 1);
    assert_eq!(db.open_jobs("initech").await.unwrap(), 0);
    assert_eq!(db.jobs_by_state().await.unwrap(), (4, 0));

    // The first turn takes each tenant's oldest job: acme's first and globex's.
    let claimed = db.claim_jobs("worker-1", LONG_LEASE_MS, 2).await.unwrap();
    let first = db.job(&acme[0].id).await.unwrap();
    assert_eq!(seqs(&claimed), [first.seq, globex.seq]);
    assert_eq!(db.jobs_by_state().await.unwrap(), (2, 2));
    assert_eq!(
        db.queue_depth().await.unwrap(),
        4,
        "running jobs are still queued"
    );

    let outcome = db
        .commit_job(&claimed[0], "worker-1", &JobCommit::default())
        .await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    db.fail_job(claimed[1].seq, "worker-1", "invalid ciphertext")
        .await
        .unwrap();
    assert_eq!(db.jobs_by_state().await.unwrap(), (2, 0));
    assert_eq!(db.queue_depth().await.unwrap(), 2);
    assert_eq!(db.open_jobs("acme").await.unwrap(), 2);
    assert_eq!(db.open_jobs("globex").await.unwrap(), 0);
}

async fn changes_after_a_cursor_come_oldest_first(db: Db) {
    open_accounts(&db, "acme", &["a1", "a2", "a3"]).await;
    let mut jobs = Vec::new();
    for (account, key) in [("a1", "k-1"), ("a2", "k-2"), ("a3", "k-3")] {
        jobs.push(submit(&db, &new_job("acme", "deposit", (account, None), key)).await);
    }
    let all = db.jobs_changed_after(0, 100).await.unwrap();
    let mut ids: Vec<_> = all.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    let mut expected: Vec<_> = jobs.iter().map(|j| j.id.clone()).collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        all.windows(2).all(|w| w[0].1 <= w[1].1),
        "oldest change first: {all:?}"
    );
    for (id, at) in &all {
        assert_eq!(*at, db.job(id).await.unwrap().updated_at);
    }
    // At most `limit`, the oldest (jobs changed in the same millisecond tie).
    let two = db.jobs_changed_after(0, 2).await.unwrap();
    let times = |changes: &[(String, i64)]| changes.iter().map(|c| c.1).collect::<Vec<_>>();
    assert_eq!(times(&two), times(&all[..2]));

    // A cursor at the newest change: nothing until a job changes after it. The clock must
    // pass the cursor first (milliseconds, no signal to wait on).
    let cursor = all.last().unwrap().1;
    assert!(db.jobs_changed_after(cursor, 100).await.unwrap().is_empty());
    until(
        "the clock passes the cursor",
        Duration::from_secs(1),
        || async move { now_ms() > cursor },
    )
    .await;
    let claimed = db.claim_jobs("worker-1", LONG_LEASE_MS, 1).await.unwrap();
    let changes = db.jobs_changed_after(cursor, 100).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, claimed[0].id);
    assert!(changes[0].1 > cursor);
}

conformance!(
    a_submitted_job_reads_back_pending,
    the_same_idempotency_key_returns_the_first_job,
    a_key_reused_for_another_request_is_refused,
    idempotency_keys_are_case_sensitive,
    job_counts_follow_the_job_states,
    changes_after_a_cursor_come_oldest_first,
);
