//! Ciphertext envelopes as clients send them (`blindledger_fhe::wire`): input amounts for
//! both ledger widths, tenants' compact public keys and compressed server keys, each
//! decoded with its size limit and conformance check. The first byte picks the decoder,
//! the rest is the serialized object.
#![no_main]

use blindledger_fhe::{wire, LedgerWidth};
use libfuzzer_sys::fuzz_target;

/// Longest object tried: past the amount limit (64 KiB), so that check is reached, and
/// well below the key limits, so runs stay about decoding rather than large copies.
const MAX_OBJECT_BYTES: usize = 96 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&decoder, bytes)) = data.split_first() else {
        return;
    };
    if bytes.len() > MAX_OBJECT_BYTES {
        return;
    }
    match decoder % 4 {
        0 => {
            let _ = wire::decode_amount(bytes, LedgerWidth::U32);
        }
        1 => {
            let _ = wire::decode_amount(bytes, LedgerWidth::U64);
        }
        2 => {
            let _ = wire::decode_public_key(bytes);
        }
        _ => {
            let _ = wire::decode_compressed_server_key(bytes);
        }
    }
});
