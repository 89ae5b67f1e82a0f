//! `blindledger deposit | withdraw | transfer`: encrypts an amount to the tenant and
//! queues the job.

use anyhow::Context as _;
use blindledger_client::{new_idempotency_key, LedgerClient};

use super::jobs::{self, JobOptions};
use super::Context;
use crate::account_ref::AccountRef;
use crate::amount::Amount;

/// Arguments of `blindledger deposit` and `blindledger withdraw`.
#[derive(Debug, clap::Args)]
pub struct MoneyArgs {
    /// The account, as tenant/account.
    account: AccountRef,
    /// The amount, e.g. 100.00.
    #[arg(allow_hyphen_values = true)]
    amount: Amount,
    #[command(flatten)]
    options: JobOptions,
}

/// Arguments of `blindledger transfer`.
#[derive(Debug, clap::Args)]
pub struct TransferArgs {
    /// The paying account, as tenant/account.
    from: AccountRef,
    /// The receiving account, as tenant/account (same tenant).
    to: AccountRef,
    /// The amount, e.g. 25.50.
    #[arg(allow_hyphen_values = true)]
    amount: Amount,
    #[command(flatten)]
    options: JobOptions,
}

/// Which single-account movement to queue.
#[derive(Debug, Clone, Copy)]
pub enum Movement {
    /// balance += amount.
    Deposit,
    /// balance -= amount when covered.
    Withdraw,
}

impl Movement {
    /// The movement's name in messages.
    fn noun(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdraw => "withdrawal",
        }
    }
}

/// Runs `blindledger deposit` or `blindledger withdraw`.
pub async fn movement(ctx: &Context, kind: Movement, args: MoneyArgs) -> anyhow::Result<()> {
    let client = ctx.connect().await?;
    let amount = encrypt(ctx, &client, &args.account.tenant, args.amount).await?;
    let key = args
        .options
        .idempotency_key
        .clone()
        .unwrap_or_else(new_idempotency_key);
    let (tenant, account) = (&args.account.tenant, &args.account.account);
    let job = match kind {
        Movement::Deposit => client.deposit(tenant, account, amount, &key).await,
        Movement::Withdraw => client.withdraw(tenant, account, amount, &key).await,
    };
    let job = job.with_context(|| format!("queueing the {} on {}", kind.noun(), args.account))?;
    jobs::follow(ctx, &client, job, &key, &args.options).await
}

/// Runs `blindledger transfer`.
pub async fn transfer(ctx: &Context, args: TransferArgs) -> anyhow::Result<()> {
    if args.from.tenant != args.to.tenant {
        anyhow::bail!(
            "a transfer stays within one tenant, but {} and {} belong to different tenants",
            args.from,
            args.to
        );
    }
    let client = ctx.connect().await?;
    let amount = encrypt(ctx, &client, &args.from.tenant, args.amount).await?;
    let key = args
        .options
        .idempotency_key
        .clone()
        .unwrap_or_else(new_idempotency_key);
    let job = client
        .transfer(
            &args.from.tenant,
            &args.from.account,
            &args.to.account,
            amount,
            &key,
        )
        .await
        .with_context(|| format!("queueing the transfer from {} to {}", args.from, args.to))?;
    jobs::follow(ctx, &client, job, &key, &args.options).await
}

/// Encrypts an amount to the tenant: anyone may encrypt, only the key holder decrypts. The
/// public key the ledger returns is used only when it matches the one this home holds for
/// the tenant or the fingerprint pinned for it.
async fn encrypt(
    ctx: &Context,
    client: &LedgerClient,
    tenant: &str,
    amount: Amount,
) -> anyhow::Result<Vec<u8>> {
    let pin = ctx.home()?.key_pin(tenant)?;
    let pinned = client
        .pinned_tenant(tenant, &pin)
        .await
        .with_context(|| format!("fetching tenant '{tenant}'"))?;
    tokio::task::spawn_blocking(move || pinned.encrypt(amount.0))
        .await
        .context("encryption task failed")?
        .context("encrypting the amount")
}
