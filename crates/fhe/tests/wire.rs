//! Decoding what arrives from outside (amounts, public keys, stored values, server keys):
//! only the exact object expected, under the BlindLedger parameters and within its size
//! bound, is accepted; anything else is an error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use blindledger_fhe::wire::{self, WireError, MAX_AMOUNT_BYTES};
use blindledger_fhe::LedgerWidth;
use blindledger_test_support::TestKeys;
use tfhe::CompactCiphertextList;

fn refused<T>(result: Result<T, WireError>) -> String {
    match result {
        Ok(_) => panic!("accepted"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn an_amount_decodes_only_as_one_value_of_its_ledger_width() {
    let keys = TestKeys::shared().unwrap();
    let narrow = wire::encrypt_amount(&keys.public_key, LedgerWidth::U32, 7).unwrap();
    let wide = wire::encrypt_amount(&keys.public_key, LedgerWidth::U64, 7).unwrap();
    assert!(wire::decode_amount(&narrow, LedgerWidth::U32).is_ok());
    assert!(wire::decode_amount(&wide, LedgerWidth::U64).is_ok());
    let why = refused(wire::decode_amount(&narrow, LedgerWidth::U64));
    assert!(why.contains("for a"), "{why}");
    assert!(refused(wire::decode_amount(&wide, LedgerWidth::U32)).starts_with("amount"));

    // Two values in one list are not an amount, even of the right type.
    let two = CompactCiphertextList::builder(&keys.public_key)
        .push(1u32)
        .push(2u32)
        .build_packed();
    let two = wire::encode_amount(&two);
    assert!(refused(wire::decode_amount(&two, LedgerWidth::U32)).starts_with("amount"));

    // A value that does not fit the width is not encrypted at all.
    assert!(matches!(
        wire::encrypt_amount(&keys.public_key, LedgerWidth::U32, u64::from(u32::MAX) + 1),
        Err(WireError::AmountTooLarge(LedgerWidth::U32))
    ));
}

#[test]
fn truncated_garbage_and_oversized_inputs_are_refused() {
    let keys = TestKeys::shared().unwrap();
    let amount = wire::encrypt_amount(&keys.public_key, LedgerWidth::U32, 42).unwrap();
    let public_key = wire::encode_public_key(&keys.public_key);
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut flipped = amount.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;

    for bytes in [
        &[][..],
        &garbage[..],
        &amount[..amount.len() / 2],
        &amount[..amount.len() - 1],
        &public_key[..],
    ] {
        refused(wire::decode_amount(bytes, LedgerWidth::U32));
    }
    // A flipped bit inside the ciphertext body still decodes (it is noise to the scheme),
    // but one in the header or the lengths must not panic either way.
    let _ = wire::decode_amount(&flipped, LedgerWidth::U32);

    let oversized = vec![0u8; MAX_AMOUNT_BYTES as usize + 1];
    assert!(refused(wire::decode_amount(&oversized, LedgerWidth::U32)).contains("exceeds"));

    for bytes in [
        &[][..],
        &garbage[..],
        &public_key[..public_key.len() / 2],
        &amount[..],
    ] {
        refused(wire::decode_public_key(bytes));
        refused(wire::decode_stored(bytes));
        refused(wire::decode_compressed_server_key(bytes));
    }
    // And what was encoded decodes again.
    let decoded = wire::decode_public_key(&public_key).unwrap();
    assert_eq!(wire::encode_public_key(&decoded), public_key);
}
