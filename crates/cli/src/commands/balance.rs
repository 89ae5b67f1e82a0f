//! `blindledger balance`: fetches an encrypted balance and decrypts it locally.

use anyhow::Context as _;
use blindledger_keyholder::decrypt_value;

use super::Context;
use crate::account_ref::AccountRef;
use crate::amount::Amount;

/// Arguments of `blindledger balance`.
#[derive(Debug, clap::Args)]
pub struct BalanceArgs {
    /// The account, as tenant/account.
    account: AccountRef,
}

/// Prints the account's balance, e.g. `74.50`. Needs the tenant's keys in this home.
pub async fn run(ctx: &Context, args: BalanceArgs) -> anyhow::Result<()> {
    let AccountRef { tenant, account } = &args.account;
    // Keys first: without them the ciphertext is useless, and the error says where to put them.
    let local = ctx.home()?.require_keys(tenant).await?;
    let client = ctx.connect().await?;
    let (width, ciphertext, _version) = client
        .balance(tenant, account)
        .await
        .with_context(|| format!("fetching the balance of {}", args.account))?;
    // Only keys registered by this CLI carry a key id to compare with the ledger's.
    if local.record.is_some() {
        let info = client
            .tenant(tenant)
            .await
            .with_context(|| format!("fetching tenant '{tenant}'"))?;
        local.check_matches(tenant, &info.key_id)?;
    }
    let cents = tokio::task::spawn_blocking(move || {
        decrypt_value(&local.keys.client_key, width, &ciphertext)
    })
    .await
    .context("decryption task failed")?
    .context("decrypting the balance")?;
    let account = args.account.to_string();
    crate::output::emit(
        serde_json::json!({ "account": account, "balance": Amount(cents).to_string() }),
        || println!("{}", Amount(cents)),
    );
    Ok(())
}
