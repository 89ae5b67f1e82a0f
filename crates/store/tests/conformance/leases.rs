//! Claims and leases: who runs which job, in which order, and what a lost lease forbids.
//!
//! Leases are timed on the process clock (`now_ms`), which the cases read too: a lease of
//! 1 ms has expired once `now_ms()` is 2 ms past the claim, which they wait for with a
//! bounded poll instead of a sleep.

use std::collections::HashSet;
use std::time::Duration;

use blindledger_store::{now_ms, CommitOutcome, Db, JobRow, JobState};
use blindledger_test_support::until;

use crate::fixtures::{
    blob, claim_all, new_job, open_accounts, seqs, submit, transfer, transfer_commit, LONG_LEASE_MS,
};

/// Waits until a lease of `lease_ms` taken by `claimed` has expired.
async fn wait_for_expiry(claimed: &JobRow, lease_ms: i64) {
    // The lease runs until `updated_at + lease_ms`; it expires when the clock is past it.
    let until_ms = claimed.updated_at + lease_ms;
    until("the lease expires", Duration::from_secs(2), || async move {
        now_ms() > until_ms
    })
    .await;
}

/// Queues one deposit on each of `accounts` of `tenant`, in order.
async fn deposits(db: &Db, tenant: &str, accounts: &[&str]) -> Vec<JobRow> {
    open_accounts(db, tenant, accounts).await;
    let mut jobs = Vec::new();
    for &account in accounts {
        let key = format!("deposit-{account}");
        jobs.push(submit(db, &new_job(tenant, "deposit", (account, None), &key)).await);
    }
    jobs
}

async fn claims_follow_submission_order(db: Db) {
    let jobs = deposits(&db, "acme", &["a1", "a2", "a3", "a4", "a5"]).await;
    let first = db.claim_jobs("worker-1", LONG_LEASE_MS, 2).await.unwrap();
    assert_eq!(seqs(&first), seqs(&jobs[..2]));
    let rest = claim_all(&db, "worker-1").await;
    assert_eq!(seqs(&rest), seqs(&jobs[2..]));
    for job in first.iter().chain(&rest) {
        assert_eq!((job.state, job.attempts), (JobState::Running, 1));
    }
    assert!(
        claim_all(&db, "worker-2").await.is_empty(),
        "all are leased"
    );
}

async fn claims_take_turns_across_tenants(db: Db) {
    let acme = deposits(&db, "acme", &["a1", "a2", "a3"]).await;
    let globex = deposits(&db, "globex", &["g1", "g2"]).await;
    let claimed = claim_all(&db, "worker-1").await;
    assert_eq!(
        seqs(&claimed),
        [
            acme[0].seq,
            globex[0].seq,
            acme[1].seq,
            globex[1].seq,
            acme[2].seq
        ],
        "each tenant's oldest first, then each one's second..."
    );
}

async fn a_later_job_on_an_account_waits_for_the_earlier_one(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob", "carol"]).await;
    let pay = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let deposit = submit(&db, &new_job("acme", "deposit", ("bob", None), "k-2")).await;
    let other = submit(&db, &new_job("acme", "deposit", ("carol", None), "k-3")).await;

    let claimed = claim_all(&db, "worker-1").await;
    assert_eq!(seqs(&claimed), [pay.seq, other.seq], "bob's deposit waits");

    // Handed back, the transfer is the one runnable again, not the deposit behind it.
    db.release_job(pay.seq, "worker-1").await.unwrap();
    let again = claim_all(&db, "worker-2").await;
    assert_eq!(seqs(&again), [pay.seq]);

    let from = db.account("acme", "alice").await.unwrap();
    let to = db.account("acme", "bob").await.unwrap();
    let commit = transfer_commit(&from, &to, blob(5, 64));
    let outcome = db.commit_job(&again[0], "worker-2", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    assert_eq!(seqs(&claim_all(&db, "worker-1").await), [deposit.seq]);
}

async fn two_owners_never_claim_the_same_job(db: Db) {
    let accounts: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
    let names: Vec<&str> = accounts.iter().map(String::as_str).collect();
    let jobs = deposits(&db, "acme", &names).await;

    let owners: Vec<_> = ["worker-1", "worker-2", "worker-3", "worker-4"]
        .into_iter()
        .map(|owner| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = db.claim_jobs(owner, LONG_LEASE_MS, 3).await.unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(seqs(&claimed));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for owner in owners {
        all.extend(owner.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a job claimed twice: {all:?}");
    assert_eq!(distinct, seqs(&jobs).into_iter().collect::<HashSet<_>>());
    for job in &jobs {
        assert_eq!(db.job(&job.id).await.unwrap().attempts, 1);
    }
}

async fn an_expired_lease_passes_to_another_owner(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob", "carol"]).await;
    let held = submit(&db, &new_job("acme", "deposit", ("carol", None), "k-0")).await;
    assert_eq!(seqs(&claim_all(&db, "worker-1").await), [held.seq]);
    let job = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let stale = db.claim_jobs("worker-1", 1, 10).await.unwrap();
    assert_eq!(seqs(&stale), [job.seq]);

    wait_for_expiry(&stale[0], 1).await;
    let taken = claim_all(&db, "worker-2").await;
    assert_eq!(seqs(&taken), [job.seq], "only the expired lease passes");
    assert_eq!(taken[0].attempts, 2);

    // The first owner lost it: nothing it does changes the job or the balances.
    assert!(!db
        .renew_lease(job.seq, "worker-1", LONG_LEASE_MS)
        .await
        .unwrap());
    let from = db.account("acme", "alice").await.unwrap();
    let to = db.account("acme", "bob").await.unwrap();
    let late = db
        .commit_job(
            &stale[0],
            "worker-1",
            &transfer_commit(&from, &to, blob(1, 64)),
        )
        .await;
    assert_eq!(late.unwrap(), CommitOutcome::LeaseLost);
    db.fail_job(job.seq, "worker-1", "gave up").await.unwrap();
    db.release_job(job.seq, "worker-1").await.unwrap();
    let row = db.job(&job.id).await.unwrap();
    assert_eq!((row.state, row.failure_reason), (JobState::Running, None));
    assert_eq!(db.account("acme", "alice").await.unwrap().version, 0);

    let outcome = db
        .commit_job(
            &taken[0],
            "worker-2",
            &transfer_commit(&from, &to, blob(2, 64)),
        )
        .await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    assert_eq!(
        db.job(&job.id).await.unwrap().result_moved,
        Some(blob(2, 64))
    );
}

async fn a_renewed_lease_keeps_the_job(db: Db) {
    let jobs = deposits(&db, "acme", &["alice"]).await;
    let claimed = db.claim_jobs("worker-1", 1, 10).await.unwrap();
    assert_eq!(seqs(&claimed), seqs(&jobs));
    // Renewals in quick succession (several in one millisecond, which change no value)
    // all report the lease held.
    for _ in 0..50 {
        assert!(db
            .renew_lease(jobs[0].seq, "worker-1", LONG_LEASE_MS)
            .await
            .unwrap());
    }
    wait_for_expiry(&claimed[0], 1).await;
    assert!(
        claim_all(&db, "worker-2").await.is_empty(),
        "the renewed lease holds"
    );
    assert!(db
        .renew_lease(jobs[0].seq, "worker-1", LONG_LEASE_MS)
        .await
        .unwrap());
}

async fn a_wrong_owner_changes_nothing(db: Db) {
    open_accounts(&db, "acme", &["alice", "bob"]).await;
    let job = transfer(&db, "acme", "alice", "bob", "k-1").await;
    let claimed = claim_all(&db, "worker-1").await;

    assert!(!db
        .renew_lease(job.seq, "worker-2", LONG_LEASE_MS)
        .await
        .unwrap());
    db.release_job(job.seq, "worker-2").await.unwrap();
    db.fail_job(job.seq, "worker-2", "not mine").await.unwrap();
    let from = db.account("acme", "alice").await.unwrap();
    let to = db.account("acme", "bob").await.unwrap();
    let commit = transfer_commit(&from, &to, blob(1, 64));
    let outcome = db.commit_job(&claimed[0], "worker-2", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::LeaseLost);

    let row = db.job(&job.id).await.unwrap();
    assert_eq!((row.state, row.attempts), (JobState::Running, 1));
    assert_eq!((row.failure_reason, row.result_moved), (None, None));
    assert_eq!(row.payload, job.payload, "the input is kept for the owner");
    assert!(claim_all(&db, "worker-3").await.is_empty(), "still leased");
    assert_eq!(db.account("acme", "alice").await.unwrap().version, 0);

    // The owner still holds it.
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
}

async fn a_released_job_is_claimed_again(db: Db) {
    let jobs = deposits(&db, "acme", &["alice"]).await;
    claim_all(&db, "worker-1").await;
    db.release_job(jobs[0].seq, "worker-1").await.unwrap();
    let row = db.job(&jobs[0].id).await.unwrap();
    assert_eq!(row.state, JobState::Pending);
    assert!(!db
        .renew_lease(jobs[0].seq, "worker-1", LONG_LEASE_MS)
        .await
        .unwrap());
    let again = claim_all(&db, "worker-2").await;
    assert_eq!(seqs(&again), seqs(&jobs));
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].payload, jobs[0].payload);
}

async fn a_failed_job_keeps_a_bounded_reason_and_drops_its_input(db: Db) {
    let jobs = deposits(&db, "acme", &["alice"]).await;
    let claimed = claim_all(&db, "worker-1").await;
    // 1,500 two-byte characters: the column holds 1,024 characters, whatever their bytes.
    let reason = "é".repeat(1_500);
    db.fail_job(jobs[0].seq, "worker-1", &reason).await.unwrap();

    let row = db.job(&jobs[0].id).await.unwrap();
    assert_eq!(row.state, JobState::Failed);
    assert_eq!(row.failure_reason, Some("é".repeat(1_024)));
    assert_eq!(row.payload, None);
    assert!(row.updated_at >= claimed[0].updated_at);
    assert!(
        claim_all(&db, "worker-2").await.is_empty(),
        "a failed job is final"
    );
    let outcome = db
        .commit_job(&claimed[0], "worker-1", &Default::default())
        .await;
    assert_eq!(outcome.unwrap(), CommitOutcome::LeaseLost);
    assert_eq!(db.job(&jobs[0].id).await.unwrap().state, JobState::Failed);
}

conformance!(
    claims_follow_submission_order,
    claims_take_turns_across_tenants,
    a_later_job_on_an_account_waits_for_the_earlier_one,
    two_owners_never_claim_the_same_job,
    an_expired_lease_passes_to_another_owner,
    a_renewed_lease_keeps_the_job,
    a_wrong_owner_changes_nothing,
    a_released_job_is_claimed_again,
    a_failed_job_keeps_a_bounded_reason_and_drops_its_input,
);
