//! Benchmarks of BlindLedger: criterion benches (`cargo bench -p blindledger-benches`) and
//! the end-to-end load generator (`cargo run --release -p blindledger-benches --bin loadgen`).
//!
//! This library holds what both share: the raw tfhe-rs transfer sequences the ledger's
//! transfer is compared against.

use tfhe::prelude::*;
use tfhe::{FheBool, FheUint64};

#[cfg(feature = "gpu")]
pub mod gpu;

/// ERC-7984's "whitepaper" transfer: `ok = from >= amount; moved = select(ok, amount, 0);
/// from - moved; to + moved`.
pub fn erc7984_whitepaper(
    from: &FheUint64,
    to: &FheUint64,
    amount: &FheUint64,
) -> (FheUint64, FheUint64, FheBool) {
    let ok = from.ge(amount);
    let zero = FheUint64::encrypt_trivial(0u64);
    let moved = ok.select(amount, &zero);
    (from - &moved, to + &moved, ok)
}

/// The cheapest sequence measured: `ok = from >= amount; moved = if_then_zero(ok, amount)`,
/// then debit and credit in parallel. This is what the ledger runs without limits.
pub fn if_then_zero_parallel(
    from: &FheUint64,
    to: &FheUint64,
    amount: &FheUint64,
) -> (FheUint64, FheUint64, FheBool) {
    let ok = from.ge(amount);
    let moved = ok.if_then_zero(amount);
    let (f, t) = rayon::join(|| from - &moved, || to + &moved);
    (f, t, ok)
}

/// Counts the programmable bootstraps `work` runs.
pub fn count_pbs<R>(work: impl FnOnce() -> R) -> (R, u64) {
    tfhe::reset_pbs_count();
    let result = work();
    (result, tfhe::get_pbs_count())
}

/// The window check the ledger ran before it kept allowances: the outflow so far `spent`
/// plus the amount must not exceed the limit (the sum's overflow refused), then the
/// outflow grows by the amount moved. 64-bit counters throughout. Kept to compare.
pub fn outflow_window_transfer(
    from: &FheUint64,
    to: &FheUint64,
    amount: &FheUint64,
    max: u64,
    limit: u64,
    spent: &FheUint64,
) -> (FheUint64, FheUint64, FheUint64, FheBool) {
    let (covered, within) = rayon::join(
        || from.ge(amount),
        || {
            let (total, overflowed) = spent.overflowing_add(amount);
            amount.le(max) & total.le(limit) & !overflowed
        },
    );
    let ok = covered & within;
    let moved = ok.if_then_zero(amount);
    let ((f, t), s) = rayon::join(
        || rayon::join(|| from - &moved, || to + &moved),
        || spent + &moved,
    );
    (f, t, s, ok)
}
