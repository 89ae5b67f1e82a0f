//! Every homomorphic operation of the ledger against a plaintext model of it, on 32-bit
//! values (the narrowest ledger), with the programmable bootstraps (PBS) each one costs.
//!
//! The bootstrap counts are tfhe's own counter (`pbs-stats`) around the operation alone,
//! its inputs prepared beforehand. They depend on the operation and on tfhe's version, not
//! on the machine: the executor runs every operation on the same two threads. A change of
//! count is a change of cost, to be measured in `benches/` and written down there (the
//! 64-bit counts are in `benches/README.md`), not a flake. The tests in this file run one
//! at a time, so that no other operation's bootstraps reach the counter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;

use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::wire::{self, encrypt_amount};
use blindledger_fhe::{pbs_count, reset_pbs_count, LedgerWidth};
use common::Fhe;

const WIDTH: LedgerWidth = LedgerWidth::U32;

/// One operation at a time in this process: the bootstrap counter is process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Fhe {
    fn encrypt(&self, clear: u64) -> Value {
        self.encrypt_in(WIDTH, clear)
    }

    /// Runs `op` on the FHE threads; returns its result and the bootstraps it ran.
    fn counted<R: Send>(&self, op: impl FnOnce() -> R + Send) -> (R, u64) {
        self.executor.run(&self.key, || {
            reset_pbs_count();
            let result = op();
            (result, pbs_count())
        })
    }
}

/// Checks the bootstraps `counted` of an operation against the count `expected` of it.
fn bootstraps_are(counted: u64, expected: u64, what: &str) {
    assert_eq!(counted, expected, "bootstraps of {what}");
}

/// The plaintext model of [`ops::movement`] on a 32-bit ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Moved {
    ok: bool,
    from: u64,
    to: Option<u64>,
    moved: u64,
    remaining: Option<u64>,
}

fn model_movement(
    from: u64,
    to: Option<u64>,
    amount: u64,
    max: Option<u64>,
    remaining: Option<u64>,
) -> Moved {
    let ok = from >= amount
        && max.is_none_or(|max| amount <= max)
        && remaining.is_none_or(|left| left >= amount);
    let moved = if ok { amount } else { 0 };
    Moved {
        ok,
        from: from - moved,
        to: to.map(|to| to + moved),
        moved,
        remaining: remaining.map(|left| left - moved),
    }
}

/// One transfer or withdrawal case: balances, amount, limits, and the window's allowance
/// as (limit, already moved out).
struct Case {
    from: u64,
    to: Option<u64>,
    amount: u64,
    max: Option<u64>,
    window: Option<(u64, u64)>,
}

fn case(
    from: u64,
    to: Option<u64>,
    amount: u64,
    max: Option<u64>,
    window: Option<(u64, u64)>,
) -> Case {
    Case {
        from,
        to,
        amount,
        max,
        window,
    }
}

/// Bootstraps of a 32-bit movement, by what it does: credit an account (a transfer) or
/// not (a withdrawal), check a maximum amount, check and update a window's allowance.
fn movement_bootstraps(case: &Case) -> u64 {
    match (case.to.is_some(), case.max.is_some(), case.window.is_some()) {
        (true, false, false) => 103,
        (true, true, false) => 115,
        (true, false, true) => 159,
        (true, true, true) => 171,
        (false, false, false) => 71,
        shape => panic!("no count written down for a movement of shape {shape:?}"),
    }
}

fn check_movement(fhe: &Fhe, case: &Case) {
    let from = fhe.encrypt(case.from);
    let to = case.to.map(|to| fhe.encrypt(to));
    let amount = fhe.encrypt(case.amount);
    let allowance = case.window.map(|(limit, spent)| {
        let spent = fhe.encrypt(spent);
        fhe.executor
            .run(&fhe.key, || {
                ops::allowance_from_outflow(&spent, WIDTH, limit)
            })
            .unwrap()
    });
    let limits = TransferLimits {
        max_amount: case.max,
        window_limit: case.window.map(|(limit, _)| limit),
    };
    let (result, bootstraps) = fhe.counted(|| {
        ops::movement(&from, to.as_ref(), &amount, limits, allowance.as_ref()).unwrap()
    });
    let computed = Moved {
        ok: fhe.decrypt_flag(&result.ok),
        from: fhe.decrypt(&result.from),
        to: result.to.as_ref().map(|to| fhe.decrypt(to)),
        moved: fhe.decrypt(&result.moved),
        remaining: result
            .window_remaining
            .as_ref()
            .map(|left| fhe.decrypt(left)),
    };
    let expected = model_movement(
        case.from,
        case.to,
        case.amount,
        case.max,
        case.window
            .map(|(limit, spent)| limit.saturating_sub(spent)),
    );
    assert_eq!(
        computed, expected,
        "from {} to {:?} amount {} max {:?} window {:?}",
        case.from, case.to, case.amount, case.max, case.window
    );
    let what = format!(
        "a movement with to {:?}, max {:?}, window {:?}",
        case.to.is_some(),
        case.max,
        case.window
    );
    bootstraps_are(bootstraps, movement_bootstraps(case), &what);
}

#[test]
fn transfers_and_withdrawals_move_what_the_model_moves() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fhe = Fhe::new();
    let cases = [
        // Covered, not covered, covered to the last unit.
        case(1_000, Some(5), 300, None, None),
        case(299, Some(5), 300, None, None),
        case(300, Some(0), 300, None, None),
        // A maximum amount, at its edge and one above.
        case(1_000, Some(5), 400, Some(400), None),
        case(1_000, Some(5), 401, Some(400), None),
        // A window with 200 left: all of it, one more, and a balance that does not cover.
        case(1_000, Some(5), 200, Some(400), Some((500, 300))),
        case(1_000, Some(5), 201, Some(400), Some((500, 300))),
        case(150, Some(5), 200, None, Some((500, 300))),
        // Withdrawals: no credited account.
        case(1_000, None, 999, None, None),
        case(1_000, None, 1_001, None, None),
    ];
    for case in &cases {
        check_movement(&fhe, case);
    }
}

#[test]
fn a_deposit_adds_the_amount() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fhe = Fhe::new();
    let balance = fhe.encrypt(4_242);
    let amount = fhe.encrypt(913);
    let (sum, bootstraps) = fhe.counted(|| ops::deposit(&balance, &amount).unwrap());
    assert_eq!(fhe.decrypt(&sum), 4_242 + 913);
    bootstraps_are(bootstraps, 32, "a deposit");
}

#[test]
fn sums_count_and_differences_follow_the_model() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fhe = Fhe::new();
    let amounts: Vec<Value> = [100, 101, 50, 7_000].map(|a| fhe.encrypt(a)).to_vec();

    let (total, bootstraps) = fhe.counted(|| ops::sum(WIDTH, &amounts).unwrap());
    assert_eq!(fhe.decrypt(&total), 100 + 101 + 50 + 7_000);
    bootstraps_are(bootstraps, 61, "a sum of four");
    let (none, bootstraps) = fhe.counted(|| ops::sum::<Value>(WIDTH, &[]).unwrap());
    assert_eq!(fhe.decrypt(&none), 0);
    bootstraps_are(bootstraps, 0, "the sum of nothing is a trivial zero");

    let (flags, bootstraps) = fhe.counted(|| ops::flags_above(WIDTH, &amounts, 100).unwrap());
    let flags: Vec<u64> = flags.iter().map(|f| fhe.decrypt(f)).collect();
    assert_eq!(flags, [0, 1, 0, 1], "above 100, not at it");
    bootstraps_are(bootstraps, 44, "four comparisons");

    // Running totals wrap modulo 2^32 as the sums between them do.
    let earlier = fhe.encrypt(10);
    let later = fhe.encrypt(5);
    let (between, bootstraps) = fhe.counted(|| ops::difference(&later, &earlier).unwrap());
    assert_eq!(fhe.decrypt(&between), (1u64 << 32) - 5);
    bootstraps_are(bootstraps, 32, "a difference");
}

#[test]
fn allowances_follow_the_model_of_a_window() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fhe = Fhe::new();
    // (moved out so far, limit, allowance left)
    for (spent, limit, left) in [(100, 500, 400), (500, 500, 0), (600, 500, 0)] {
        let spent_ct = fhe.encrypt(spent);
        let (allowance, bootstraps) =
            fhe.counted(|| ops::allowance_from_outflow(&spent_ct, WIDTH, limit).unwrap());
        assert_eq!(fhe.decrypt(&allowance), left, "{spent} of {limit}");
        bootstraps_are(bootstraps, 96, "an allowance from an outflow");
    }
    // (allowance left, limit before, limit now, allowance after)
    for (left, before, now, after) in [
        (100, 500, 800, 400),
        (300, 500, 400, 200),
        (100, 500, 300, 0),
    ] {
        let left_ct = fhe.encrypt(left);
        let (rebased, bootstraps) =
            fhe.counted(|| ops::rebase_allowance(&left_ct, WIDTH, before, now));
        assert_eq!(
            fhe.decrypt(&rebased),
            after,
            "{left} left of {before}, now {now}"
        );
        // Raising adds the difference; lowering also tests for going below zero.
        let expected = if now > before { 63 } else { 96 };
        bootstraps_are(
            bootstraps,
            expected,
            &format!("a rebase from {before} to {now}"),
        );
    }
    // A fresh window holds its whole limit, clamped to the ledger's width, for free.
    let (fresh, bootstraps) = fhe.counted(|| ops::fresh_allowance(WIDTH, u64::MAX));
    assert_eq!(fhe.decrypt(&fresh), u64::from(u32::MAX));
    bootstraps_are(bootstraps, 0, "a fresh allowance");
}

#[test]
fn storage_round_trips_cost_what_they_cost() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let fhe = Fhe::new();
    let value = fhe.encrypt(123_456);
    let (stored, compress) = fhe.counted(|| value.compress().unwrap());
    let (back, decompress) = fhe.counted(|| Value::decompress(&stored, WIDTH).unwrap());
    assert_eq!(fhe.decrypt(&back), 123_456);
    bootstraps_are(compress, 0, "a compression");
    bootstraps_are(decompress, 16, "a decompression");
    let wire = encrypt_amount(&fhe.keys.public_key, WIDTH, 77).unwrap();
    let list = wire::decode_amount(&wire, WIDTH).unwrap();
    let (expanded, expand) = fhe.counted(|| Value::expand(&list, WIDTH).unwrap());
    assert_eq!(fhe.decrypt(&expanded), 77);
    bootstraps_are(expand, 16, "an expansion");
}
