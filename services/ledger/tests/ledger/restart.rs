//! A job in flight when the ledger process is killed completes after a restart, once.

use blindledger_client::LedgerClient;
use blindledger_proto::ledger::v1 as pb;
use futures::StreamExt;
use tokio::process::{Child, Command};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn job_in_flight_survives_a_kill() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (mut first, client) = start_process(&env).await;
    let transfer = transfer_running(&env, &client).await;
    first.start_kill().expect("SIGKILL delivered");
    first.wait().await.expect("killed process reaped");

    let (mut second, client) = start_process(&env).await;
    let done = client.wait_job(&transfer).await.unwrap();
    assert_eq!(done.state(), pb::JobState::Committed);
    assert_eq!(
        done.attempts, 2,
        "claimed once before the kill and once after"
    );
    assert_transferred_once(&env, &client).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

/// What an orchestrator does: SIGTERM, then wait. The process drains (no new calls, workers
/// stopped) and exits 0 well before a kubelet's 30 s grace period ends.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_process_gracefully() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (mut child, client) = start_process(&env).await;
    client
        .register_keys("acme", "local", WIDTH, &env.keys, |_, _| {})
        .await
        .unwrap();
    let pid = child.id().expect("running").to_string();
    let started = std::time::Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("exits within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    println!("stopped {:?} after SIGTERM", started.elapsed());
    // The port is closed: the next call cannot reach it.
    assert!(client.tenant("acme").await.is_err());
}

/// A job whose computation takes its instance down every time (killed here) is failed
/// once it was claimed more than `max_attempts` times, instead of taking down every next
/// instance; the balances are untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_kills_every_worker_is_failed_after_max_attempts() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let one_attempt = [("BLINDLEDGER_LEDGER_MAX_ATTEMPTS", "1")];
    let (mut first, client) = start_process_with(&env, &one_attempt).await;
    let transfer = transfer_running(&env, &client).await;
    first.start_kill().expect("SIGKILL delivered");
    first.wait().await.expect("killed process reaped");

    let (mut second, client) = start_process_with(&env, &one_attempt).await;
    let done = client.wait_job(&transfer).await.unwrap();
    assert_eq!(done.state(), pb::JobState::Failed);
    assert!(
        done.failure_reason.contains("max_attempts"),
        "{}",
        done.failure_reason
    );
    assert_balances(&env, &client, 100, 0).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

/// Opens alice (100 deposited) and bob, submits a transfer of 30 and returns once a worker
/// computes it.
async fn transfer_running(env: &TestEnv, client: &LedgerClient) -> String {
    client
        .register_keys("acme", "local", WIDTH, &env.keys, |_, _| {})
        .await
        .unwrap();
    for account in ["alice", "bob"] {
        client.open_account("acme", account, None).await.unwrap();
    }
    let deposit = client
        .deposit("acme", "alice", encrypt(&env.keys, 100), &key())
        .await
        .unwrap();
    assert_eq!(
        client.wait_job(&deposit.id).await.unwrap().state(),
        pb::JobState::Committed
    );
    let transfer = client
        .transfer("acme", "alice", "bob", encrypt(&env.keys, 30), &key())
        .await
        .unwrap();
    let mut states = Box::pin(client.watch_job(&transfer.id).await.unwrap());
    while let Some(job) = states.next().await {
        if job.unwrap().state() == pb::JobState::Running {
            break;
        }
    }
    transfer.id
}

/// Sends SIGTERM and waits for a clean exit; returns how long the process took to drain.
async fn terminate(child: &mut Child) -> std::time::Duration {
    let pid = child.id().expect("running").to_string();
    let started = std::time::Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("exits within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    started.elapsed()
}

/// Asserts alice holds 70 and bob 30: the transfer applied exactly once.
async fn assert_transferred_once(env: &TestEnv, client: &LedgerClient) {
    assert_balances(env, client, 70, 30).await;
}

/// Asserts alice's and bob's balances, decrypted.
async fn assert_balances(env: &TestEnv, client: &LedgerClient, alice: u64, bob: u64) {
    let ck = &env.keys.client_key;
    let (width, alice_ct, _) = client.balance("acme", "alice").await.unwrap();
    let (_, bob_ct, _) = client.balance("acme", "bob").await.unwrap();
    let decrypt = |ct| blindledger_keyholder::decrypt_value(ck, width, ct).unwrap();
    assert_eq!(decrypt(&alice_ct), alice, "alice");
    assert_eq!(
        decrypt(&bob_ct),
        bob,
        "bob: applied exactly once, or not at all"
    );
}

/// SIGTERM while a transfer computes: the instance takes no new work but finishes the job
/// it holds within its grace period, then exits 0; the transfer is committed once, by it.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_job_finish() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (mut first, client) = start_process(&env).await;
    let transfer = transfer_running(&env, &client).await;
    let drained = terminate(&mut first).await;
    println!("drained in {drained:?} with a transfer running");

    // Another instance finds the job already committed, on its first claim.
    let (mut second, client) =
        start_process_with(&env, &[("BLINDLEDGER_LEDGER_WORKERS", "0")]).await;
    let done = client.job(&transfer, false).await.unwrap();
    assert_eq!(
        done.state(),
        pb::JobState::Committed,
        "finished before exiting"
    );
    assert_eq!(done.attempts, 1, "by the instance that was stopped");
    assert_transferred_once(&env, &client).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

/// SIGTERM with a grace period shorter than the job: the job is released at once, so the
/// next instance computes it without waiting out the lease (ten minutes here), once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_past_the_grace_period_releases_the_running_job() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let long_lease = [
        ("BLINDLEDGER_LEDGER_LEASE_MS", "600000"),
        ("BLINDLEDGER_LEDGER_SHUTDOWN_GRACE_MS", "0"),
    ];
    let (mut first, client) = start_process_with(&env, &long_lease).await;
    let transfer = transfer_running(&env, &client).await;
    let drained = terminate(&mut first).await;
    println!("stopped in {drained:?} past a zero grace period");

    let (mut second, client) = start_process_with(&env, &long_lease).await;
    let done = client.wait_job(&transfer).await.unwrap();
    assert_eq!(done.state(), pb::JobState::Committed);
    assert_eq!(
        done.attempts, 2,
        "released by the first, claimed again by the second"
    );
    assert_transferred_once(&env, &client).await;
    second.start_kill().unwrap();
    second.wait().await.unwrap();
}

/// The bundles loaded at start-up are on `/metrics` from the first scrape: the gauge the
/// "risk bundle missing" alert reads is recorded after the exporter is installed.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_bundles_are_on_metrics_from_the_start() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (mut child, _client, metrics) = start_process_metered(&env, &[]).await;
    let scraped = http_get(&format!("http://{metrics}/metrics")).await;
    assert!(
        scraped.contains("blindledger_policy_bundle_info{bundle=\"blindledger\""),
        "{scraped}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// A plain HTTP GET's body.
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let (host, path) = address.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

#[test]
fn every_service_binary_answers_help() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindledger-ledger"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for expected in ["--config", "--version", "database_url", "SIGTERM"] {
        assert!(help.contains(expected), "{expected} in {help}");
    }
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_blindledger-ledger"))
        .arg("--confg")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2), "a usage error");
}

#[test]
fn a_variable_of_the_former_shared_prefix_stops_the_ledger_before_it_opens_anything() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("ledger.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindledger-ledger"))
        .current_dir(dir.path())
        .env(
            "BLINDLEDGER_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        )
        .env("BLINDLEDGER_LEDGER_LISTEN_ADDR", "127.0.0.1:0")
        .env("BLINDLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("BLINDLEDGER_DATABASE_URL is no longer read")
            && stderr.contains("set BLINDLEDGER_LEDGER_DATABASE_URL instead"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was bound: {:?}", out.stdout);
    // Neither the database the old variable names nor the default one was created.
    assert!(!database.exists());
    assert!(!dir.path().join("data").exists());
}
