//! Bearer tokens (`blindledger_gate::TokenVerifier::verify`): the token string, as it
//! follows `Bearer ` in a request's `authorization` header, checked against a fixed set
//! of two EdDSA keys.
#![no_main]

use std::sync::OnceLock;

use blindledger_gate::TokenVerifier;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static TokenVerifier {
    static VERIFIER: OnceLock<TokenVerifier> = OnceLock::new();
    VERIFIER.get_or_init(blindledger_fuzz::token_verifier)
}

fuzz_target!(|token: &str| {
    if let Ok(principal) = verifier().verify(token) {
        assert!(
            !principal.subject.is_empty(),
            "accepted a token without subject"
        );
    }
});
