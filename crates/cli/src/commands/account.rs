//! `blindledger account open`: opens an account, optionally with transfer limits.

use std::time::Duration;

use anyhow::Context as _;
use blindledger_client::TransferLimits;

use super::Context;
use crate::account_ref::AccountRef;
use crate::amount::Amount;
use crate::output;

/// `blindledger account ...` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum AccountCommand {
    /// Opens an account with an encrypted zero balance.
    Open(OpenArgs),
}

/// Arguments of `blindledger account open`.
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// The account, as tenant/account.
    account: AccountRef,
    /// Largest amount one outgoing transfer may move, e.g. 500.00.
    #[arg(long, value_name = "AMOUNT")]
    max_amount: Option<Amount>,
    /// Largest total moved out per window, e.g. 1000.00.
    #[arg(long, value_name = "AMOUNT")]
    window_limit: Option<Amount>,
    /// Length of the window, e.g. 24h or 7days [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "window_limit")]
    window: Option<Duration>,
}

/// Runs `blindledger account ...`.
pub async fn run(ctx: &Context, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Open(args) => open(ctx, args).await,
    }
}

async fn open(ctx: &Context, args: OpenArgs) -> anyhow::Result<()> {
    let limits = limits(&args)?;
    let client = ctx.connect().await?;
    let account = client
        .open_account(&args.account.tenant, &args.account.account, limits)
        .await
        .with_context(|| format!("opening {}", args.account))?;
    output::emit(
        serde_json::json!({
            "opened": args.account.to_string(),
            "limits": output::limits_json(account.limits.as_ref()),
        }),
        || {
            println!("opened {}", args.account);
            output::print_limits(account.limits.as_ref());
        },
    );
    Ok(())
}

/// Builds the wire limits; `None` when no limit was asked for. Zero means "no limit" on
/// the wire, so an explicit zero is refused rather than silently meaning unlimited.
fn limits(args: &OpenArgs) -> anyhow::Result<Option<TransferLimits>> {
    if args.max_amount.is_none() && args.window_limit.is_none() {
        return Ok(None);
    }
    for (flag, value) in [
        ("--max-amount", args.max_amount),
        ("--window-limit", args.window_limit),
    ] {
        if value == Some(Amount(0)) {
            anyhow::bail!("{flag} must be above 0.00 (leave it out for no limit)");
        }
    }
    let window_seconds = match (args.window_limit, args.window) {
        (Some(_), Some(window)) if window.as_secs() == 0 => {
            anyhow::bail!("--window must be at least 1s")
        }
        (Some(_), Some(window)) => window.as_secs(),
        (Some(_), None) => 24 * 60 * 60,
        (None, _) => 0,
    };
    Ok(Some(TransferLimits {
        max_amount: args.max_amount.map_or(0, |a| a.0),
        window_limit: args.window_limit.map_or(0, |a| a.0),
        window_seconds,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(max: Option<u64>, limit: Option<u64>, window: Option<u64>) -> OpenArgs {
        OpenArgs {
            account: AccountRef {
                tenant: "acme".into(),
                account: "alice".into(),
            },
            max_amount: max.map(Amount),
            window_limit: limit.map(Amount),
            window: window.map(Duration::from_secs),
        }
    }

    #[test]
    fn no_flags_means_no_limits() {
        assert_eq!(limits(&args(None, None, None)).ok(), Some(None));
    }

    #[test]
    fn window_defaults_to_a_day() {
        let got = limits(&args(Some(50_000), Some(100_000), None))
            .ok()
            .flatten();
        assert_eq!(
            got,
            Some(TransferLimits {
                max_amount: 50_000,
                window_limit: 100_000,
                window_seconds: 86_400
            })
        );
        let got = limits(&args(None, Some(100), Some(3600))).ok().flatten();
        assert_eq!(got.map(|l| l.window_seconds), Some(3600));
    }

    #[test]
    fn refuses_zero_limits() {
        assert!(limits(&args(Some(0), None, None)).is_err());
        assert!(limits(&args(None, Some(0), None)).is_err());
        assert!(limits(&args(None, Some(100), Some(0))).is_err());
    }
}
