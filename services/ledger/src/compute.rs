//! The FHE part of each job kind, run on the FHE pool with the tenant's key installed.
//!
//! Inputs are what the worker read from storage; the output is a [`JobCommit`] of
//! compressed ciphertexts to write. Nothing here touches storage or learns a value.
//!
//! A worker may hold a chain of jobs on the same accounts (the dependence chains of Zama's
//! fhEVM coprocessor are the model): they are computed one after the other, each reading
//! the balances the previous one left in memory, and only each account's last balance is
//! compressed and written.

use std::collections::HashMap;
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

/// An account's state after a job changed it, not yet compressed: a job of the same chain
/// reads it from here, and the chain writes the last one.
struct Changed {
    /// The account as read before the chain (its name and the version to compare).
    row: AccountRow,
    balance: Arc<Value>,
    window: Option<Window>,
}

/// An outflow window's state: its start, the limit its allowance is counted against, and
/// the encrypted allowance left.
#[derive(Clone)]
struct Window {
    start: i64,
    base: u64,
    remaining: Value,
}

/// The accounts a chain changed so far, by name, with the index of the last job that
/// changed each.
type Carried = HashMap<String, (usize, Changed)>;

/// What a job computed: the writes of its commit, and the values they compress.
pub struct Computed {
    /// The commit to write.
    pub commit: JobCommit,
    /// Accounts changed, compressed into `commit.writes` by [`compute_chain`] once it
    /// knows which job of the chain changes each account last.
    changed: Vec<Changed>,
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
            changed: Vec::new(),
            fresh: Vec::new(),
            totals: Vec::new(),
        }
    }

    /// Records an account's new balance (and window); `row` is the account as read.
    fn change(&mut self, row: &AccountRow, balance: Value, window: Option<Window>) {
        self.changed.push(Changed {
            row: row.clone(),
            balance: Arc::new(balance),
            window,
        });
    }

    /// Compresses an account's last state in the chain and adds its compare-and-set write.
    fn write(&mut self, changed: Changed) -> Result<(), OpError> {
        let window = match changed.window {
            Some(window) => Some(WindowWrite {
                start: window.start,
                remaining: self.compress(window.remaining)?,
                base: window.base as i64,
            }),
            None => None,
        };
        let balance = Arc::try_unwrap(changed.balance).unwrap_or_else(|shared| (*shared).clone());
        let balance = self.compress(balance)?;
        self.commit.writes.push(BalanceWrite {
            account: changed.row.name,
            expected_version: changed.row.version,
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

/// Runs a job, or a chain of jobs (see [`blindledger_store::Db::claim_followers`]) in order, each
/// reading the balances and windows the jobs before it left in memory: an account's state
/// is compressed once, for the last job of the chain that changes it, and never
/// decompressed in between. The inputs were all read before the chain started.
pub fn compute_chain(chain: &[JobInputs]) -> Result<Vec<Computed>, OpError> {
    let mut carried = Carried::new();
    let mut jobs = Vec::with_capacity(chain.len());
    for inputs in chain {
        let mut job = compute_one(inputs, &carried)?;
        for mut changed in std::mem::take(&mut job.changed) {
            let name = changed.row.name.clone();
            if let Some((_, earlier)) = carried.remove(&name) {
                // The version compared is the one read before the chain, and a job that
                // leaves the window alone keeps the window an earlier job wrote.
                changed.row = earlier.row;
                changed.window = changed.window.or(earlier.window);
            }
            carried.insert(name, (jobs.len(), changed));
        }
        jobs.push(job);
    }
    let mut last: Vec<_> = carried.into_values().collect();
    last.sort_by(|a, b| (a.0, &a.1.row.name).cmp(&(b.0, &b.1.row.name)));
    for (index, changed) in last {
        jobs[index].write(changed)?;
    }
    Ok(jobs)
}

/// One job of a chain, reading what earlier jobs changed from `carried`.
///
/// Its programmable bootstraps are counted with tfhe's PBS counter, which is process-wide:
/// exact when the executor runs one job at a time (`fhe_parallel_jobs = 1`), the sum of
/// the jobs that overlapped it otherwise.
fn compute_one(inputs: &JobInputs, carried: &Carried) -> Result<Computed, OpError> {
    let span = tracing::info_span!(
        "fhe.compute",
        op = inputs.kind.as_str(),
        bootstraps = tracing::field::Empty
    );
    let _entered = span.enter();
    let started = Instant::now();
    let bootstraps_before = blindledger_fhe::pbs_count();
    let commit = match inputs.kind {
        JobKind::Deposit => deposit(inputs, carried),
        JobKind::Withdraw | JobKind::Transfer => movement(inputs, carried),
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

/// An account's balance: as an earlier job of the chain left it, or as stored.
fn balance(inputs: &JobInputs, carried: &Carried, row: &AccountRow) -> Result<Arc<Value>, OpError> {
    if let Some((_, changed)) = carried.get(&row.name) {
        return Ok(changed.balance.clone());
    }
    match &row.balance {
        Some(bytes) => inputs.cache.decompress(&inputs.tenant, bytes, inputs.width),
        None => Ok(Arc::new(Value::zero(inputs.width))),
    }
}

fn deposit(inputs: &JobInputs, carried: &Carried) -> Result<Computed, OpError> {
    let account = &inputs.account_a;
    let new = ops::deposit(&*balance(inputs, carried, account)?, &amount(inputs)?)?;
    let mut computed = Computed::new();
    computed.change(account, new, None);
    Ok(computed)
}

/// The outflow window an account is in now: its start, its limit, and its encrypted
/// remaining allowance (the whole limit when a new window begins).
fn window(inputs: &JobInputs, carried: &Carried) -> Result<Option<(i64, u64, Value)>, OpError> {
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
    let earlier = carried
        .get(&row.name)
        .and_then(|(_, changed)| changed.window.as_ref());
    if let Some(window) = earlier {
        // Left by an earlier job of the chain, in memory.
        let remaining = if window.start == start {
            ops::rebase_allowance(&window.remaining, width, window.base, limit)
        } else {
            ops::fresh_allowance(width, limit)
        };
        return Ok(Some((start, limit, remaining)));
    }
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

fn movement(inputs: &JobInputs, carried: &Carried) -> Result<Computed, OpError> {
    let from_row = &inputs.account_a;
    let from = balance(inputs, carried, from_row)?;
    let to = inputs
        .account_b
        .as_ref()
        .map(|row| balance(inputs, carried, row))
        .transpose()?;
    let window = window(inputs, carried)?;
    let limits = TransferLimits {
        max_amount: inputs.params.max_amount,
        window_limit: window.as_ref().map(|(_, limit, _)| *limit),
    };
    let remaining = window.as_ref().map(|(_, _, remaining)| remaining);
    let result = ops::movement(&from, to.as_deref(), &amount(inputs)?, limits, remaining)?;
    let mut computed = Computed::new();
    let window = match (window, result.window_remaining) {
        (Some((start, base, _)), Some(remaining)) => Some(Window {
            start,
            base,
            remaining,
        }),
        _ => None,
    };
    computed.change(from_row, result.from, window);
    if let (Some(row), Some(new_to)) = (&inputs.account_b, result.to) {
        computed.change(row, new_to, None);
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
