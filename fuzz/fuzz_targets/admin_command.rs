//! Officer-signed admin commands (`blindledger_audit::admin`): the JSON body of a
//! `SignedCommand` as the audit service receives it, then
//! `OfficerKeys::authenticate` (payload parsing, officer lookup, signature, freshness
//! and target checks) against a fixed officer key and a fixed clock.
//!
//! The first byte picks the input's form. Even: the rest is the request body. Odd: the
//! rest is a payload text that is signed here with the officer's key, so that the checks
//! made after the signature (freshness, target shape) see arbitrary authentic payloads.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use blindledger_audit::admin::{OfficerKeys, SignedCommand, DEFAULT_WINDOW_MS};
use blindledger_fuzz::{officer_key_pem, officer_keys, ADMIN_NOW_MS};
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;

/// Prefix of every signed command message (the command wire format, version 1).
const DOMAIN: &[u8] = b"blindledger.admin-command.v1\0";

struct Fixture {
    officers: OfficerKeys,
    officer: ed25519_dalek::SigningKey,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        officers: officer_keys(),
        officer: ed25519_dalek::SigningKey::from_pkcs8_pem(&officer_key_pem())
            .expect("the fixed officer key is valid"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let fixture = fixture();
    let signed = if form % 2 == 0 {
        // What the audit service's JSON extractor does with the body.
        match serde_json::from_slice::<SignedCommand>(rest) {
            Ok(signed) => signed,
            Err(_) => return,
        }
    } else {
        let Ok(payload) = std::str::from_utf8(rest) else {
            return;
        };
        let signature = fixture.officer.sign(&[DOMAIN, payload.as_bytes()].concat());
        SignedCommand {
            payload: payload.to_owned(),
            signature: STANDARD.encode(signature.to_bytes()),
        }
    };
    if let Ok(payload) = fixture
        .officers
        .authenticate(&signed, ADMIN_NOW_MS, DEFAULT_WINDOW_MS)
    {
        let skew = i128::from(payload.issued_at) - i128::from(ADMIN_NOW_MS);
        assert!(
            skew.abs() <= i128::from(DEFAULT_WINDOW_MS),
            "accepted a command issued {skew} ms from the service clock"
        );
    }
});
