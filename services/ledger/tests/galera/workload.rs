//! A stream of deposits, withdrawals, transfers and aggregates that keeps going through
//! faults.
//!
//! Every submission keeps its idempotency key and ciphertext until the ledger acknowledges
//! it: a call that fails with UNAVAILABLE (or never answers) is sent again, byte for byte,
//! so the ledger must answer with the original job and never queue it twice. With several
//! ledger instances, a call sent again goes to the next one, as behind a load balancer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use blindledger_client::{ClientError, LedgerClient};
use blindledger_keyholder::TenantKeys;
use blindledger_proto::ledger::v1 as pb;
use rand::Rng;
use tonic::Code;

use crate::helpers::encrypt;

pub const TENANT: &str = "acme";
pub const ACCOUNTS: [&str; 4] = ["a", "b", "c", "d"];

/// One operation the workload submitted, as it was sent.
#[derive(Debug, Clone)]
pub enum Operation {
    Deposit {
        account: usize,
        amount: u64,
    },
    /// Applied when covered, like a transfer's debit.
    Withdraw {
        account: usize,
        amount: u64,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    /// Over the transfers committed since `since`, counting those above 30.
    Aggregate {
        account: usize,
        since: SystemTime,
    },
}

/// An operation the ledger acknowledged with a job id.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub job_id: String,
    pub idempotency_key: String,
    pub operation: Operation,
}

/// Counters reported at the end.
#[derive(Debug, Default)]
pub struct Counters {
    pub submissions: AtomicU64,
    /// Calls sent again after UNAVAILABLE or a lost answer.
    pub resubmissions: AtomicU64,
}

/// The running workload.
pub struct Workload {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Acknowledged>>>,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Workload {
    /// Submits one operation every `pace` until stopped, to `clients` in turn.
    pub fn start(clients: Vec<LedgerClient>, keys: Arc<TenantKeys>, pace: Duration) -> Self {
        assert!(!clients.is_empty(), "a ledger to send to");
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(generate(
            clients,
            keys,
            pace,
            stop.clone(),
            acknowledged.clone(),
            counters.clone(),
        ));
        Workload {
            stop,
            acknowledged,
            counters,
            task,
        }
    }

    /// The operations acknowledged so far.
    pub fn acknowledged(&self) -> Vec<Acknowledged> {
        self.acknowledged.lock().unwrap().clone()
    }

    /// Stops after the submission in flight is acknowledged; returns every acknowledged
    /// operation.
    pub async fn stop(self) -> Vec<Acknowledged> {
        self.stop.store(true, Ordering::Relaxed);
        let acknowledged = self.acknowledged.clone();
        self.task.await.expect("workload task");
        let done = acknowledged.lock().unwrap().clone();
        done
    }
}

async fn generate(
    clients: Vec<LedgerClient>,
    keys: Arc<TenantKeys>,
    pace: Duration,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Acknowledged>>>,
    counters: Arc<Counters>,
) {
    let mut ticker = tokio::time::interval(pace);
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let operation = random_operation();
        let amount = match operation {
            Operation::Deposit { amount, .. }
            | Operation::Withdraw { amount, .. }
            | Operation::Transfer { amount, .. } => amount,
            Operation::Aggregate { .. } => 0,
        };
        let ciphertext = encrypt(&keys, amount);
        let key = uuid::Uuid::new_v4().to_string();
        counters.submissions.fetch_add(1, Ordering::Relaxed);
        let job = loop {
            let client = &clients[next % clients.len()];
            next += 1;
            match submit(client, &operation, &ciphertext, &key).await {
                Ok(job) => break job,
                Err(code) => {
                    assert!(
                        matches!(
                            code,
                            Code::Unavailable
                                | Code::DeadlineExceeded
                                | Code::Unknown
                                | Code::Aborted
                        ),
                        "a fault must look like UNAVAILABLE, not {code:?}"
                    );
                    counters.resubmissions.fetch_add(1, Ordering::Relaxed);
                    // Not a wait: paces the client's retries of this submission (load).
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        acknowledged.lock().unwrap().push(Acknowledged {
            job_id: job.id,
            idempotency_key: key,
            operation,
        });
    }
}

fn random_operation() -> Operation {
    let mut rng = rand::rng();
    let account = rng.random_range(0..ACCOUNTS.len());
    match rng.random_range(0..10) {
        0..=1 => Operation::Deposit {
            account,
            amount: rng.random_range(1..=50),
        },
        // Large enough to be refused now and then: a refusal must move nothing.
        3 => Operation::Withdraw {
            account,
            amount: rng.random_range(1..=1_200),
        },
        // Aggregates are rare: their cost grows with the transfers in their window.
        2 if rng.random_range(0..3) == 0 => Operation::Aggregate {
            account,
            since: SystemTime::now() - Duration::from_secs(60),
        },
        _ => {
            let to = (account + rng.random_range(1..ACCOUNTS.len())) % ACCOUNTS.len();
            Operation::Transfer {
                from: account,
                to,
                amount: rng.random_range(1..=20),
            }
        }
    }
}

/// Sends one operation, with a deadline so a call to a hung node does not block forever.
async fn submit(
    client: &LedgerClient,
    operation: &Operation,
    ciphertext: &[u8],
    key: &str,
) -> Result<pb::Job, Code> {
    let call = async {
        match *operation {
            Operation::Deposit { account, .. } => {
                client
                    .deposit(TENANT, ACCOUNTS[account], ciphertext.to_vec(), key)
                    .await
            }
            Operation::Withdraw { account, .. } => {
                client
                    .withdraw(TENANT, ACCOUNTS[account], ciphertext.to_vec(), key)
                    .await
            }
            Operation::Transfer { from, to, .. } => {
                client
                    .transfer(
                        TENANT,
                        ACCOUNTS[from],
                        ACCOUNTS[to],
                        ciphertext.to_vec(),
                        key,
                    )
                    .await
            }
            Operation::Aggregate { account, since } => {
                client
                    .aggregate(TENANT, ACCOUNTS[account], since, far_future(), 30, key)
                    .await
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Err(_) => Err(Code::DeadlineExceeded),
        Ok(Ok(job)) => Ok(job),
        Ok(Err(ClientError::Status(status))) => Err(status.code()),
        Ok(Err(other)) => panic!("client error: {other}"),
    }
}

/// The end of every aggregate window (2100-01-01).
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(4_102_444_800)
}
