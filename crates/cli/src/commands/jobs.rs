//! `blindledger job get | watch`, and what every verb prints once a job is over.

use std::time::Duration;

use anyhow::Context as _;
use blindledger_client::{is_finished, Job, JobKind, JobState, LedgerClient};
use futures::StreamExt;
use serde_json::{json, Value};

use super::Context;
use crate::decrypt::{decrypt_result, Decrypted};
use crate::exit::JobEnded;
use crate::home::LocalKeys;
use crate::output;

/// `blindledger job ...` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Shows a job; decrypts a committed job's results when the tenant's keys are here.
    Get {
        /// The job id.
        id: String,
    },
    /// Prints a job's state transitions until it finishes, then its outcome.
    Watch {
        /// The job id.
        id: String,
    },
}

/// Options of every verb that queues a job.
#[derive(Debug, clap::Args)]
pub struct JobOptions {
    /// Waits for the job to finish and prints its outcome; exits 5 when it failed.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: gives up waiting after this long (e.g. 30s, 2m) and exits 6; the job
    /// goes on.
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Key making a retry return the original job [default: a new UUID].
    #[arg(long, value_name = "KEY", value_parser = parse_idempotency_key)]
    pub idempotency_key: Option<String>,
}

/// Checks `--idempotency-key` as the ledger does: 1 to 128 printable ASCII characters.
fn parse_idempotency_key(key: &str) -> Result<String, String> {
    if (1..=128).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic()) {
        Ok(key.to_owned())
    } else {
        Err("an idempotency key is 1 to 128 printable ASCII characters, without spaces".into())
    }
}

/// Runs `blindledger job ...`.
pub async fn run(ctx: &Context, command: JobCommand) -> anyhow::Result<()> {
    let client = ctx.connect().await?;
    match command {
        JobCommand::Get { id } => {
            let job = client
                .job(&id, false)
                .await
                .with_context(|| format!("fetching job {id}"))?;
            let results = results(ctx, &client, &job).await?;
            output::emit(
                json!({ "job": output::job_json(&job), "results": results.json() }),
                || {
                    output::print_job(&job);
                    results.print();
                },
            );
            Ok(())
        }
        JobCommand::Watch { id } => watch(ctx, &client, &id).await,
    }
}

/// Prints each transition (state or attempt change) until the job is over; fails when the
/// job failed.
async fn watch(ctx: &Context, client: &LedgerClient, id: &str) -> anyhow::Result<()> {
    let context = || format!("watching job {id}");
    let mut updates = std::pin::pin!(client.watch_job(id).await.with_context(context)?);
    let mut last = None;
    let transition = |job: &Job| {
        output::emit(json!({ "transition": output::job_json(job) }), || {
            output::print_transition(job)
        })
    };
    while let Some(job) = updates.next().await {
        let job = job.with_context(context)?;
        let seen = (job.state(), job.attempts);
        if last != Some(seen) {
            transition(&job);
            last = Some(seen);
        }
        if is_finished(&job) {
            return finish(ctx, client, &job, None, false).await;
        }
    }
    // The ledger ended the stream early (e.g. it restarted): keep waiting quietly.
    let job = client.wait_job(id).await.with_context(context)?;
    transition(&job);
    finish(ctx, client, &job, None, false).await
}

/// Prints a job just queued and, with `--wait`, follows it to its end (a spinner on a
/// terminal meanwhile); fails when the job failed or `--timeout` elapsed.
pub async fn follow(
    ctx: &Context,
    client: &LedgerClient,
    job: Job,
    idempotency_key: &str,
    options: &JobOptions,
) -> anyhow::Result<()> {
    if !options.wait {
        output::emit(
            json!({ "job": output::job_json(&job), "idempotency_key": idempotency_key }),
            || output::print_queued(&job, idempotency_key),
        );
        return Ok(());
    }
    if !output::json() {
        output::print_queued(&job, idempotency_key);
    }
    let spinner = spinner(&job.id);
    let waited = client.wait_job(&job.id);
    let finished = match options.timeout {
        Some(limit) => match tokio::time::timeout(limit, waited).await {
            Ok(finished) => finished,
            Err(_) => {
                spinner.finish_and_clear();
                return Err(JobEnded::TimedOut {
                    id: job.id.clone(),
                    waited: humantime::format_duration(limit).to_string(),
                }
                .into());
            }
        },
        None => waited.await,
    };
    spinner.finish_and_clear();
    let job = finished.with_context(|| format!("waiting for job {}", job.id))?;
    finish(ctx, client, &job, Some(idempotency_key), true).await
}

/// A spinner on stderr while waiting; drawn only on a terminal and for text output.
fn spinner(id: &str) -> indicatif::ProgressBar {
    if output::json() {
        return indicatif::ProgressBar::hidden();
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("waiting for job {id}"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    spinner
}

/// Prints a finished job's outcome and its decrypted results; an error when it failed.
async fn finish(
    ctx: &Context,
    client: &LedgerClient,
    job: &Job,
    idempotency_key: Option<&str>,
    print_state: bool,
) -> anyhow::Result<()> {
    let results = results(ctx, client, job).await?;
    let mut value = json!({ "job": output::job_json(job), "results": results.json() });
    if let Some(key) = idempotency_key {
        value["idempotency_key"] = Value::from(key);
    }
    output::emit(value, || {
        if print_state {
            output::print_final(job);
        }
        results.print();
    });
    if job.state() == JobState::Failed {
        return Err(JobEnded::Failed {
            id: job.id.clone(),
            reason: job.failure_reason.clone(),
        }
        .into());
    }
    Ok(())
}

/// A job's results as far as this machine can read them.
enum Results {
    /// The job has none (not committed, or a deposit).
    None,
    /// Committed, but the tenant's keys are not here.
    Encrypted(String),
    /// Decrypted with the tenant's local keys.
    Decrypted(Decrypted),
}

impl Results {
    fn json(&self) -> Value {
        match self {
            Results::None => Value::Null,
            Results::Encrypted(_) => json!("encrypted"),
            Results::Decrypted(decrypted) => output::decrypted_json(decrypted),
        }
    }

    fn print(&self) {
        match self {
            Results::None => {}
            Results::Encrypted(tenant) => println!(
                "results are encrypted: only the holder of tenant {tenant}'s keys can read them"
            ),
            Results::Decrypted(decrypted) => output::print_decrypted(decrypted),
        }
    }
}

/// Decrypts a committed job's results when this home holds the tenant's keys.
async fn results(ctx: &Context, client: &LedgerClient, job: &Job) -> anyhow::Result<Results> {
    let has_results = matches!(
        job.kind(),
        JobKind::Transfer | JobKind::Withdraw | JobKind::Aggregate
    );
    if job.state() != JobState::Committed || !has_results {
        return Ok(Results::None);
    }
    let Some(local) = local_keys(ctx, &job.tenant).await? else {
        return Ok(Results::Encrypted(job.tenant.clone()));
    };
    let tenant = client
        .tenant(&job.tenant)
        .await
        .with_context(|| format!("fetching tenant '{}'", job.tenant))?;
    local.check_matches(&job.tenant, &tenant.key_id)?;
    let result = match &job.result {
        Some(result) => result.clone(),
        None => client
            .job(&job.id, true)
            .await
            .with_context(|| format!("fetching the results of job {}", job.id))?
            .result
            .context("the ledger returned no results for a committed job")?,
    };
    let width = tenant.width;
    let decrypted =
        tokio::task::spawn_blocking(move || decrypt_result(&local.keys, width, &result))
            .await
            .context("decryption task failed")??;
    Ok(Results::Decrypted(decrypted))
}

/// The tenant's local keys; `None` when there are none or no home directory is known.
async fn local_keys(ctx: &Context, tenant: &str) -> anyhow::Result<Option<LocalKeys>> {
    match ctx.home() {
        Ok(home) => home.load_keys(tenant).await,
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_idempotency_keys() {
        assert!(parse_idempotency_key("order-42").is_ok());
        assert!(parse_idempotency_key(&"k".repeat(128)).is_ok());
        assert!(parse_idempotency_key("").is_err());
        assert!(parse_idempotency_key("with space").is_err());
        assert!(parse_idempotency_key(&"k".repeat(129)).is_err());
    }
}
