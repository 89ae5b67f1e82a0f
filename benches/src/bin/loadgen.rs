//! End-to-end load generator: runs a ledger in-process (SQLite by default, or the database
//! given with `--database-url`, which may list the nodes of a Galera cluster), registers a
//! tenant, and sends confidential transfers through gRPC and the database: one after the
//! other, or from `--concurrency` clients at once, each on its own pair of accounts. Reports transfers per second, p50/p99 job
//! latency, and the ratio of end-to-end time to the raw FHE compute of the same
//! operations (expand the amount, decompress two balances, transfer, compress results),
//! measured on the same machine in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use blindledger_client::LedgerClient;
use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::{wire, LedgerWidth};
use blindledger_keyholder::TenantKeys;
use blindledger_ledger::dev::DevCredentials;
use blindledger_ledger::{Application, LedgerConfig};
use clap::Parser;
use secrecy::SecretString;

#[derive(Parser, Debug)]
#[command(about = "BlindLedger end-to-end load generator")]
struct Args {
    /// Sequential transfers to send.
    #[arg(long, default_value_t = 10)]
    transfers: usize,
    /// Ledger width in bits (32 or 64).
    #[arg(long, default_value_t = 64)]
    width: u32,
    /// Database URL; a temporary SQLite file when unset.
    #[arg(long)]
    database_url: Option<String>,
    /// Clients sending at once, each waiting for its transfer before sending the next.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let width = LedgerWidth::from_bits(args.width).context("width must be 32 or 64")?;
    let keys = std::sync::Arc::new(
        tokio::task::spawn_blocking(blindledger_test_support::TestKeys::load_or_generate).await??,
    );
    let dir = tempfile::tempdir()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display()));
    let mut config = LedgerConfig {
        listen_addr: "127.0.0.1:0".parse()?,
        metrics_addr: None,
        database_url: SecretString::from(url),
        object_store_dir: dir.path().join("objects"),
        ..LedgerConfig::default()
    };
    // The real gate: signed tokens and the shipped policy, so its cost is in the figures.
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let credentials = DevCredentials::provision(&dir.path().join("dev"), &policies, "loadgen")?;
    credentials.configure(&mut config);
    let token = credentials.token("loadgen", &["admin"], &[], Duration::from_secs(86_400))?;
    let app = Application::build(config).await?;
    let client = LedgerClient::connect(&format!("http://{}", app.grpc_addr()))
        .await?
        .with_token(&token)?;
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let tenant = format!("load-{}", uuid::Uuid::new_v4().simple());
    client
        .register_keys(&tenant, "local", width, &keys, |_, _| {})
        .await?;
    let clients = args.concurrency as usize;
    for c in 0..clients {
        for account in [format!("a{c}"), format!("b{c}")] {
            client.open_account(&tenant, &account, None).await?;
        }
        let deposit = client
            .deposit(
                &tenant,
                &format!("a{c}"),
                encrypt_amount(&keys.public_key, width, 1_000_000)?,
                &new_key(),
            )
            .await?;
        client.wait_finished(&deposit.id).await?;
    }

    let started = Instant::now();
    let mut senders = Vec::new();
    for c in 0..clients {
        let (client, tenant, keys) = (client.clone(), tenant.clone(), keys.clone());
        // Client c sends transfers c, c + clients, c + 2 clients...
        let count = (args.transfers + clients - 1 - c) / clients;
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for i in 0..count {
                let (from, to) = if i % 2 == 0 { ("a", "b") } else { ("b", "a") };
                let amount = encrypt_amount(&keys.public_key, width, 10)?;
                let t0 = Instant::now();
                let job = client
                    .transfer(
                        &tenant,
                        &format!("{from}{c}"),
                        &format!("{to}{c}"),
                        amount,
                        &new_key(),
                    )
                    .await?;
                client.wait_finished(&job.id).await?;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(args.transfers);
    for sender in senders {
        latencies.extend(sender.await??);
    }
    let total = started.elapsed();
    let raw = raw_compute(&keys, width, args.transfers.min(5))?;
    report(&args, &mut latencies, total, raw);
    server.abort();
    Ok(())
}

/// Mean time of the same FHE operations a transfer job runs, called directly.
fn raw_compute(keys: &TenantKeys, width: LedgerWidth, runs: usize) -> anyhow::Result<Duration> {
    let server_key = keys.server_key.decompress();
    rayon::broadcast(|_| tfhe::set_server_key(server_key.clone()));
    tfhe::set_server_key(server_key);
    let from = Value::zero(width).compress()?;
    let to = Value::zero(width).compress()?;
    let mut total = Duration::ZERO;
    for _ in 0..runs.max(1) {
        let amount = encrypt_amount(&keys.public_key, width, 10)?;
        let t0 = Instant::now();
        let list = wire::decode_amount(&amount, width)?;
        let amount = Value::expand(&list, width)?;
        let (f, t) = (
            Value::decompress(&from, width)?,
            Value::decompress(&to, width)?,
        );
        let m = ops::movement(&f, Some(&t), &amount, TransferLimits::default(), None)?;
        m.from.compress()?;
        m.to.as_ref().map(Value::compress).transpose()?;
        m.moved.compress()?;
        ops::compress_flag(&m.ok)?;
        total += t0.elapsed();
    }
    Ok(total / runs.max(1) as u32)
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn report(args: &Args, latencies: &mut [Duration], total: Duration, raw: Duration) {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
    println!(
        "transfers: {} (u{}, {} client(s), each sequential)",
        latencies.len(),
        args.width,
        args.concurrency
    );
    println!(
        "transfers/s: {:.3} (wall time {:.1} s)",
        latencies.len() as f64 / total.as_secs_f64(),
        total.as_secs_f64()
    );
    println!(
        "job latency p50: {:.3} s, p99: {:.3} s, mean: {:.3} s",
        pct(0.5).as_secs_f64(),
        pct(0.99).as_secs_f64(),
        mean.as_secs_f64()
    );
    println!(
        "raw FHE compute per transfer (expand, 2 decompress, transfer, 4 compress): {:.3} s",
        raw.as_secs_f64()
    );
    println!(
        "end-to-end / raw compute: {:.3}",
        mean.as_secs_f64() / raw.as_secs_f64()
    );
}
