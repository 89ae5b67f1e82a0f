//! The FHE part of each job kind, run on the FHE pool with the tenant's key installed.
//!
//! Inputs are what the worker read from storage; the output is a [`JobCommit`] of
//! compressed ciphertexts to write. Nothing here touches storage or learns a value.

use std::time::Instant;

use blindledger_fhe::ops::{self, OpError, TransferLimits, Value};
use blindledger_fhe::{wire, LedgerWidth};
use blindledger_store::{AccountRow, BalanceWrite, JobCommit};

use crate::jobs::{JobKind, JobParams};

/// Everything a job's computation needs, read before it starts.
#[derive(Debug)]
pub struct JobInputs {
    /// The job kind.
    pub kind: JobKind,
    /// The tenant's width.
    pub width: LedgerWidth,
    /// The submitted amount (deposit, withdraw, transfer).
    pub amount: Option<Vec<u8>>,
    /// Plaintext parameters recorded at submission.
    pub params: JobParams,
    /// The main account (debited, credited by a deposit, or aggregated).
    pub account_a: AccountRow,
    /// The credited account of a transfer.
    pub account_b: Option<AccountRow>,
    /// Compressed amounts moved out of and into the account (aggregate).
    pub moved: (Vec<Vec<u8>>, Vec<Vec<u8>>),
    /// Current time (Unix ms), for the outflow window.
    pub now_ms: i64,
}

/// Runs the job's homomorphic computation.
///
/// Its programmable bootstraps are counted with tfhe's PBS counter (process-wide): exact
/// because the executor runs one job's FHE work at a time.
pub fn compute(inputs: &JobInputs) -> Result<JobCommit, OpError> {
    let span = tracing::info_span!(
        "fhe.compute",
        op = inputs.kind.as_str(),
        bootstraps = tracing::field::Empty
    );
    let _entered = span.enter();
    let started = Instant::now();
    let bootstraps_before = blindledger_fhe::pbs_count();
    let commit = match inputs.kind {
        JobKind::Deposit => deposit(inputs),
        JobKind::Withdraw | JobKind::Transfer => movement(inputs),
        JobKind::Aggregate => aggregate(inputs),
    }?;
    let op = inputs.kind.as_str();
    metrics::histogram!("blindledger_fhe_op_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    let bootstraps = blindledger_fhe::pbs_count().saturating_sub(bootstraps_before);
    metrics::counter!("blindledger_fhe_bootstraps_total", "op" => op).increment(bootstraps);
    span.record("bootstraps", bootstraps);
    Ok(commit)
}

fn amount(inputs: &JobInputs) -> Result<Value, OpError> {
    let bytes = inputs
        .amount
        .as_deref()
        .ok_or(OpError::Tfhe("job has no amount".into()))?;
    let list = wire::decode_amount(bytes, inputs.width)?;
    Value::expand(&list, inputs.width)
}

fn balance(row: &AccountRow, width: LedgerWidth) -> Result<Value, OpError> {
    match &row.balance {
        Some(bytes) => Value::decompress(bytes, width),
        None => Ok(Value::zero(width)),
    }
}

fn deposit(inputs: &JobInputs) -> Result<JobCommit, OpError> {
    let account = &inputs.account_a;
    let new = ops::deposit(&balance(account, inputs.width)?, &amount(inputs)?)?;
    Ok(JobCommit {
        writes: vec![BalanceWrite {
            account: account.name.clone(),
            expected_version: account.version,
            balance: new.compress()?,
            window: None,
        }],
        ..JobCommit::default()
    })
}

/// The outflow window an account is in now: its start, and the encrypted outflow so far
/// (zero when a new window begins).
fn window(inputs: &JobInputs) -> Result<Option<(i64, Value)>, OpError> {
    let Some(window_seconds) = inputs.params.window_limit.and(inputs.params.window_seconds) else {
        return Ok(None);
    };
    let length = (window_seconds.max(1) as i64).saturating_mul(1000);
    let start = inputs.now_ms - inputs.now_ms.rem_euclid(length);
    let row = &inputs.account_a;
    let spent = match (&row.window_spent, row.window_start) {
        (Some(bytes), Some(current)) if current == start => Value::decompress(bytes, inputs.width)?,
        _ => Value::zero(inputs.width),
    };
    Ok(Some((start, spent)))
}

fn movement(inputs: &JobInputs) -> Result<JobCommit, OpError> {
    let from_row = &inputs.account_a;
    let from = balance(from_row, inputs.width)?;
    let to = inputs
        .account_b
        .as_ref()
        .map(|row| balance(row, inputs.width))
        .transpose()?;
    let window = window(inputs)?;
    let limits = TransferLimits {
        max_amount: inputs.params.max_amount,
        window_limit: window.as_ref().and(inputs.params.window_limit),
    };
    let spent = window.as_ref().map(|(_, spent)| spent);
    let result = ops::movement(&from, to.as_ref(), &amount(inputs)?, limits, spent)?;
    let window_write = match (window, &result.window_spent) {
        (Some((start, _)), Some(spent)) => Some((start, spent.compress()?)),
        _ => None,
    };
    let mut writes = vec![BalanceWrite {
        account: from_row.name.clone(),
        expected_version: from_row.version,
        balance: result.from.compress()?,
        window: window_write,
    }];
    if let (Some(row), Some(new_to)) = (&inputs.account_b, &result.to) {
        writes.push(BalanceWrite {
            account: row.name.clone(),
            expected_version: row.version,
            balance: new_to.compress()?,
            window: None,
        });
    }
    Ok(JobCommit {
        writes,
        moved: Some(result.moved.compress()?),
        ok: Some(ops::compress_flag(&result.ok)?),
        ..JobCommit::default()
    })
}

fn aggregate(inputs: &JobInputs) -> Result<JobCommit, OpError> {
    let width = inputs.width;
    let load = |list: &[Vec<u8>]| -> Result<Vec<Value>, OpError> {
        list.iter()
            .map(|bytes| Value::decompress(bytes, width))
            .collect()
    };
    let outgoing = load(&inputs.moved.0)?;
    let incoming = load(&inputs.moved.1)?;
    let threshold = inputs.params.threshold.unwrap_or(0);
    let result = ops::aggregate(width, &outgoing, &incoming, threshold)?;
    Ok(JobCommit {
        sums: Some((
            result.sum_out.compress()?,
            result.sum_in.compress()?,
            result.count_above.compress()?,
        )),
        transfers: Some((outgoing.len() + incoming.len()) as i64),
        ..JobCommit::default()
    })
}
