//! Aggregates that do not grow with history: running totals through day boundaries.
//!
//! For each account the ledger keeps encrypted running totals of the amounts moved out
//! (`out`) and in (`in`), and of the number of amounts moved out above a threshold
//! (`above:<threshold>`, for thresholds aggregates asked for), each through a UTC midnight:
//! the sum over every transfer committed before it. An aggregate over a period that spans
//! whole days reads the totals at its first and last midnight, subtracts them, and adds
//! only the transfers of the partial days at its edges. A 30-day figure then costs the
//! same whether the account moved money ten times or ten thousand times in the period.
//!
//! Totals are folded with the multi-operand sum, once per midnight: by the first
//! aggregate that needs one, and in the background by idle workers, which bring every
//! account that moved money in the last settled days up to the latest settled midnight. A
//! midnight is settled [`SETTLE_MS`] after it passed, once no transfer can still commit
//! before it. Subtraction wraps exactly as the sum of the period would: the difference is
//! the period's sum modulo 2^width either way.

use blindledger_fhe::ops::{self, OpError, Value};
use blindledger_fhe::LedgerWidth;
use blindledger_store::{now_ms, TotalRow};

use crate::cache::ValueCache;
use crate::error::LedgerError;
use crate::ledger::Ledger;

/// One day, in milliseconds: totals are kept through UTC midnights.
pub const DAY_MS: i64 = 86_400_000;
/// How long after a midnight its totals may be folded: longer than any commit takes and
/// than the clocks of two instances differ.
pub const SETTLE_MS: i64 = 5 * 60_000;
/// How far back the background fold looks for accounts that moved money.
const FOLD_LOOKBACK_MS: i64 = 2 * DAY_MS;
/// Accounts the background fold brings up to date per pass.
const FOLD_BATCH: i64 = 16;

/// Which figure a running total adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Amounts moved out.
    Out,
    /// Amounts moved in.
    In,
    /// Amounts moved out above a threshold, counted.
    Above(u64),
}

impl Series {
    /// Name stored in `account_totals.series`.
    pub fn name(self) -> String {
        match self {
            Self::Out => "out".into(),
            Self::In => "in".into(),
            Self::Above(threshold) => format!("above:{threshold}"),
        }
    }

    fn outgoing(self) -> bool {
        !matches!(self, Self::In)
    }

    /// Width the series is counted in on a ledger of width `ledger`: counts take 32 bits
    /// whatever the ledger's width (no account makes 2^32 transfers), which halves the
    /// cost of a count on a 64-bit ledger.
    pub fn width(self, ledger: LedgerWidth) -> LedgerWidth {
        match self {
            Self::Above(_) => LedgerWidth::U32,
            Self::Out | Self::In => ledger,
        }
    }
}

/// A running total at a midnight: the latest stored total at or before it, plus the
/// transfers committed after that one and before the midnight.
#[derive(Debug, Clone)]
pub struct RunningTotal {
    /// The midnight.
    pub through_ms: i64,
    /// The stored total it starts from, if any.
    pub stored: Option<TotalRow>,
    /// Compressed amounts of the transfers after the stored total.
    pub raw: Vec<Vec<u8>>,
}

impl RunningTotal {
    /// Transfers the total covers.
    pub fn transfers(&self) -> i64 {
        self.stored.as_ref().map_or(0, |s| s.transfers) + self.raw.len() as i64
    }

    /// Whether it is stored as it is (nothing to fold).
    pub fn is_stored(&self) -> bool {
        self.raw.is_empty()
    }
}

/// What an aggregate reads before it computes.
#[derive(Debug, Clone, Default)]
pub struct AggregateInputs {
    /// `(start, end)` totals of each series when the period spans a settled midnight or
    /// more, in the order out, in, above.
    pub totals: Option<[(Series, RunningTotal, RunningTotal); 3]>,
    /// Compressed amounts moved out in the period outside the totals.
    pub edge_out: Vec<Vec<u8>>,
    /// Compressed amounts moved in in the period outside the totals.
    pub edge_in: Vec<Vec<u8>>,
}

/// The midnights an aggregate over `[from_ms, to_ms)` reads totals at, if it spans one
/// settled day or more: the first midnight at or after `from_ms` and the last settled one
/// at or before `to_ms`.
pub fn full_days(from_ms: i64, to_ms: i64, now_ms: i64) -> Option<(i64, i64)> {
    let from = from_ms.max(0);
    let first = from.checked_add(DAY_MS - 1)?.div_euclid(DAY_MS) * DAY_MS;
    let last = to_ms.min(now_ms - SETTLE_MS).div_euclid(DAY_MS) * DAY_MS;
    (first < last).then_some((first, last))
}

impl Ledger {
    /// The running total of `series` of an account at `through_ms`.
    async fn running_total(
        &self,
        tenant: &str,
        account: &str,
        series: Series,
        through_ms: i64,
    ) -> Result<RunningTotal, LedgerError> {
        let stored = self
            .db
            .total_at_or_before(tenant, account, &series.name(), through_ms)
            .await?;
        let since = stored.as_ref().map_or(0, |s| s.through_ms);
        let raw = if since < through_ms {
            self.db
                .moved_amounts(tenant, account, series.outgoing(), since, through_ms)
                .await?
        } else {
            Vec::new()
        };
        Ok(RunningTotal {
            through_ms,
            stored,
            raw,
        })
    }

    /// Reads what an aggregate of an account over `[from_ms, to_ms)` needs.
    pub(crate) async fn aggregate_inputs(
        &self,
        tenant: &str,
        account: &str,
        (from_ms, to_ms): (i64, i64),
        threshold: u64,
    ) -> Result<AggregateInputs, LedgerError> {
        let moved = |outgoing: bool, from: i64, to: i64| async move {
            if from >= to {
                return Ok(Vec::new());
            }
            self.db
                .moved_amounts(tenant, account, outgoing, from, to)
                .await
                .map_err(LedgerError::from)
        };
        let Some((first, last)) = full_days(from_ms, to_ms, now_ms()) else {
            return Ok(AggregateInputs {
                totals: None,
                edge_out: moved(true, from_ms, to_ms).await?,
                edge_in: moved(false, from_ms, to_ms).await?,
            });
        };
        let mut totals = Vec::with_capacity(3);
        for series in [Series::Out, Series::In, Series::Above(threshold)] {
            let start = self.running_total(tenant, account, series, first).await?;
            let end = self.running_total(tenant, account, series, last).await?;
            totals.push((series, start, end));
        }
        let mut edge_out = moved(true, from_ms, first).await?;
        edge_out.extend(moved(true, last, to_ms).await?);
        let mut edge_in = moved(false, from_ms, first).await?;
        edge_in.extend(moved(false, last, to_ms).await?);
        Ok(AggregateInputs {
            totals: totals.try_into().ok(),
            edge_out,
            edge_in,
        })
    }

    /// One pass of the background fold: brings up to [`FOLD_BATCH`] accounts that moved
    /// money in the last settled days up to the latest settled midnight, in every series
    /// they have. Returns the totals stored.
    pub async fn fold_totals(&self) -> Result<usize, LedgerError> {
        let midnight = (now_ms() - SETTLE_MS).div_euclid(DAY_MS) * DAY_MS;
        let accounts = self
            .db
            .accounts_to_fold(midnight - FOLD_LOOKBACK_MS, midnight, FOLD_BATCH)
            .await?;
        let mut stored = 0;
        for (tenant, account) in accounts {
            let tenant_row = self.tenant_row(&tenant).await?;
            let width = Self::width(&tenant_row)?;
            let mut series = vec![Series::Out, Series::In];
            series.extend(
                self.db
                    .total_series(&tenant, &account)
                    .await?
                    .iter()
                    .filter_map(|name| name.strip_prefix("above:")?.parse().ok())
                    .map(Series::Above),
            );
            let mut pending = Vec::new();
            for series in series {
                let total = self
                    .running_total(&tenant, &account, series, midnight)
                    .await?;
                if !total.is_stored() {
                    pending.push((series, total));
                }
            }
            let cache = self.values.clone();
            let name = tenant.clone();
            let folded = self
                .run_fhe(&tenant_row, move || {
                    pending
                        .iter()
                        .map(|(series, total)| {
                            let value = fold(&cache, &name, width, *series, total)?;
                            let row = TotalRow {
                                through_ms: total.through_ms,
                                total: value.compress()?,
                                transfers: total.transfers(),
                            };
                            cache.insert(&name, &row.total, value);
                            Ok((*series, row))
                        })
                        .collect::<Result<Vec<_>, OpError>>()
                })
                .await??;
            for (series, row) in folded {
                self.db
                    .insert_total(&tenant, &account, &series.name(), &row)
                    .await?;
                stored += 1;
            }
        }
        if stored > 0 {
            metrics::counter!("blindledger_totals_folded_total").increment(stored as u64);
        }
        Ok(stored)
    }
}

/// The value of a running total: its stored part plus its transfers (their amounts, or
/// for a count, whether each is above the threshold), in one multi-operand sum. Runs on
/// the FHE pool.
pub fn fold(
    cache: &ValueCache,
    tenant: &str,
    width: LedgerWidth,
    series: Series,
    total: &RunningTotal,
) -> Result<Value, OpError> {
    let mut parts = Vec::with_capacity(total.raw.len() + 1);
    if let Some(stored) = &total.stored {
        let stored = cache.decompress(tenant, &stored.total, series.width(width))?;
        parts.push((*stored).clone());
    }
    let amounts = total
        .raw
        .iter()
        .map(|bytes| cache.decompress(tenant, bytes, width))
        .collect::<Result<Vec<_>, _>>()?;
    match series {
        Series::Above(threshold) => {
            let flags = ops::flags_above(width, &amounts, threshold)?;
            parts.extend(flags.iter().map(|f| f.cast_to(series.width(width))));
        }
        Series::Out | Series::In => parts.extend(amounts.iter().map(|a| (**a).clone())),
    }
    ops::sum(series.width(width), &parts)
}
