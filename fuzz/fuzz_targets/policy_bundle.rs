//! Policy bundle archives as a bundle server serves them (`blindledger_policy::Bundle`):
//! `Bundle::from_tar_gz` with the default limits (gzip, tar entries, path sanitising,
//! `.manifest` and `.signatures.json` parsing), then what the bundle loader does with a
//! bundle it read: `BundleVerifier::verify` (JWS header, key lookup, signature, file
//! digests) against a fixed key, and the data document (`Bundle::data`).
//!
//! The first byte picks the input's form. Even: the rest is the `.tar.gz` as downloaded.
//! Odd: the rest is a tar archive, gzipped here, so that mutations reach the tar layer.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use blindledger_fuzz::{bundle_verifier, BUNDLE_NAME};
use blindledger_policy::{Bundle, BundleLimits, BundleVerifier};
use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static BundleVerifier {
    static VERIFIER: OnceLock<BundleVerifier> = OnceLock::new();
    VERIFIER.get_or_init(bundle_verifier)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let archive = if form % 2 == 0 {
        rest.to_vec()
    } else {
        gzip(rest)
    };
    let Ok(bundle) = Bundle::from_tar_gz(BUNDLE_NAME, &archive, &BundleLimits::default()) else {
        return;
    };
    let _ = verifier().verify(&bundle);
    let _ = bundle.data();
});
