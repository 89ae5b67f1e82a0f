//! Realistic rows and the few steps most cases share.

use blindledger_store::{
    AccountRow, BalanceWrite, CommitOutcome, Db, JobCommit, JobRow, NewJob, SubmitOutcome,
    TenantRow,
};
use sha2::{Digest, Sha256};

/// A lease no case outlives.
pub const LONG_LEASE_MS: i64 = 60_000;

/// Bytes standing for a ciphertext: `len` bytes going through every byte value (NUL and
/// 0xff included, not valid UTF-8), different for each `seed`.
pub fn blob(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A tenant whose key id is `key` repeated (a hex digit), with a public key to match.
pub fn tenant(name: &str, key: char) -> TenantRow {
    TenantRow {
        name: name.into(),
        region: "eu-west-1".into(),
        width_bits: 32,
        public_key: blob(key as u8, 4096),
        key_id: key.to_string().repeat(64),
        server_key_path: format!("server-keys/{name}/{}.bin", key.to_string().repeat(64)),
        server_key_size: 53_687_091,
    }
}

/// Registers `tenant` (with key id `a…a`) and opens `accounts` in it, without limits.
pub async fn open_accounts(db: &Db, tenant_name: &str, accounts: &[&str]) {
    db.register_tenant(&tenant(tenant_name, 'a')).await.unwrap();
    for account in accounts {
        db.insert_account(tenant_name, account, None, None)
            .await
            .unwrap();
    }
}

/// The job the ledger queues for `kind` on `account_a` (and `account_b`), keyed `key`.
pub fn new_job(tenant: &str, kind: &str, accounts: (&str, Option<&str>), key: &str) -> NewJob {
    let (account_a, account_b) = accounts;
    NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        tenant: tenant.into(),
        kind: kind.into(),
        account_a: account_a.into(),
        account_b: account_b.map(Into::into),
        idempotency_key: key.into(),
        request_hash: request_hash(&[tenant, kind, account_a, key]),
        payload: (kind != "aggregate").then(|| blob(key.len() as u8, 2048)),
        params: r#"{"max_amount":1000,"window_seconds":86400}"#.into(),
        trace_parent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    }
}

/// The hex SHA-256 of the parts, as the ledger fingerprints a request.
pub fn request_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Queues a job with a fresh key and returns it.
pub async fn submit(db: &Db, job: &NewJob) -> JobRow {
    match db.submit_job(job).await.unwrap() {
        SubmitOutcome::Created(row) => row,
        other => panic!("expected a new job, got {other:?}"),
    }
}

/// A transfer from `from` to `to` in `tenant`, keyed `key`.
pub async fn transfer(db: &Db, tenant: &str, from: &str, to: &str, key: &str) -> JobRow {
    submit(db, &new_job(tenant, "transfer", (from, Some(to)), key)).await
}

/// The seqs of `jobs`, in their order.
pub fn seqs(jobs: &[JobRow]) -> Vec<i64> {
    jobs.iter().map(|j| j.seq).collect()
}

/// Claims every runnable job for `owner` under a long lease.
pub async fn claim_all(db: &Db, owner: &str) -> Vec<JobRow> {
    db.claim_jobs(owner, LONG_LEASE_MS, 100).await.unwrap()
}

/// A new balance for `account`, written over the version it was read at.
pub fn balance_write(account: &AccountRow, balance: Vec<u8>) -> BalanceWrite {
    BalanceWrite {
        account: account.name.clone(),
        expected_version: account.version,
        balance,
        window: None,
    }
}

/// What a transfer worker commits: both balances and the amount moved.
pub fn transfer_commit(from: &AccountRow, to: &AccountRow, moved: Vec<u8>) -> JobCommit {
    JobCommit {
        writes: vec![
            balance_write(from, blob(1, 512)),
            balance_write(to, blob(2, 512)),
        ],
        moved: Some(moved),
        ok: Some(blob(3, 64)),
        ..JobCommit::default()
    }
}

/// Claims the one runnable job, which must be `job`, and commits it as a transfer moving
/// `moved`. Returns the committed row.
pub async fn run_transfer(db: &Db, job: &JobRow, moved: Vec<u8>) -> JobRow {
    let claimed = claim_all(db, "worker-1").await;
    assert_eq!(
        seqs(&claimed),
        [job.seq],
        "the job to run is the one runnable"
    );
    let from = db.account(&job.tenant, &job.account_a).await.unwrap();
    let to = db
        .account(&job.tenant, job.account_b.as_deref().unwrap())
        .await
        .unwrap();
    let outcome = db
        .commit_job(&claimed[0], "worker-1", &transfer_commit(&from, &to, moved))
        .await
        .unwrap();
    assert_eq!(outcome, CommitOutcome::Committed);
    db.job(&job.id).await.unwrap()
}
