//! The bank test (after Jepsen's) for this ledger: two ledger instances on a three-node
//! Galera cluster whose nodes run in their own network namespaces, one client sending
//! deposits, withdrawals, transfers and aggregates on a 32-bit ledger to both instances in
//! turn, and a fault schedule that, round after round, kills a replica (SIGKILL) and
//! restarts it, hangs two nodes (SIGSTOP), takes the write node's link down, drops every
//! packet towards the write node (one-way loss), kills and restarts the write node, and
//! restarts a ledger instance; until the wanted number of jobs was acknowledged and every
//! fault ran at least once.
//!
//! At the end every acknowledged job committed exactly once (none lost, none doubled), the
//! decrypted balances equal a plaintext model of the acknowledged operations (conservation),
//! and the controller's and the audit trail's writes beside it were each stored once, the
//! audit chain verifying.
//!
//! `scripts/soak.sh --jobs 1000` runs it long; the suite runs a short round
//! (`BLINDLEDGER_SOAK_JOBS`, default 40). Network namespaces need root.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Script};
use crate::helpers::{tenant_with_accounts, TestApp};
use crate::workload::{Workload, ACCOUNTS, TENANT};
use crate::{
    other_nodes, refused_while_no_primary, settle, timed, verify, wait_for_failover, Harness,
};

/// Jobs acknowledged before the schedule may end, unless `BLINDLEDGER_SOAK_JOBS` says.
const DEFAULT_JOBS: usize = 40;
/// How long the workload runs under each fault before it is repaired.
const UNDER_FAULT: Duration = Duration::from_secs(8);
/// One operation submitted every… (a little slower than two instances' workers finish them
/// on two cores, so that the queue drains after each fault).
const PACE: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillReplica,
    PauseTwoNodes,
    CutWriteNode,
    LossToWriteNode,
    KillWriteNode,
    RestartLedger,
}

const SCHEDULE: [Fault; 6] = [
    Fault::KillReplica,
    Fault::CutWriteNode,
    Fault::RestartLedger,
    Fault::PauseTwoNodes,
    Fault::LossToWriteNode,
    Fault::KillWriteNode,
];

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillReplica => "kill -9 and restart a replica",
            Fault::PauseTwoNodes => "pause two nodes (SIGSTOP, no quorum)",
            Fault::CutWriteNode => "link of the write node down",
            Fault::LossToWriteNode => "every packet towards the write node lost",
            Fault::KillWriteNode => "kill -9 and restart the write node",
            Fault::RestartLedger => "restart ledger instance 2",
        }
    }
}

/// The jobs to reach, from `BLINDLEDGER_SOAK_JOBS`.
fn wanted_jobs() -> usize {
    match std::env::var("BLINDLEDGER_SOAK_JOBS") {
        Ok(jobs) => jobs
            .parse()
            .unwrap_or_else(|_| panic!("BLINDLEDGER_SOAK_JOBS={jobs} is not a number")),
        Err(_) => DEFAULT_JOBS,
    }
}

/// A free loopback address for a ledger instance that restarts on the same port.
fn free_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}

/// Runs the soak; returns its report.
pub async fn run() -> String {
    let jobs = wanted_jobs();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("galera-netns");
    let script = Script::netns(dir);
    let h = Harness::start_on(Cluster::start_with(script.clone()).await).await;
    tenant_with_accounts(&h.app, &h.keys, TENANT, &ACCOUNTS).await;
    let opening = verify::open_balances(&h.app, &h.keys).await;
    let second_addr = free_address();
    let mut second = Some(h.instance(second_addr).await);
    let clients = vec![
        h.app.client.clone(),
        second.as_ref().map(|app| app.client.clone()).unwrap(),
    ];
    let workload = Workload::start(clients, h.keys.clone(), PACE);
    let stream = h.services.stream();
    let started = Instant::now();
    let mut report = Vec::new();
    let mut round = 0;
    while round < SCHEDULE.len() || workload.acknowledged().len() < jobs {
        let fault = SCHEDULE[round % SCHEDULE.len()];
        round += 1;
        let retried_before = workload.counters.resubmissions.load(Ordering::Relaxed);
        let acknowledged_before = workload.acknowledged().len();
        let mut said = String::new();
        let mut note = String::new();
        let repair = match fault {
            Fault::KillReplica => {
                let victim = (h.write_node() % 3 + 1).to_string();
                script.run(&["kill", &victim]);
                // Not a wait: how long the workload runs under the fault.
                tokio::time::sleep(UNDER_FAULT).await;
                timed(|| said = script.run_logged(&["start", &victim]).1)
            }
            Fault::PauseTwoNodes => {
                let others = other_nodes(h.write_node());
                for node in &others {
                    script.run(&["pause", node]);
                }
                let refused = refused_while_no_primary(&h).await;
                note = format!("{refused} probes answered UNAVAILABLE while no primary");
                timed(|| {
                    for node in &others {
                        script.run(&["resume", node]);
                    }
                })
            }
            Fault::CutWriteNode | Fault::LossToWriteNode => {
                let writer = h.write_node();
                let node = writer.to_string();
                let args: &[&str] = if matches!(fault, Fault::CutWriteNode) {
                    &["cut", &node]
                } else {
                    &["lossy", &node, "100"]
                };
                script.run(args);
                let moved = wait_for_failover(&h, writer).await;
                note = format!("writes moved from node {writer} to node {moved}");
                // Not a wait: how long the workload runs under the fault.
                tokio::time::sleep(UNDER_FAULT).await;
                timed(|| script.run(&["heal"]))
            }
            Fault::KillWriteNode => {
                let writer = h.write_node();
                script.run(&["kill", &writer.to_string()]);
                let moved = wait_for_failover(&h, writer).await;
                note = format!("writes moved from node {writer} to node {moved}");
                timed(|| said = script.run_logged(&["start", &writer.to_string()]).1)
            }
            Fault::RestartLedger => {
                second.take().expect("instance 2 runs").stop().await;
                // Not a wait: how long the workload runs with one instance down.
                tokio::time::sleep(UNDER_FAULT).await;
                let start = Instant::now();
                let app: TestApp = h.instance(second_addr).await;
                second = Some(app);
                (Instant::now(), start.elapsed())
            }
        };
        let mut entry = settle(&h, &workload, fault.name(), repair).await;
        let retried = workload.counters.resubmissions.load(Ordering::Relaxed) - retried_before;
        let acknowledged = workload.acknowledged().len() - acknowledged_before;
        entry.note = format!(
            "{acknowledged} jobs acknowledged during it, {retried} calls sent again{}{note}",
            if note.is_empty() { "" } else { "; " }
        );
        entry.explain_slow_start(&said);
        println!("soak round {round}: {entry}");
        report.push(entry);
    }

    let resubmitted = workload.counters.resubmissions.load(Ordering::Relaxed);
    let acknowledged = workload.stop().await;
    stream.stop().await;
    let summary = verify::exactly_once(&h.app, &h.cluster, &acknowledged).await;
    let conservation = verify::balances_match_model(&h.app, &h.keys, &opening, &acknowledged).await;
    let services = h.services.verify().await;
    let mut text = format!(
        "soak: {} faults in {:.0} s on two ledger instances; {summary}; {resubmitted} calls sent \
         again after UNAVAILABLE; lost 0, doubled 0; {conservation}\n",
        report.len(),
        started.elapsed().as_secs_f64()
    );
    for entry in &report {
        text.push_str(&format!("  {entry}\n"));
    }
    text.push_str(&format!("  {services}\n"));
    if let Some(app) = second {
        app.stop().await;
    }
    h.app.stop().await;
    h.cluster.drop_database().await;
    text
}
