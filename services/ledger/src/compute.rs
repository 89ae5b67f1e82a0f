//! The FHE part of each job kind, run on the FHE pool with the tenant's key installed.
//!
//! Inputs are what the worker read from storage; the output is a [`JobCommit`] of
//! compressed ciphertexts to write. Nothing here touches storage or learns a value.

use std::sync::Arc;
use std::time::Instant;

use blindledger_fhe::ops::{self, OpError, TransferLimits, Value};
use blindledger_fhe::{wire, LedgerWidth};
use blindledger_store::{AccountRow, BalanceWrite, JobCommit, TotalRow, WindowWrite};

use crate::cache::ValueCache;
use crate::jobs::{JobKind, JobParams};
use crate::totals::{fold, AggregateInputs, Series};

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
    /// Running totals and amounts an aggregate reads.
    pub aggregate: AggregateInputs,
    /// Current time (Unix ms), for the outflow window.
    pub now_ms: i64,
    /// The job's tenant.
    pub tenant: String,
    /// Decompressed values already in memory.
    pub cache: Arc<ValueCache>,
}

/// What a job computed: the writes of its commit, and the values they compress.
pub struct Computed {
    /// The commit to write.
    pub commit: JobCommit,
    /// Each written ciphertext's stored bytes with the value it compresses, for the
    /// cache once the commit succeeded: the next job on these accounts, and the reads of
    /// this job's results, then decompress nothing.
    pub fresh: Vec<(Vec<u8>, Value)>,
    /// Running totals an aggregate folded, to store once it committed.
    pub totals: Vec<(Series, TotalRow)>,
}

impl std::fmt::Debug for Computed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Computed")
            .field("commit", &self.commit)
            .field("fresh", &self.fresh.len())
            .field("totals", &self.totals.len())
            .finish()
    }
}

impl Computed {
    fn new() -> Self {
        Self {
            commit: JobCommit::default(),
            fresh: Vec::new(),
            totals: Vec::new(),
        }
    }

    /// Compresses an account's new balance and adds its compare-and-set write.
    fn write_balance(
        &mut self,
        row: &AccountRow,
        value: Value,
        window: Option<WindowWrite>,
    ) -> Result<(), OpError> {
        let balance = self.compress(value)?;
        self.commit.writes.push(BalanceWrite {
            account: row.name.clone(),
            expected_version: row.version,
            balance,
            window,
        });
        Ok(())
    }

    fn compress(&mut self, value: Value) -> Result<Vec<u8>, OpError> {
        let stored = value.compress()?;
        self.fresh.push((stored.clone(), value));
        Ok(stored)
    }
}

/// Runs the job's homomorphic computation.
///
/// Its programmable bootstraps are counted with tfhe's PBS counter, which is process-wide:
/// exact when the executor runs one job at a time (`fhe_parallel_jobs = 1`), the sum of
/// the jobs that overlapped it otherwise.
pub fn compute(inputs: &JobInputs) -> Result<Computed, OpError> {
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

fn balance(inputs: &JobInputs, row: &AccountRow) -> Result<Arc<Value>, OpError> {
    match &row.balance {
        Some(bytes) => inputs.cache.decompress(&inputs.tenant, bytes, inputs.width),
        None => Ok(Arc::new(Value::zero(inputs.width))),
    }
}

fn deposit(inputs: &JobInputs) -> Result<Computed, OpError> {
    let account = &inputs.account_a;
    let new = ops::deposit(&*balance(inputs, account)?, &amount(inputs)?)?;
    let mut computed = Computed::new();
    computed.write_balance(account, new, None)?;
    Ok(computed)
}

/// The outflow window an account is in now: its start, its limit, and its encrypted
/// remaining allowance (the whole limit when a new window begins).
fn window(inputs: &JobInputs) -> Result<Option<(i64, u64, Value)>, OpError> {
    let (Some(limit), Some(window_seconds)) =
        (inputs.params.window_limit, inputs.params.window_seconds)
    else {
        return Ok(None);
    };
    // Stored as a signed 64-bit column; a larger limit binds nothing anyway.
    let limit = limit.min(i64::MAX as u64);
    let width = inputs.width;
    let length = (window_seconds.max(1) as i64).saturating_mul(1000);
    let start = inputs.now_ms - inputs.now_ms.rem_euclid(length);
    let row = &inputs.account_a;
    let current = row.window_start == Some(start);
    let remaining = match (&row.window_remaining, row.window_base, &row.window_spent) {
        (Some(bytes), Some(base), _) if current => {
            let base = u64::try_from(base)
                .map_err(|_| OpError::Invalid("stored window limit is negative"))?;
            let stored_width = ops::allowance_width(width, base);
            let remaining = inputs
                .cache
                .decompress(&inputs.tenant, bytes, stored_width)?;
            ops::rebase_allowance(&remaining, width, base, limit)
        }
        // A window written before allowances: its outflow so far.
        (None, _, Some(spent)) if current => {
            let spent = inputs.cache.decompress(&inputs.tenant, spent, width)?;
            ops::allowance_from_outflow(&spent, width, limit)?
        }
        _ => ops::fresh_allowance(width, limit),
    };
    Ok(Some((start, limit, remaining)))
}

fn movement(inputs: &JobInputs) -> Result<Computed, OpError> {
    let from_row = &inputs.account_a;
    let from = balance(inputs, from_row)?;
    let to = inputs
        .account_b
        .as_ref()
        .map(|row| balance(inputs, row))
        .transpose()?;
    let window = window(inputs)?;
    let limits = TransferLimits {
        max_amount: inputs.params.max_amount,
        window_limit: window.as_ref().map(|(_, limit, _)| *limit),
    };
    let remaining = window.as_ref().map(|(_, _, remaining)| remaining);
    let result = ops::movement(&from, to.as_deref(), &amount(inputs)?, limits, remaining)?;
    let mut computed = Computed::new();
    let window_write = match (window, result.window_remaining) {
        (Some((start, limit, _)), Some(remaining)) => Some(WindowWrite {
            start,
            remaining: computed.compress(remaining)?,
            base: limit as i64,
        }),
        _ => None,
    };
    computed.write_balance(from_row, result.from, window_write)?;
    if let (Some(row), Some(new_to)) = (&inputs.account_b, result.to) {
        computed.write_balance(row, new_to, None)?;
    }
    computed.commit.moved = Some(computed.compress(result.moved)?);
    computed.commit.ok = Some(ops::compress_flag(&result.ok)?);
    Ok(computed)
}

/// Sums in and out and the count above the threshold over the period: from running
/// totals at its midnights where it spans whole days (see [`crate::totals`]), plus the
/// transfers at its edges.
fn aggregate(inputs: &JobInputs) -> Result<Computed, OpError> {
    let (width, cache, tenant) = (inputs.width, &inputs.cache, inputs.tenant.as_str());
    let threshold = inputs.params.threshold.unwrap_or(0);
    let plan = &inputs.aggregate;
    let load = |list: &[Vec<u8>]| -> Result<Vec<_>, OpError> {
        list.iter()
            .map(|bytes| cache.decompress(tenant, bytes, width))
            .collect()
    };
    let (edge_out, edge_in) = (load(&plan.edge_out)?, load(&plan.edge_in)?);
    let owned = |values: &[std::sync::Arc<Value>]| values.iter().map(|v| (**v).clone()).collect();
    // Per figure (out, in, above): what adds up, and the total before the period.
    let count_width = Series::Above(threshold).width(width);
    let flags = ops::flags_above(width, &edge_out, threshold)?;
    let mut parts: [Vec<Value>; 3] = [
        owned(&edge_out),
        owned(&edge_in),
        flags.iter().map(|f| f.cast_to(count_width)).collect(),
    ];
    let mut before: [Option<Value>; 3] = [None, None, None];
    let mut transfers = (edge_out.len() + edge_in.len()) as i64;
    let mut computed = Computed::new();
    for (i, (series, start, end)) in plan.totals.iter().flatten().enumerate() {
        let end_value = fold(cache, tenant, width, *series, end)?;
        let empty = start.stored.is_none() && start.raw.is_empty();
        let start_value = (!empty)
            .then(|| fold(cache, tenant, width, *series, start))
            .transpose()?;
        for (total, value) in [(end, Some(&end_value)), (start, start_value.as_ref())] {
            if let (false, Some(value)) = (total.is_stored(), value) {
                let row = TotalRow {
                    through_ms: total.through_ms,
                    total: computed.compress(value.clone())?,
                    transfers: total.transfers(),
                };
                computed.totals.push((*series, row));
            }
        }
        if *series != Series::Above(threshold) {
            transfers += end.transfers() - start.transfers();
        }
        parts[i].push(end_value);
        before[i] = start_value;
    }
    let widths = [width, width, count_width];
    let figure = |i: usize| -> Result<Value, OpError> {
        let sum = ops::sum(widths[i], &parts[i])?;
        let figure = match &before[i] {
            Some(earlier) => ops::difference(&sum, earlier)?,
            None => sum,
        };
        // Results are read in the ledger's width.
        Ok(figure.cast_to(width))
    };
    let ((sum_out, sum_in), count_above) =
        rayon::join(|| rayon::join(|| figure(0), || figure(1)), || figure(2));
    let sums = (
        computed.compress(sum_out?)?,
        computed.compress(sum_in?)?,
        computed.compress(count_above?)?,
    );
    computed.commit.sums = Some(sums);
    computed.commit.transfers = Some(transfers);
    Ok(computed)
}
