//! A bundle laid out byte for byte as `opa build --signing-key K --signing-alg EdDSA` writes
//! it (see `fixtures/README.md`), checked with this crate's reader, verifier and engine.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use blindledger_policy::{Bundle, BundleLimits, BundleVerifier, PolicyEngine};
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read_fixture() -> Bundle {
    let bytes = std::fs::read(fixtures().join("opa-signed-bundle.tar.gz")).unwrap();
    Bundle::from_tar_gz("fixture", &bytes, &BundleLimits::default()).unwrap()
}

fn fixture_verifier() -> BundleVerifier {
    let pem = std::fs::read_to_string(fixtures().join("opa-signing-key.pub.pem")).unwrap();
    BundleVerifier::new(BTreeMap::from([("default".to_string(), pem)]), None, true).unwrap()
}

#[test]
fn opa_built_bundle_verifies_and_decides() {
    let bundle = read_fixture();
    assert_eq!(bundle.manifest.revision, "fixture-1");
    assert_eq!(bundle.manifest.roots, ["blindledger"]);
    let paths: Vec<&str> = bundle.files().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        [".manifest", "blindledger/authz/policy.rego", "data.json"]
    );
    fixture_verifier().verify(&bundle).unwrap();

    let engine = PolicyEngine::build(&[bundle], &json!({})).unwrap();
    assert!(engine.decide(&json!({"principal": "alice"})).unwrap().allow);
    assert!(
        !engine
            .decide(&json!({"principal": "mallory"}))
            .unwrap()
            .allow
    );
}

#[test]
fn opa_built_bundle_fails_verification_once_modified() {
    let mut bundle = read_fixture();
    bundle
        .insert_file(
            "data.json",
            br#"{"blindledger":{"users":["mallory"]}}"#.to_vec(),
        )
        .unwrap();
    let err = fixture_verifier().verify(&bundle).unwrap_err();
    assert!(err.to_string().contains("data.json"), "{err}");
}

/// Regenerates the fixture with a fresh key (whose private half is then dropped):
/// `cargo test -p blindledger-policy --test opa_fixture -- --ignored regenerate`.
#[test]
#[ignore = "rewrites tests/fixtures; run by hand"]
fn regenerate() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePublicKey};
    use ed25519_dalek::Signer;
    use sha2::{Digest, Sha256};

    // What `opa build` writes: one merged root data.json (Go's encoder: compact plus a
    // newline), the modules, and the manifest.
    let data = b"{\"blindledger\":{\"users\":[\"alice\",\"bob\"]}}\n".to_vec();
    let policy = b"package blindledger.authz\n\ndefault allow := false\n\nallow if input.principal in data.blindledger.users\n\ndecision := {\"allow\": allow}\n".to_vec();
    let manifest =
        b"{\"revision\":\"fixture-1\",\"roots\":[\"blindledger\"],\"rego_version\":1}\n".to_vec();
    // Digests: the policy over its bytes; data.json and .manifest over OPA's canonical JSON
    // (keys sorted, compact), which for these documents is the text without the newline.
    let digest = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    let files = json!([
        {"name": "blindledger/authz/policy.rego", "hash": digest(&policy), "algorithm": "SHA-256"},
        {"name": "data.json", "hash": digest(&data[..data.len() - 1]), "algorithm": "SHA-256"},
        {"name": ".manifest", "hash": digest(br#"{"rego_version":1,"revision":"fixture-1","roots":["blindledger"]}"#), "algorithm": "SHA-256"},
    ]);
    // OPA's signer: protected header {alg, kid}; payload {files, keyid} from json.Marshal
    // of a map, hence sorted keys, with `keyid` set to --verification-key-id ("default").
    let header = r#"{"alg":"EdDSA","kid":"default"}"#;
    let payload = serde_json::to_string(&json!({"files": files, "keyid": "default"})).unwrap();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let signature = key.sign(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    // json.MarshalIndent(signatures, "", " ").
    let signatures = format!("{{\n \"signatures\": [\n  \"{token}\"\n ]\n}}").into_bytes();

    // Entry order and names as OPA's writer: "/data.json", modules, "/.signatures.json",
    // "/.manifest", each mode 0600 with a zero mtime.
    let entries: [(&str, &[u8]); 4] = [
        ("/data.json", &data),
        ("/blindledger/authz/policy.rego", &policy),
        ("/.signatures.json", &signatures),
        ("/.manifest", &manifest),
    ];
    let mut tar = Vec::new();
    for (name, bytes) in entries {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(bytes);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    std::fs::write(
        fixtures().join("opa-signed-bundle.tar.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(fixtures().join("opa-signing-key.pub.pem"), public).unwrap();
}
