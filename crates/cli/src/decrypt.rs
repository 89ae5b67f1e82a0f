//! Local decryption of a committed job's results with the tenant's client key.

use anyhow::Context as _;
use blindledger_client::proto::ledger::v1::job::Result as JobResult;
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::{decrypt_flag, decrypt_value, TenantKeys};

use crate::amount::Amount;

/// A job's results in plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decrypted {
    /// A transfer's or withdrawal's outcome.
    Movement {
        /// What actually moved: the amount, or zero.
        moved: Amount,
        /// Whether the amount moved.
        applied: bool,
    },
    /// An aggregate's outcome.
    Aggregate {
        /// Total moved out of the account in the period.
        sum_out: Amount,
        /// Total moved into the account in the period.
        sum_in: Amount,
        /// Outgoing transfers that moved more than the threshold.
        count_above: u64,
        /// Transfers the aggregate covered.
        transfers: u64,
    },
}

/// Decrypts a job's encrypted results (CPU work: call from a blocking task).
pub fn decrypt_result(
    keys: &TenantKeys,
    width: LedgerWidth,
    result: &JobResult,
) -> anyhow::Result<Decrypted> {
    let key = &keys.client_key;
    let value = |what: &str, bytes: &[u8]| {
        decrypt_value(key, width, bytes).with_context(|| format!("decrypting {what}"))
    };
    Ok(match result {
        JobResult::Movement(m) => Decrypted::Movement {
            moved: Amount(value("the moved amount", &m.moved)?),
            applied: decrypt_flag(key, &m.ok).context("decrypting the outcome flag")?,
        },
        JobResult::Aggregate(a) => Decrypted::Aggregate {
            sum_out: Amount(value("the outgoing sum", &a.sum_out)?),
            sum_in: Amount(value("the incoming sum", &a.sum_in)?),
            count_above: value("the count above threshold", &a.count_above)?,
            transfers: a.transfers,
        },
    })
}
