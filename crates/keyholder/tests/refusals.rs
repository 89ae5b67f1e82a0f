//! What the key holder refuses: key files that are missing or not keys, and ciphertexts
//! handed back for decryption that are not one of the ledger's values. Each refusal names
//! what was wrong and decrypts nothing; no key material is ever formatted.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::LedgerWidth;
use blindledger_keyholder::{decrypt_flag, decrypt_value, KeyError, TenantKeys};
use blindledger_test_support::TestKeys;

fn refused<T>(result: Result<T, KeyError>) -> String {
    match result {
        Ok(_) => panic!("accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn saved_keys_load_back_and_a_missing_or_foreign_file_is_refused_by_name() {
    let keys = TestKeys::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("acme");
    keys.save(&saved).unwrap();
    let loaded = TenantKeys::load(&saved).unwrap();
    // An amount as a client sends it (a compact list) is not a value the ledger returns.
    let wire = encrypt_amount(&loaded.public_key, LedgerWidth::U32, 4_242).unwrap();
    let message = refused(decrypt_value(&loaded.client_key, LedgerWidth::U32, &wire));
    assert!(message.starts_with("encrypted value: "), "{message}");

    // Garbage in place of the client key: refused as a client key, nothing loaded.
    std::fs::write(saved.join("client.key"), b"not a key").unwrap();
    let message = refused(TenantKeys::load(&saved));
    assert!(message.starts_with("client key: "), "{message}");

    // A missing public key: the path is named.
    keys.save(&saved).unwrap();
    std::fs::remove_file(saved.join("public.key")).unwrap();
    let message = refused(TenantKeys::load(&saved));
    assert!(message.contains("public.key"), "{message}");

    // The server key in place of the public key: refused as a public key.
    std::fs::copy(saved.join("server.key"), saved.join("public.key")).unwrap();
    let message = refused(TenantKeys::load(&saved));
    assert!(message.starts_with("public key"), "{message}");
}

#[test]
fn values_and_flags_that_are_not_the_ledgers_are_refused() {
    let keys = TestKeys::shared().unwrap();
    for bytes in [&b""[..], b"garbage", &[0u8; 4096][..]] {
        let message = refused(decrypt_value(&keys.client_key, LedgerWidth::U64, bytes));
        assert!(message.starts_with("encrypted value: "), "{message}");
        let message = refused(decrypt_flag(&keys.client_key, bytes));
        assert!(message.starts_with("encrypted flag: "), "{message}");
    }
}

#[test]
fn formatting_keys_shows_no_key_material() {
    let keys = TestKeys::shared().unwrap();
    assert_eq!(format!("{keys:?}"), "TenantKeys(..)");
}
