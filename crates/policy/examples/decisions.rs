//! Times decisions of a policy directory on the benches' realistic input: a teller's
//! transfer on a high-risk account (obligations apply). Prints the mean, p50 and p99 of
//! each call timed alone (criterion reports means only), for the engine's evaluator and
//! for the interpreter. Under `valgrind --tool=callgrind` its instruction counts are
//! repeatable whatever else the machine is doing.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/examples/decisions policies 20000
//! ```

use std::time::Instant;

use blindledger_policy::{Bundle, Decision, PolicyEngine, PolicyError};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "policies".into());
    let runs: u32 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let policy = Bundle::from_dir("blindledger", std::path::Path::new(&dir), "tune")?;
    let mut risk = Bundle::new("risk");
    risk.insert_file(
        ".manifest",
        br#"{"revision": "r1", "roots": ["risk"]}"#.to_vec(),
    )?;
    let data = json!({
        "tiers": {"acme/alice": "high", "acme/bob": "low"},
        "limits": {"high": {"max_amount": 10000, "window_limit": 50000, "window_seconds": 86400}},
        "frozen": {"acme/carol": {"since": 1}}
    });
    risk.insert_file("risk/data.json", data.to_string().into_bytes())?;
    let input = json!({
        "principal": "tom",
        "roles": ["teller"],
        "tenant_claims": ["acme"],
        "method": "/blindledger.ledger.v1.LedgerService/Transfer",
        "resource": {"tenant": "acme", "account": "alice", "region": "eu-west"},
        "context": {"service_region": "eu-west", "time": "2026-11-21T10:00:00Z"}
    });
    let engine = PolicyEngine::build(&[policy, risk], &input)?;
    let decision = engine.decide(&input)?;
    println!("decision: {}", decision.result);
    println!("evaluator: {}", engine.evaluator());
    time(&format!("decide ({})", engine.evaluator()), runs, || {
        engine.decide(&input)
    })?;
    time("decide_interpreted", runs, || {
        engine.decide_interpreted(&input)
    })?;
    Ok(())
}

/// Times `runs` calls one by one and prints their mean, p50 and p99.
fn time(
    label: &str,
    runs: u32,
    decide: impl Fn() -> Result<Decision, PolicyError>,
) -> Result<(), PolicyError> {
    let mut micros = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let started = Instant::now();
        decide()?;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    println!(
        "{label}: {runs} decisions, mean {mean:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        at(0.5),
        at(0.99)
    );
    Ok(())
}
