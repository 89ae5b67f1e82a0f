//! The ledger's homomorphic operations on real keys (the cached test key set), decrypted
//! with the tenant's client key: what a key holder would read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use blindledger_fhe::ops::{self, TransferLimits, Value};
use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::{wire, FheExecutor, LedgerWidth, ServerKeyHandle};
use blindledger_keyholder::{decrypt_flag, decrypt_value, TenantKeys};
use blindledger_test_support::TestKeys;

const WIDTH: LedgerWidth = LedgerWidth::U32;

struct Fhe {
    keys: &'static TenantKeys,
    executor: FheExecutor,
    key: ServerKeyHandle,
}

impl Fhe {
    fn new() -> Self {
        let keys = TestKeys::shared().unwrap();
        let executor = FheExecutor::new(2, 1).unwrap();
        let key = executor.insert("test", &keys.server_key);
        Fhe {
            keys,
            executor,
            key,
        }
    }

    /// A value as a client submits it: encrypted under the public key, then expanded.
    fn encrypt(&self, clear: u64) -> Value {
        let wire = encrypt_amount(&self.keys.public_key, WIDTH, clear).unwrap();
        let list = wire::decode_amount(&wire, WIDTH).unwrap();
        self.executor
            .run(&self.key, || Value::expand(&list, WIDTH))
            .unwrap()
    }

    /// What the key holder reads of `value`.
    fn decrypt(&self, value: &Value) -> u64 {
        let wire = self
            .executor
            .run(&self.key, || value.to_wire(&self.keys.public_key))
            .unwrap();
        decrypt_value(&self.keys.client_key, WIDTH, &wire).unwrap()
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
    let spent = fhe.encrypt(400);
    let amount = fhe.encrypt(50);
    let limits = TransferLimits {
        max_amount: None,
        window_limit: Some(100),
    };
    let result = fhe
        .executor
        .run(&fhe.key, || {
            ops::movement(&from, Some(&to), &amount, limits, Some(&spent))
        })
        .unwrap();
    assert_eq!(fhe.decrypt(&result.moved), 0);
    let ok = fhe.executor.run(&fhe.key, || {
        let wire = ops::compress_flag(&result.ok).unwrap();
        ops::flag_to_wire(&wire).unwrap()
    });
    assert!(!decrypt_flag(&fhe.keys.client_key, &ok).unwrap());
    assert_eq!(fhe.decrypt(&result.from), 1_000);
    assert_eq!(fhe.decrypt(result.to.as_ref().unwrap()), 0);
    assert_eq!(fhe.decrypt(result.window_spent.as_ref().unwrap()), 400);
}

#[test]
fn a_window_limit_binds_at_its_edge() {
    let fhe = Fhe::new();
    let from = fhe.encrypt(1_000);
    let spent = fhe.encrypt(400);
    let limits = TransferLimits {
        max_amount: Some(200),
        window_limit: Some(500),
    };
    let run = |amount: u64| {
        let amount = fhe.encrypt(amount);
        let result = fhe
            .executor
            .run(&fhe.key, || {
                ops::movement(&from, None, &amount, limits, Some(&spent))
            })
            .unwrap();
        (
            fhe.decrypt(&result.moved),
            fhe.decrypt(result.window_spent.as_ref().unwrap()),
        )
    };
    // Exactly the rest of the window moves; one more does not.
    assert_eq!(run(100), (100, 500));
    assert_eq!(run(101), (0, 400));
}
