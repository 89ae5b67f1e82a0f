//! `blindledger aggregate`: queues sums and a threshold count over an account's transfers.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use blindledger_client::new_idempotency_key;

use super::jobs::{self, JobOptions};
use super::Context;
use crate::account_ref::AccountRef;
use crate::amount::Amount;

/// Period covered when `--from` is left out.
const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Arguments of `blindledger aggregate`.
#[derive(Debug, clap::Args)]
pub struct AggregateArgs {
    /// The account, as tenant/account.
    account: AccountRef,
    /// Start of the period (RFC 3339, e.g. 2026-11-01T00:00:00Z) [default: 30 days before --to].
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    from: Option<SystemTime>,
    /// End of the period, excluded [default: now].
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    to: Option<SystemTime>,
    /// Also counts outgoing transfers that moved more than this amount.
    #[arg(long, value_name = "AMOUNT", default_value = "0")]
    threshold: Amount,
    #[command(flatten)]
    options: JobOptions,
}

/// Runs `blindledger aggregate`.
pub async fn run(ctx: &Context, args: AggregateArgs) -> anyhow::Result<()> {
    let (from, to) = period(args.from, args.to, SystemTime::now())?;
    let client = ctx.connect().await?;
    let key = args
        .options
        .idempotency_key
        .clone()
        .unwrap_or_else(new_idempotency_key);
    let job = client
        .aggregate(
            &args.account.tenant,
            &args.account.account,
            from,
            to,
            args.threshold.0,
            &key,
        )
        .await
        .with_context(|| format!("queueing the aggregate of {}", args.account))?;
    jobs::follow(ctx, &client, job, &key, &args.options).await
}

/// Fills in the period's defaults and checks that it is not empty.
fn period(
    from: Option<SystemTime>,
    to: Option<SystemTime>,
    now: SystemTime,
) -> anyhow::Result<(SystemTime, SystemTime)> {
    let to = to.unwrap_or(now);
    let from = match from {
        Some(from) => from,
        None => to
            .checked_sub(DEFAULT_PERIOD)
            .context("--to is too early for a 30-day default period")?,
    };
    if from >= to {
        anyhow::bail!("--from must be before --to");
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        humantime::parse_rfc3339_weak(text).expect("valid test time")
    }

    #[test]
    fn defaults_to_the_last_30_days() {
        let now = at("2026-12-01T00:00:00Z");
        let (from, to) = period(None, None, now).expect("valid period");
        assert_eq!((from, to), (at("2026-11-01T00:00:00Z"), now));
    }

    #[test]
    fn keeps_explicit_bounds_and_rejects_empty_periods() {
        let (from, to) = (at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"));
        assert_eq!(period(Some(from), Some(to), to).ok(), Some((from, to)));
        assert!(period(Some(to), Some(from), to).is_err());
        assert!(period(Some(to), Some(to), to).is_err());
    }
}
