//! `blindledger transfers`: lists transfer metadata touching an account (no amounts).

use anyhow::Context as _;

use super::Context;
use crate::account_ref::AccountRef;
use crate::output;

/// Arguments of `blindledger transfers`.
#[derive(Debug, clap::Args)]
pub struct TransfersArgs {
    /// The account, as tenant/account.
    account: AccountRef,
    /// Most transfers listed, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
    limit: u32,
}

/// Runs `blindledger transfers`.
pub async fn run(ctx: &Context, args: TransfersArgs) -> anyhow::Result<()> {
    let client = ctx.connect().await?;
    let page = client
        .list_transfers(
            &args.account.tenant,
            &args.account.account,
            args.limit,
            None,
        )
        .await
        .with_context(|| format!("listing the transfers of {}", args.account))?;
    let more = !page.next_page_token.is_empty();
    output::emit(output::transfers_json(&page.transfers, more), || {
        output::print_transfers(&page.transfers, more)
    });
    Ok(())
}
