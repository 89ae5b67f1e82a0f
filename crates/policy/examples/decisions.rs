//! Times decisions of a policy directory on the benches' realistic input: a teller's
//! transfer on a high-risk account (obligations apply). For tuning a policy without
//! criterion; under `valgrind --tool=callgrind` its instruction counts are repeatable
//! whatever else the machine is doing.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/examples/decisions policies 20000
//! ```

use std::time::Instant;

use blindledger_policy::{Bundle, PolicyEngine};
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
    let started = Instant::now();
    for _ in 0..runs {
        engine.decide(&input)?;
    }
    let per = started.elapsed() / runs;
    println!("{runs} decisions, {:.1} µs each", per.as_secs_f64() * 1e6);
    Ok(())
}
