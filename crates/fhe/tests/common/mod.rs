//! Real keys (the cached test key set) on an executor of two FHE threads: values encrypted
//! as a client submits them, and read back as the key holder reads them.

#![allow(dead_code)] // Each test file uses part of it.

use blindledger_fhe::ops::{self, Value};
use blindledger_fhe::wire::{self, encrypt_amount};
use blindledger_fhe::{FheExecutor, LedgerWidth, ServerKeyHandle};
use blindledger_keyholder::{decrypt_flag, decrypt_value, TenantKeys};
use blindledger_test_support::TestKeys;

pub struct Fhe {
    pub keys: &'static TenantKeys,
    pub executor: FheExecutor,
    pub key: ServerKeyHandle,
}

impl Fhe {
    pub fn new() -> Self {
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
    pub fn encrypt_in(&self, width: LedgerWidth, clear: u64) -> Value {
        let wire = encrypt_amount(&self.keys.public_key, width, clear).unwrap();
        let list = wire::decode_amount(&wire, width).unwrap();
        self.executor
            .run(&self.key, || Value::expand(&list, width))
            .unwrap()
    }

    /// What the key holder reads of `value`.
    pub fn decrypt(&self, value: &Value) -> u64 {
        let wire = self
            .executor
            .run(&self.key, || value.to_wire(&self.keys.public_key))
            .unwrap();
        decrypt_value(&self.keys.client_key, value.width(), &wire).unwrap()
    }

    /// What the key holder reads of `flag`.
    pub fn decrypt_flag(&self, flag: &tfhe::FheBool) -> bool {
        let wire = self.executor.run(&self.key, || {
            let wire = ops::compress_flag(flag).unwrap();
            ops::flag_to_wire(&wire).unwrap()
        });
        decrypt_flag(&self.keys.client_key, &wire).unwrap()
    }
}
