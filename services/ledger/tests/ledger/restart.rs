//! A job in flight when the ledger process is killed completes after a restart, once.

use std::process::Stdio;

use blindledger_client::LedgerClient;
use blindledger_proto::ledger::v1 as pb;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

/// Starts `blindledger-ledger` as a process and returns it once it listens.
async fn start_process(env: &TestEnv) -> (Child, LedgerClient) {
    // Keys and bundle paths come from a config file, the rest from the environment.
    let config_file = env.objects.path().join("ledger.toml");
    std::fs::write(&config_file, toml::to_string(&env.config()).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_blindledger-ledger"))
        .arg("--config")
        .arg(&config_file)
        .env("BLINDLEDGER_LISTEN_ADDR", "127.0.0.1:0")
        .env("BLINDLEDGER_METRICS_ADDR", "127.0.0.1:0")
        .env("BLINDLEDGER_DATABASE_URL", env.db.url())
        .env("BLINDLEDGER_OBJECT_STORE_DIR", env.objects.path())
        .env("BLINDLEDGER_LEASE_MS", "2000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ledger binary starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next_line()
            .await
            .expect("stdout readable")
            .expect("ledger printed its address");
        if let Some(addr) = line.strip_prefix("listening ") {
            break addr.to_string();
        }
    };
    let client = LedgerClient::connect(&format!("http://{addr}"))
        .await
        .expect("client connects")
        .with_token(&env.admin_token())
        .unwrap();
    (child, client)
}

#[tokio::test(flavor = "multi_thread")]
async fn job_in_flight_survives_a_kill() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let (mut first, client) = start_process(&env).await;
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
    first.start_kill().expect("SIGKILL delivered");
    first.wait().await.expect("killed process reaped");

    let (mut second, client) = start_process(&env).await;
    let done = client.wait_job(&transfer.id).await.unwrap();
    assert_eq!(done.state(), pb::JobState::Committed);
    assert_eq!(
        done.attempts, 2,
        "claimed once before the kill and once after"
    );
    let (width, alice, _) = client.balance("acme", "alice").await.unwrap();
    let (_, bob, _) = client.balance("acme", "bob").await.unwrap();
    let ck = &env.keys.client_key;
    assert_eq!(
        blindledger_keyholder::decrypt_value(ck, width, &alice).unwrap(),
        70
    );
    assert_eq!(
        blindledger_keyholder::decrypt_value(ck, width, &bob).unwrap(),
        30,
        "applied exactly once"
    );
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
