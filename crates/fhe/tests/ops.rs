//! The ledger's homomorphic operations on real keys (the cached test key set), decrypted
//! with the tenant's client key: what a key holder would read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::decrypt_value;
use common::Fhe;

const WIDTH: LedgerWidth = LedgerWidth::U32;

impl Fhe {
    fn encrypt(&self, clear: u64) -> Value {
        self.encrypt_in(WIDTH, clear)
    }

    /// The allowance left in a window of `limit` after `spent` moved out.
    fn allowance(&self, width: LedgerWidth, limit: u64, spent: u64) -> Value {
        let spent = self.encrypt_in(width, spent);
        self.executor
            .run(&self.key, || {
                ops::allowance_from_outflow(&spent, width, limit)
            })
            .unwrap()
    }
}

#[test]
fn a_trivial_zero_reaches_the_key_holder_as_a_fresh_encryption() {
    let fhe = Fhe::new();
    let zero = fhe.executor.run(&fhe.key, || Value::zero(WIDTH));
    let wire = fhe
        .executor
        .run(&fhe.key, || zero.to_wire(&fhe.keys.public_key))
        .unwrap();
    // The client's conformance check (degree and noise level included) accepts it.
    assert_eq!(
        decrypt_value(&fhe.keys.client_key, WIDTH, &wire).unwrap(),
        0
    );
    let again = fhe
        .executor
        .run(&fhe.key, || zero.to_wire(&fhe.keys.public_key))
        .unwrap();
    assert_ne!(wire, again, "each read is a fresh encryption");
}

#[test]
fn a_window_limit_lowered_below_the_outflow_stops_every_transfer() {
    let fhe = Fhe::new();
    let from = fhe.encrypt(1_000);
    let to = fhe.encrypt(0);
    // 400 already moved out in this window; the limit was 500 and is now 100.
    let at_500 = fhe.allowance(WIDTH, 500, 400);
    assert_eq!(fhe.decrypt(&at_500), 100);
    let remaining = fhe
        .executor
        .run(&fhe.key, || ops::rebase_allowance(&at_500, WIDTH, 500, 100));
    assert_eq!(fhe.decrypt(&remaining), 0, "floored at zero, not wrapped");
    let amount = fhe.encrypt(50);
    let limits = TransferLimits {
        max_amount: None,
        window_limit: Some(100),
    };
    let result = fhe
        .executor
        .run(&fhe.key, || {
            ops::movement(&from, Some(&to), &amount, limits, Some(&remaining))
        })
        .unwrap();
    assert_eq!(fhe.decrypt(&result.moved), 0);
    assert!(!fhe.decrypt_flag(&result.ok));
    assert_eq!(fhe.decrypt(&result.from), 1_000);
    assert_eq!(fhe.decrypt(result.to.as_ref().unwrap()), 0);
    assert_eq!(fhe.decrypt(result.window_remaining.as_ref().unwrap()), 0);
}

#[test]
fn a_window_limit_binds_at_its_edge() {
    let fhe = Fhe::new();
    let from = fhe.encrypt(1_000);
    let remaining = fhe.allowance(WIDTH, 500, 400);
    let limits = TransferLimits {
        max_amount: Some(200),
        window_limit: Some(500),
    };
    let run = |amount: u64| {
        let amount = fhe.encrypt(amount);
        let result = fhe
            .executor
            .run(&fhe.key, || {
                ops::movement(&from, None, &amount, limits, Some(&remaining))
            })
            .unwrap();
        (
            fhe.decrypt(&result.moved),
            fhe.decrypt(result.window_remaining.as_ref().unwrap()),
        )
    };
    // Exactly the rest of the window moves; one more does not.
    assert_eq!(run(100), (100, 0));
    assert_eq!(run(101), (0, 100));
}

#[test]
fn allowances_follow_limit_changes_and_outflows_past_the_limit() {
    let fhe = Fhe::new();
    let at_500 = fhe.allowance(WIDTH, 500, 400);
    let raised = fhe
        .executor
        .run(&fhe.key, || ops::rebase_allowance(&at_500, WIDTH, 500, 800));
    assert_eq!(
        fhe.decrypt(&raised),
        400,
        "a raised limit adds its difference"
    );
    let lowered = fhe
        .executor
        .run(&fhe.key, || ops::rebase_allowance(&at_500, WIDTH, 500, 450));
    assert_eq!(fhe.decrypt(&lowered), 50);
    assert_eq!(fhe.decrypt(&fhe.allowance(WIDTH, 500, 600)), 0);
    let fresh = fhe
        .executor
        .run(&fhe.key, || ops::fresh_allowance(WIDTH, 300));
    assert_eq!(fhe.decrypt(&fresh), 300);
}

/// On a 64-bit ledger a limit below 2^32 is counted on 32 bits. An amount whose low 32
/// bits fit the allowance but whose high bits do not must still be refused.
#[test]
fn a_narrow_allowance_refuses_an_amount_above_32_bits() {
    let fhe = Fhe::new();
    let wide = LedgerWidth::U64;
    let from = fhe.encrypt_in(wide, 1 << 40);
    let remaining = fhe.allowance(wide, 500, 400);
    assert_eq!(remaining.width(), LedgerWidth::U32, "a 32-bit counter");
    let limits = TransferLimits {
        max_amount: None,
        window_limit: Some(500),
    };
    let run = |amount: u64| {
        let amount = fhe.encrypt_in(wide, amount);
        let result = fhe
            .executor
            .run(&fhe.key, || {
                ops::movement(&from, None, &amount, limits, Some(&remaining))
            })
            .unwrap();
        (
            fhe.decrypt(&result.moved),
            fhe.decrypt(&result.from),
            fhe.decrypt(result.window_remaining.as_ref().unwrap()),
        )
    };
    assert_eq!(run((1 << 32) + 10), (0, 1 << 40, 100));
    assert_eq!(run(10), (10, (1 << 40) - 10, 90));
}

#[test]
fn an_allowance_of_another_width_or_without_its_limit_is_refused() {
    let fhe = Fhe::new();
    let from = fhe.encrypt(1_000);
    let amount = fhe.encrypt(1);
    let remaining = fhe.allowance(WIDTH, 500, 0);
    let refused = |limits: TransferLimits, remaining: &Value| {
        fhe.executor
            .run(&fhe.key, || {
                ops::movement(&from, None, &amount, limits, Some(remaining))
            })
            .is_err()
    };
    assert!(refused(TransferLimits::default(), &remaining));
    let wide = fhe.allowance(LedgerWidth::U64, 1 << 40, 0);
    assert!(refused(
        TransferLimits {
            max_amount: None,
            window_limit: Some(500),
        },
        &wide,
    ));
}

/// A transfer's results are conformant as computed, so a ledger can keep them in memory
/// and hand them to a key holder without decompressing them again.
#[test]
fn transfer_results_are_conformant_as_computed() {
    let fhe = Fhe::new();
    let from = fhe.encrypt(1_000);
    let to = fhe.encrypt(5);
    let amount = fhe.encrypt(300);
    let remaining = fhe.allowance(WIDTH, 500, 100);
    let limits = TransferLimits {
        max_amount: Some(400),
        window_limit: Some(500),
    };
    let result = fhe
        .executor
        .run(&fhe.key, || {
            ops::movement(&from, Some(&to), &amount, limits, Some(&remaining))
        })
        .unwrap();
    assert!(result.from.is_conformant());
    assert!(result.to.as_ref().unwrap().is_conformant());
    assert!(result.moved.is_conformant());
    assert!(result.window_remaining.as_ref().unwrap().is_conformant());
    let deposited = fhe
        .executor
        .run(&fhe.key, || ops::deposit(&from, &amount))
        .unwrap();
    assert!(deposited.is_conformant());
}

/// Counts are kept on 32 bits and read in the ledger's width: the widened value (its high
/// blocks trivial zeros) is read by a key holder, directly and after storage.
#[test]
fn a_count_kept_on_32_bits_reads_as_a_64_bit_value() {
    let fhe = Fhe::new();
    let narrow = fhe.encrypt_in(LedgerWidth::U32, 7);
    let count = fhe
        .executor
        .run(&fhe.key, || narrow.cast_to(LedgerWidth::U64));
    assert_eq!(count.width(), LedgerWidth::U64);
    assert_eq!(fhe.decrypt(&count), 7);
    let stored = fhe.executor.run(&fhe.key, || count.compress()).unwrap();
    let back = fhe
        .executor
        .run(&fhe.key, || Value::decompress(&stored, LedgerWidth::U64))
        .unwrap();
    assert_eq!(fhe.decrypt(&back), 7);
}
