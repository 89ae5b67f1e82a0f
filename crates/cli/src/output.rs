//! What the CLI prints. Only plaintext the user is entitled to reaches here: job
//! metadata, and amounts this CLI decrypted with the user's own key. Never a key.

use std::sync::OnceLock;
use std::time::SystemTime;

use blindledger_client::proto::prost_types::Timestamp;
use blindledger_client::{Job, JobKind, JobState, Transfer, TransferLimits};

use serde_json::{json, Value};

use crate::amount::Amount;
use crate::decrypt::Decrypted;

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document per result on stdout (JSON lines for streams); errors as a JSON
    /// object on stderr.
    Json,
}

/// The process's output format, set once from `--output` before any verb runs.
static FORMAT: OnceLock<Format> = OnceLock::new();

/// Sets the output format; the first call wins.
pub fn set_format(format: Format) {
    let _ = FORMAT.set(format);
}

/// Whether results are printed as JSON.
pub fn json() -> bool {
    FORMAT.get() == Some(&Format::Json)
}

/// Prints one result: `value` as one line of JSON under `--output json`, else `text`.
pub fn emit(value: Value, text: impl FnOnce()) {
    if json() {
        println!("{value}");
    } else {
        text();
    }
}

/// A job as JSON: every field but its encrypted results.
pub fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id,
        "kind": kind_name(job.kind()),
        "state": state_name(job.state()),
        "tenant": job.tenant,
        "accounts": job.accounts,
        "attempts": job.attempts,
        "created_at": timestamp_json(job.created_at.as_ref()),
        "updated_at": timestamp_json(job.updated_at.as_ref()),
        "failure_reason": (!job.failure_reason.is_empty()).then_some(&job.failure_reason),
    })
}

/// Decrypted results as JSON; amounts as exact decimal strings.
pub fn decrypted_json(result: &Decrypted) -> Value {
    match result {
        Decrypted::Movement { moved, applied } => json!({
            "moved": moved.to_string(),
            "applied": applied,
        }),
        Decrypted::Aggregate {
            sum_out,
            sum_in,
            count_above,
            transfers,
        } => json!({
            "sum_out": sum_out.to_string(),
            "sum_in": sum_in.to_string(),
            "count_above": count_above,
            "transfers": transfers,
        }),
    }
}

/// An account's transfer limits as JSON (`null` when none).
pub fn limits_json(limits: Option<&TransferLimits>) -> Value {
    match limits.filter(|l| l.max_amount != 0 || l.window_limit != 0) {
        None => Value::Null,
        Some(limits) => json!({
            "max_amount": (limits.max_amount != 0).then(|| Amount(limits.max_amount).to_string()),
            "window_limit": (limits.window_limit != 0).then(|| Amount(limits.window_limit).to_string()),
            "window_seconds": (limits.window_limit != 0).then_some(limits.window_seconds),
        }),
    }
}

/// Transfer metadata as JSON.
pub fn transfers_json(transfers: &[Transfer], more: bool) -> Value {
    let items: Vec<Value> = transfers
        .iter()
        .map(|t| {
            json!({
                "created_at": timestamp_json(t.created_at.as_ref()),
                "state": state_name(t.state()),
                "from": t.from_account,
                "to": t.to_account,
                "job": t.job_id,
            })
        })
        .collect();
    json!({ "transfers": items, "more": more })
}

fn timestamp_json(ts: Option<&Timestamp>) -> Value {
    match timestamp(ts).as_str() {
        "-" => Value::Null,
        text => Value::from(text),
    }
}

/// A job kind in lowercase words.
pub fn kind_name(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Deposit => "deposit",
        JobKind::Withdraw => "withdrawal",
        JobKind::Transfer => "transfer",
        JobKind::Aggregate => "aggregate",
        JobKind::Unspecified => "unknown",
    }
}

/// A job state in lowercase words.
pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Pending => "pending",
        JobState::Running => "running",
        JobState::Committed => "committed",
        JobState::Failed => "failed",
        JobState::Unspecified => "unknown",
    }
}

/// A timestamp as RFC 3339 in UTC, or `-` when absent or out of range.
pub fn timestamp(ts: Option<&Timestamp>) -> String {
    ts.and_then(|ts| SystemTime::try_from(*ts).ok())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_else(|| "-".into())
}

/// Prints a job just queued, with the idempotency key that makes retrying it safe.
pub fn print_queued(job: &Job, idempotency_key: &str) {
    println!(
        "queued {} job {} ({})",
        kind_name(job.kind()),
        job.id,
        state_name(job.state())
    );
    println!("idempotency key: {idempotency_key}");
}

/// Prints every field of a job except its encrypted results.
pub fn print_job(job: &Job) {
    println!("job:       {}", job.id);
    println!("kind:      {}", kind_name(job.kind()));
    println!("state:     {}", state_name(job.state()));
    println!("tenant:    {}", job.tenant);
    println!("accounts:  {}", job.accounts.join(", "));
    println!("attempts:  {}", job.attempts);
    println!("created:   {}", timestamp(job.created_at.as_ref()));
    println!("updated:   {}", timestamp(job.updated_at.as_ref()));
    if !job.failure_reason.is_empty() {
        println!("failure:   {}", job.failure_reason);
    }
}

/// Prints one state transition of a watched job.
pub fn print_transition(job: &Job) {
    let at = timestamp(job.updated_at.as_ref());
    match job.state() {
        JobState::Running => println!("{at} running (attempt {})", job.attempts),
        JobState::Failed => println!("{at} failed: {}", job.failure_reason),
        state => println!("{at} {}", state_name(state)),
    }
}

/// Prints the final state of a job that was waited for.
pub fn print_final(job: &Job) {
    match job.state() {
        JobState::Failed => println!("job {} failed: {}", job.id, job.failure_reason),
        state => println!("job {} {}", job.id, state_name(state)),
    }
}

/// Prints decrypted results.
pub fn print_decrypted(result: &Decrypted) {
    match result {
        Decrypted::Movement { moved, applied } => {
            println!("moved: {moved}");
            println!(
                "applied: {}",
                if *applied {
                    "yes"
                } else {
                    "no (not covered, or over a limit)"
                }
            );
        }
        Decrypted::Aggregate {
            sum_out,
            sum_in,
            count_above,
            transfers,
        } => {
            println!("sum out: {sum_out}");
            println!("sum in: {sum_in}");
            println!("outgoing transfers above the threshold: {count_above}");
            println!("transfers in the period: {transfers}");
        }
    }
}

/// Prints an account's transfer limits.
pub fn print_limits(limits: Option<&TransferLimits>) {
    let Some(limits) = limits.filter(|l| l.max_amount != 0 || l.window_limit != 0) else {
        println!("limits: none");
        return;
    };
    if limits.max_amount != 0 {
        println!("max amount per transfer: {}", Amount(limits.max_amount));
    }
    if limits.window_limit != 0 {
        let window = std::time::Duration::from_secs(limits.window_seconds);
        println!(
            "max total out per {}: {}",
            humantime::format_duration(window),
            Amount(limits.window_limit)
        );
    }
}

/// Prints transfer metadata as a table (amounts are never known here).
pub fn print_transfers(transfers: &[Transfer], more: bool) {
    if transfers.is_empty() {
        println!("no transfers");
        return;
    }
    println!(
        "{:<20}  {:<10}  {:<20}  {:<20}  JOB",
        "CREATED", "STATE", "FROM", "TO"
    );
    for t in transfers {
        println!(
            "{:<20}  {:<10}  {:<20}  {:<20}  {}",
            timestamp(t.created_at.as_ref()),
            state_name(t.state()),
            t.from_account,
            t.to_account,
            t.job_id
        );
    }
    if more {
        println!("(more transfers exist; raise --limit to see them)");
    }
}
