//! `blindledger job get | watch`, and what every verb prints once a job is over.

use anyhow::Context as _;
use blindledger_client::{is_finished, Job, JobKind, JobState, LedgerClient};
use futures::StreamExt;

use super::Context;
use crate::decrypt::decrypt_result;
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
    /// Waits for the job to finish and prints its outcome.
    #[arg(long)]
    pub wait: bool,
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
            output::print_job(&job);
            print_results(ctx, &client, &job).await
        }
        JobCommand::Watch { id } => watch(ctx, &client, &id).await,
    }
}

/// Prints each transition (state or attempt change) until the job is over.
async fn watch(ctx: &Context, client: &LedgerClient, id: &str) -> anyhow::Result<()> {
    let context = || format!("watching job {id}");
    let mut updates = std::pin::pin!(client.watch_job(id).await.with_context(context)?);
    let mut last = None;
    while let Some(job) = updates.next().await {
        let job = job.with_context(context)?;
        let seen = (job.state(), job.attempts);
        if last != Some(seen) {
            output::print_transition(&job);
            last = Some(seen);
        }
        if is_finished(&job) {
            return print_results(ctx, client, &job).await;
        }
    }
    // The ledger ended the stream early (e.g. it restarted): keep waiting quietly.
    let job = client.wait_job(id).await.with_context(context)?;
    output::print_transition(&job);
    print_results(ctx, client, &job).await
}

/// Prints a job's final state and, when committed, its decrypted results.
pub async fn print_outcome(ctx: &Context, client: &LedgerClient, job: &Job) -> anyhow::Result<()> {
    output::print_final(job);
    print_results(ctx, client, job).await
}

/// Prints a job just queued and, with `--wait`, follows it to its end.
pub async fn follow(
    ctx: &Context,
    client: &LedgerClient,
    job: Job,
    idempotency_key: &str,
    wait: bool,
) -> anyhow::Result<()> {
    output::print_queued(&job, idempotency_key);
    if !wait {
        return Ok(());
    }
    let job = client
        .wait_job(&job.id)
        .await
        .with_context(|| format!("waiting for job {}", job.id))?;
    print_outcome(ctx, client, &job).await
}

/// Decrypts and prints a committed job's results when this home holds the tenant's keys;
/// says the results stay encrypted otherwise.
async fn print_results(ctx: &Context, client: &LedgerClient, job: &Job) -> anyhow::Result<()> {
    let has_results = matches!(
        job.kind(),
        JobKind::Transfer | JobKind::Withdraw | JobKind::Aggregate
    );
    if job.state() != JobState::Committed || !has_results {
        return Ok(());
    }
    let Some(local) = local_keys(ctx, &job.tenant).await? else {
        println!(
            "results are encrypted: only the holder of tenant {}'s keys can read them",
            job.tenant
        );
        return Ok(());
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
    output::print_decrypted(&decrypted);
    Ok(())
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
