//! End-to-end load generator: runs a ledger in-process (SQLite by default, or the database
//! given with `--database-url`, which may list the nodes of a Galera cluster), registers a
//! tenant, and sends confidential transfers through gRPC, the job queue and the database
//! from `--accounts` clients at once, each on its own pair of accounts and each waiting for
//! its transfer to commit before sending the next.
//!
//! In the same run it measures what the machine can do at most: its rate of independent
//! single-block programmable bootstraps (PBS) with every core busy, and the PBS and the raw
//! time of one transfer job called directly (expand, decompressions, operation,
//! compression). It prints transfers per second, p50/p99 job latency, PBS per transfer job,
//! end-to-end time over raw time, and the throughput ratio
//! `transfers/s ÷ (machine PBS/s ÷ PBS per transfer job)`: 1.0 is a ledger that does
//! nothing but the bootstraps its jobs need.
//!
//! `--baseline` runs the same load a second time on a ledger without the decompressed
//! balance cache and with one job at a time, as the ledger ran before both existed.
//! `--queued` has each client queue all its transfers at once (so that jobs on its two
//! accounts wait in line and run as chains) and runs the load again with every job
//! computed and committed alone.
//!
//! `--backend gpu` (a build with the `gpu` feature) runs the ledger and the raw job on
//! NVIDIA GPUs and measures the GPUs' bootstrap rate. tfhe counts CPU bootstraps only, so
//! on a GPU the bootstraps of jobs read 0 and the throughput ratio is not printed.

use std::time::{Duration, Instant};

use anyhow::Context;
use blindledger_benches::count_pbs;
use blindledger_client::{LedgerClient, TransferLimits as PbLimits};
use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::{wire, FheBackend, LedgerWidth, ServerKeyHandle};
use blindledger_keyholder::TenantKeys;
use blindledger_ledger::dev::DevCredentials;
use blindledger_ledger::{Application, LedgerConfig};
use clap::Parser;
use rayon::prelude::*;
use secrecy::SecretString;
use tfhe::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "BlindLedger end-to-end load generator")]
struct Args {
    /// Transfers to send, all clients together.
    #[arg(long, default_value_t = 10)]
    transfers: usize,
    /// Ledger width in bits (32 or 64).
    #[arg(long, default_value_t = 64)]
    width: u32,
    /// Database URL; a temporary SQLite file when unset.
    #[arg(long)]
    database_url: Option<String>,
    /// Independent account pairs, each with its own client sending one transfer at a time.
    #[arg(long, alias = "concurrency", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    accounts: u32,
    /// Open the accounts with a max amount and a daily outflow limit.
    #[arg(long)]
    limits: bool,
    /// Jobs computed at once by the ledger (`fhe_parallel_jobs`; 0: the ledger's default).
    #[arg(long, default_value_t = 0)]
    parallel_jobs: usize,
    /// Also run the same load without the balance cache and one job at a time.
    #[arg(long)]
    baseline: bool,
    /// Each client queues all its transfers at once, then waits for them; the same load
    /// then runs again with every job computed and committed alone (`chain_jobs = 1`).
    #[arg(long)]
    queued: bool,
    /// Most jobs computed as one chain (`chain_jobs`; 0: the ledger's default).
    #[arg(long, default_value_t = 0)]
    chain_jobs: usize,
    /// Then date the transfers back over this many days and ten more, and time aggregates
    /// of one account over the last this many days: the first folds running totals, the
    /// next ones read them.
    #[arg(long)]
    aggregate_days: Option<u32>,
    /// Where the ledger computes: `cpu`, or `gpu` (a build with the `gpu` feature).
    #[arg(long, default_value_t = FheBackend::Cpu)]
    backend: FheBackend,
}

/// Max amount and window limit of accounts opened with `--limits`: the window limit fits
/// 32 bits, so its allowance is counted on 32 bits.
const MAX_AMOUNT: u64 = 1_000;
const WINDOW_LIMIT: u64 = 1_000_000;

/// What one run of the load measured.
struct Phase {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    pbs: u64,
    lanes: usize,
    chain_jobs: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let width = LedgerWidth::from_bits(args.width).context("width must be 32 or 64")?;
    let keys = std::sync::Arc::new(
        tokio::task::spawn_blocking(blindledger_test_support::TestKeys::load_or_generate).await??,
    );
    let machine = {
        let (keys, backend) = (keys.clone(), args.backend);
        tokio::task::spawn_blocking(move || machine_rate(&keys, backend)).await??
    };
    // Measured before any ledger runs, on the otherwise idle machine.
    let raw = {
        let keys = keys.clone();
        let (limits, backend) = (args.limits, args.backend);
        tokio::task::spawn_blocking(move || raw_job(&keys, width, limits, backend)).await??
    };

    let chain_jobs = match args.chain_jobs {
        0 => LedgerConfig::default().chain_jobs,
        n => n,
    };
    let mut phases = vec![
        run_phase(
            &args,
            &keys,
            width,
            "cached, parallel",
            Ledger {
                cache_mib: 256,
                parallel_jobs: args.parallel_jobs,
                chain_jobs,
            },
        )
        .await?,
    ];
    if args.queued {
        let alone = Ledger {
            cache_mib: 256,
            parallel_jobs: args.parallel_jobs,
            chain_jobs: 1,
        };
        phases.push(run_phase(&args, &keys, width, "cached, each job alone", alone).await?);
    }
    if args.baseline {
        let former = Ledger {
            cache_mib: 0,
            parallel_jobs: 1,
            chain_jobs: 1,
        };
        phases.push(run_phase(&args, &keys, width, "no cache, one job at a time", former).await?);
    }
    report(&args, machine, &raw, &mut phases);
    Ok(())
}

/// How the ledger of a phase runs.
struct Ledger {
    /// `balance_cache_mib`.
    cache_mib: usize,
    /// `fhe_parallel_jobs`.
    parallel_jobs: usize,
    /// `chain_jobs`.
    chain_jobs: usize,
}

async fn run_phase(
    args: &Args,
    keys: &std::sync::Arc<TenantKeys>,
    width: LedgerWidth,
    name: &'static str,
    ledger: Ledger,
) -> anyhow::Result<Phase> {
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
        balance_cache_mib: ledger.cache_mib,
        fhe_parallel_jobs: ledger.parallel_jobs,
        chain_jobs: ledger.chain_jobs,
        fhe_backend: args.backend,
        ..LedgerConfig::default()
    };
    // The real gate: signed tokens and the shipped policy, so its cost is in the figures.
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let credentials = DevCredentials::provision(&dir.path().join("dev"), &policies, "loadgen")?;
    credentials.configure(&mut config);
    let token = credentials.token("loadgen", &["admin"], &[], Duration::from_secs(86_400))?;
    let app = Application::build(config).await?;
    let lanes = app.ledger().fhe_lanes();
    let client = LedgerClient::connect(&format!("http://{}", app.grpc_addr()))
        .await?
        .with_token(&token)?;
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let tenant = format!("load-{}", uuid::Uuid::new_v4().simple());
    client
        .register_keys(&tenant, "local", width, keys, |_, _| {})
        .await?;
    let clients = args.accounts as usize;
    let limits = args.limits.then_some(PbLimits {
        max_amount: MAX_AMOUNT,
        window_limit: WINDOW_LIMIT,
        window_seconds: 86_400,
    });
    for c in 0..clients {
        for account in [format!("a{c}"), format!("b{c}")] {
            client.open_account(&tenant, &account, limits).await?;
        }
        let deposit = client
            .deposit(
                &tenant,
                &format!("a{c}"),
                encrypt_amount(&keys.public_key, width, 100_000)?,
                &new_key(),
            )
            .await?;
        client.wait_finished(&deposit.id).await?;
    }

    blindledger_fhe::reset_pbs_count();
    let started = Instant::now();
    let mut senders = Vec::new();
    for c in 0..clients {
        let (client, tenant, keys) = (client.clone(), tenant.clone(), keys.clone());
        // Client c sends transfers c, c + clients, c + 2 clients...
        let count = (args.transfers + clients - 1 - c) / clients;
        let queued = args.queued;
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut sent = Vec::with_capacity(count);
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
                sent.push((t0, job.id));
                if !queued {
                    for (t0, id) in sent.drain(..) {
                        client.wait_finished(&id).await?;
                        latencies.push(t0.elapsed());
                    }
                }
            }
            // Queued: in submission order, each measured from its own submission.
            for (t0, id) in sent {
                client.wait_finished(&id).await?;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(args.transfers);
    for sender in senders {
        latencies.extend(sender.await??);
    }
    let wall = started.elapsed();
    let pbs = blindledger_fhe::pbs_count();
    if let (Some(days), "cached, parallel") = (args.aggregate_days, name) {
        let url = args
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/ledger.db?mode=rwc", dir.path().display()));
        aggregates(&client, &tenant, &url, days).await?;
    }
    server.abort();
    Ok(Phase {
        name,
        latencies,
        wall,
        pbs,
        lanes,
        chain_jobs: ledger.chain_jobs,
    })
}

/// Dates every committed transfer back, evenly over `days + 10` days, then times
/// aggregates of `a0` over the last `days` days.
async fn aggregates(
    client: &LedgerClient,
    tenant: &str,
    url: &str,
    days: u32,
) -> anyhow::Result<()> {
    const DAY_MS: i64 = 86_400_000;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await?;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM jobs WHERE tenant = ? AND kind = 'transfer' AND state = 'COMMITTED' ORDER BY seq",
    )
    .bind(tenant)
    .fetch_all(&pool)
    .await?;
    let now = blindledger_store::now_ms();
    let span = i64::from(days + 10) * DAY_MS;
    for (i, (id,)) in ids.iter().enumerate() {
        let age = span - span * i as i64 / ids.len().max(1) as i64;
        sqlx::query("UPDATE jobs SET committed_at = ? WHERE id = ?")
            .bind(now - age)
            .bind(id)
            .execute(&pool)
            .await?;
    }
    let in_period = ids.len() as i64 * i64::from(days) / i64::from(days + 10);
    println!(
        "aggregate of a0 over {days} days: {} transfers dated over {} days, about {in_period} of them in the period",
        ids.len(),
        days + 10
    );
    for run in [
        "first (folds totals)",
        "second (reads totals)",
        "third (reads totals)",
    ] {
        let to = std::time::SystemTime::now() + Duration::from_secs(60);
        let from = to - Duration::from_secs(u64::from(days) * 86_400 + 60);
        blindledger_fhe::reset_pbs_count();
        let t0 = Instant::now();
        let job = client
            .aggregate(tenant, "a0", from, to, 5, &new_key())
            .await?;
        let done = client.wait_finished(&job.id).await?;
        anyhow::ensure!(
            done.state() == blindledger_client::JobState::Committed,
            "aggregate failed: {}",
            done.failure_reason
        );
        println!(
            "  {run}: {:.3} s, {} PBS",
            t0.elapsed().as_secs_f64(),
            blindledger_fhe::pbs_count()
        );
    }
    Ok(())
}

/// The machine's bootstrap rate on `backend`: on GPUs, see
/// `blindledger_benches::gpu::bootstrap_rate`.
fn machine_rate(keys: &TenantKeys, backend: FheBackend) -> anyhow::Result<f64> {
    match backend {
        FheBackend::Cpu => Ok(bootstrap_rate(keys)),
        #[cfg(feature = "gpu")]
        FheBackend::Gpu => {
            blindledger_benches::gpu::bootstrap_rate(&keys.client_key, &keys.server_key)
                .ok_or_else(|| blindledger_fhe::BackendError::NoGpu.into())
        }
        #[cfg(not(feature = "gpu"))]
        FheBackend::Gpu => Err(blindledger_fhe::BackendError::GpuNotBuilt.into()),
    }
}

/// The machine's bootstrap rate: independent single-block bootstraps (one-block boolean
/// ANDs) spread over every core, as many as take a few seconds.
fn bootstrap_rate(keys: &TenantKeys) -> f64 {
    let server_key = keys.server_key.decompress();
    rayon::broadcast(|_| tfhe::set_server_key(server_key.clone()));
    tfhe::set_server_key(server_key);
    let bits: Vec<tfhe::FheBool> = (0..64)
        .map(|i| tfhe::FheBool::encrypt(i % 3 == 0, &keys.client_key))
        .collect();
    let rounds = 8 * rayon::current_num_threads().max(1);
    // The best of three samples: what the machine can do when nothing else runs.
    (0..3)
        .map(|_| {
            let (elapsed, pbs) = count_pbs(|| {
                let t0 = Instant::now();
                (0..rounds).into_par_iter().for_each(|round| {
                    for pair in bits.chunks(2) {
                        let _ = std::hint::black_box(&pair[0] & &pair[(round + 1) % 2]);
                    }
                });
                t0.elapsed()
            });
            pbs as f64 / elapsed.as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// One transfer job called directly: what each part costs in bootstraps and time.
struct RawJob {
    expand: (u64, Duration),
    decompress: (u64, Duration),
    operation: (u64, Duration),
    compress: Duration,
}

impl RawJob {
    /// A job whose balances are cached: no decompression.
    fn cached(&self) -> (u64, Duration) {
        (
            self.expand.0 + self.operation.0,
            self.expand.1 + self.operation.1 + self.compress,
        )
    }

    fn uncached(&self) -> (u64, Duration) {
        let (pbs, time) = self.cached();
        (pbs + self.decompress.0, time + self.decompress.1)
    }
}

/// Runs a transfer job's FHE work directly, three times, on balances that are real
/// encryptions (not the trivial zero of a new account), and keeps the mean.
fn raw_job(
    keys: &TenantKeys,
    width: LedgerWidth,
    limits: bool,
    backend: FheBackend,
) -> anyhow::Result<RawJob> {
    let server_key = ServerKeyHandle::decompress_on(backend, "loadgen", &keys.server_key)?;
    rayon::broadcast(|_| server_key.install());
    server_key.install();
    let expand = |clear: u64| -> anyhow::Result<Value> {
        let wire = encrypt_amount(&keys.public_key, width, clear)?;
        Ok(Value::expand(&wire::decode_amount(&wire, width)?, width)?)
    };
    let from = expand(100_000)?.compress()?;
    let to = expand(0)?.compress()?;
    let transfer_limits = TransferLimits {
        max_amount: limits.then_some(MAX_AMOUNT),
        window_limit: limits.then_some(WINDOW_LIMIT),
    };
    let allowance = limits
        .then(|| ops::fresh_allowance(width, WINDOW_LIMIT).compress())
        .transpose()?;
    const RUNS: u32 = 3;
    // One run first to warm allocations and caches, not counted.
    let amount = encrypt_amount(&keys.public_key, width, 10)?;
    let warm = Value::expand(&wire::decode_amount(&amount, width)?, width)?;
    let (f, t) = (
        Value::decompress(&from, width)?,
        Value::decompress(&to, width)?,
    );
    let remaining = allowance
        .as_ref()
        .map(|a| Value::decompress(a, ops::allowance_width(width, WINDOW_LIMIT)))
        .transpose()?;
    ops::movement(&f, Some(&t), &warm, transfer_limits, remaining.as_ref())?;
    let mut job = RawJob {
        expand: (0, Duration::ZERO),
        decompress: (0, Duration::ZERO),
        operation: (0, Duration::ZERO),
        compress: Duration::ZERO,
    };
    let timed = |slot: &mut (u64, Duration), pbs: u64, t: Duration| {
        slot.0 = pbs;
        slot.1 += t / RUNS;
    };
    for _ in 0..RUNS {
        let amount = encrypt_amount(&keys.public_key, width, 10)?;
        let t0 = Instant::now();
        let (amount, pbs) =
            count_pbs(|| Value::expand(&wire::decode_amount(&amount, width)?, width));
        timed(&mut job.expand, pbs, t0.elapsed());
        let t0 = Instant::now();
        let (values, pbs) = count_pbs(|| -> anyhow::Result<_> {
            let remaining = allowance
                .as_ref()
                .map(|a| Value::decompress(a, ops::allowance_width(width, WINDOW_LIMIT)))
                .transpose()?;
            Ok((
                Value::decompress(&from, width)?,
                Value::decompress(&to, width)?,
                remaining,
            ))
        });
        let (f, t, remaining) = values?;
        timed(&mut job.decompress, pbs, t0.elapsed());
        let t0 = Instant::now();
        let (moved, pbs) = count_pbs(|| {
            ops::movement(&f, Some(&t), &amount?, transfer_limits, remaining.as_ref())
        });
        let moved = moved?;
        timed(&mut job.operation, pbs, t0.elapsed());
        let t0 = Instant::now();
        moved.from.compress()?;
        moved.to.as_ref().map(Value::compress).transpose()?;
        moved.moved.compress()?;
        moved
            .window_remaining
            .as_ref()
            .map(Value::compress)
            .transpose()?;
        ops::compress_flag(&moved.ok)?;
        job.compress += t0.elapsed() / RUNS;
    }
    Ok(job)
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn report(args: &Args, machine_pbs: f64, raw: &RawJob, phases: &mut [Phase]) {
    println!(
        "load: {} transfers, u{}, {} account pair(s), {}, {}",
        args.transfers,
        args.width,
        args.accounts,
        if args.limits {
            "max amount and window limit"
        } else {
            "no limits"
        },
        if args.queued {
            "each client's transfers queued at once"
        } else {
            "one transfer at a time per client"
        }
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match args.backend {
        FheBackend::Cpu => {
            println!("machine: {cores} cores, {machine_pbs:.1} independent bootstraps/s")
        }
        FheBackend::Gpu => println!(
            "machine: {machine_pbs:.1} bootstraps/s on the GPUs (64-bit ANDs, 32 bootstraps \
             each); tfhe counts CPU bootstraps only: the PBS figures below read 0 on a GPU"
        ),
    }
    println!(
        "raw transfer job: expand {} PBS {:.3} s, decompress {} PBS {:.3} s, operation {} PBS {:.3} s, compress {:.3} s",
        raw.expand.0,
        raw.expand.1.as_secs_f64(),
        raw.decompress.0,
        raw.decompress.1.as_secs_f64(),
        raw.operation.0,
        raw.operation.1.as_secs_f64(),
        raw.compress.as_secs_f64()
    );
    for phase in phases.iter_mut() {
        let latencies = &mut phase.latencies;
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
        let per_second = latencies.len() as f64 / phase.wall.as_secs_f64();
        let pbs_per_job = phase.pbs as f64 / latencies.len().max(1) as f64;
        // The raw job of the same kind: without decompression where the balances are
        // cached (every job after an account's first).
        let raw = if phase.name.starts_with("cached") {
            raw.cached()
        } else {
            raw.uncached()
        };
        println!(
            "-- {} ({} job(s) at once, chains of up to {} job(s))",
            phase.name, phase.lanes, phase.chain_jobs
        );
        println!(
            "transfers/s: {per_second:.3} (wall time {:.1} s)",
            phase.wall.as_secs_f64()
        );
        println!(
            "job latency p50: {:.3} s, p99: {:.3} s, mean: {:.3} s",
            pct(0.5).as_secs_f64(),
            pct(0.99).as_secs_f64(),
            mean.as_secs_f64()
        );
        println!(
            "PBS per transfer job: {pbs_per_job:.1} measured (raw job of this kind: {} PBS, {:.3} s)",
            raw.0,
            raw.1.as_secs_f64()
        );
        println!(
            "end-to-end / raw: {:.3}",
            mean.as_secs_f64() / raw.1.as_secs_f64()
        );
        if args.backend == FheBackend::Cpu {
            println!(
                "throughput ratio: {:.3} (transfers/s / (machine PBS/s / PBS per job))",
                per_second / (machine_pbs / pbs_per_job)
            );
        }
    }
}
