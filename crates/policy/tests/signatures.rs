//! Bundle signatures: signing and verifying with real Ed25519 keys, every rejection OPA
//! makes, and a bundle laid out as `opa build --signing-key` writes it.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_policy::{
    sign_bundle, Bundle, BundleError, BundleLimits, BundleVerifier, SignaturesFile, SigningKey,
};
use common::bundle;
use secrecy::ExposeSecret;

fn sample() -> Bundle {
    let mut b = bundle(
        "app",
        &[
            ("app/policy.rego", "package app\n\nallow if input.ok\n"),
            ("app/data.json", r#"{"limit": 5, "names": ["a", "b"]}"#),
        ],
    );
    b.insert_file(
        ".manifest",
        br#"{"revision": "r1", "roots": ["app"]}"#.to_vec(),
    )
    .unwrap();
    b
}

fn verifier(kid: &str, key: &SigningKey, scope: Option<&str>) -> BundleVerifier {
    let keys = BTreeMap::from([(kid.to_string(), key.public_key_pem().unwrap())]);
    BundleVerifier::new(keys, scope.map(str::to_string), true).unwrap()
}

fn signed(key: &SigningKey, scope: Option<&str>) -> Bundle {
    let mut b = sample();
    sign_bundle(&mut b, key, "ci", scope).unwrap();
    b
}

/// Replaces the bundle's token with one made of the given header and payload JSON and
/// signature bytes.
fn with_token(mut b: Bundle, header: &str, payload: &str, signature: &[u8]) -> Bundle {
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    );
    b.set_signatures(Some(SignaturesFile {
        signatures: vec![token],
        plugin: None,
    }));
    b
}

fn payload_of(b: &Bundle) -> String {
    let token = &b.signatures().unwrap().signatures[0];
    let part = token.split('.').nth(1).unwrap();
    String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn signed_bundle_verifies_and_survives_an_archive_round_trip() {
    let key = SigningKey::generate();
    let b = signed(&key, Some("prod"));
    verifier("ci", &key, Some("prod")).verify(&b).unwrap();

    let read =
        Bundle::from_tar_gz("app", &b.to_tar_gz().unwrap(), &BundleLimits::default()).unwrap();
    assert_eq!(read.signatures(), b.signatures());
    verifier("ci", &key, Some("prod")).verify(&read).unwrap();

    let payload: serde_json::Value = serde_json::from_str(&payload_of(&b)).unwrap();
    assert_eq!(payload["iss"], "blindledger");
    assert_eq!(payload["files"][0]["algorithm"], "SHA-256");
    let names: Vec<&str> = payload["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [".manifest", "app/data.json", "app/policy.rego"]);
}

#[test]
fn json_files_are_hashed_in_canonical_form() {
    let key = SigningKey::generate();
    let mut b = signed(&key, None);
    // Same document, different bytes: reordered keys and whitespace still verify, as in OPA.
    b.insert_file(
        "app/data.json",
        b"{ \"names\" : [\"a\",\"b\"],\n  \"limit\":5 }".to_vec(),
    )
    .unwrap();
    verifier("ci", &key, None).verify(&b).unwrap();
}

#[test]
fn unsigned_bundle_is_rejected_only_when_a_signature_is_required() {
    let key = SigningKey::generate();
    let err = verifier("ci", &key, None).verify(&sample()).unwrap_err();
    assert!(matches!(err, BundleError::Unsigned), "{err}");
    let optional = BundleVerifier::new(BTreeMap::new(), None, false).unwrap();
    optional.verify(&sample()).unwrap();
}

#[test]
fn signed_bundle_without_configured_keys_is_rejected() {
    let b = signed(&SigningKey::generate(), None);
    let err = BundleVerifier::new(BTreeMap::new(), None, false)
        .unwrap()
        .verify(&b)
        .unwrap_err();
    assert!(matches!(err, BundleError::KeysNotConfigured), "{err}");
    assert!(err.to_string().contains("verification keys not configured"));
}

#[test]
fn tampered_extra_and_missing_files_are_rejected_naming_the_file() {
    let key = SigningKey::generate();
    let v = verifier("ci", &key, None);

    let mut tampered = signed(&key, None);
    tampered
        .insert_file(
            "app/policy.rego",
            b"package app\n\nallow := true\n".to_vec(),
        )
        .unwrap();
    let err = v.verify(&tampered).unwrap_err();
    assert!(
        matches!(err, BundleError::DigestMismatch { ref path } if path == "app/policy.rego"),
        "{err}"
    );

    let mut data_changed = signed(&key, None);
    data_changed
        .insert_file(
            "app/data.json",
            br#"{"limit": 6, "names": ["a", "b"]}"#.to_vec(),
        )
        .unwrap();
    let err = v.verify(&data_changed).unwrap_err();
    assert!(err.to_string().contains("app/data.json"), "{err}");

    let mut extra = signed(&key, None);
    extra
        .insert_file("app/backdoor.rego", b"package app\n".to_vec())
        .unwrap();
    let err = v.verify(&extra).unwrap_err();
    assert!(
        matches!(err, BundleError::FileNotSigned { ref path } if path == "app/backdoor.rego"),
        "{err}"
    );

    let mut missing = signed(&key, None);
    assert!(missing.remove_file("app/data.json"));
    let err = v.verify(&missing).unwrap_err();
    assert!(
        matches!(err, BundleError::SignedFileMissing { ref paths } if paths == &["app/data.json"]),
        "{err}"
    );
}

#[test]
fn wrong_key_and_unknown_kid_are_rejected() {
    let key = SigningKey::generate();
    let other = SigningKey::generate();
    let b = signed(&key, None);
    let err = verifier("ci", &other, None).verify(&b).unwrap_err();
    assert!(
        matches!(err, BundleError::BadSignature { ref kid } if kid == "ci"),
        "{err}"
    );
    let err = verifier("prod", &key, None).verify(&b).unwrap_err();
    assert!(
        matches!(err, BundleError::UnknownKeyId { ref kid } if kid == "ci"),
        "{err}"
    );
}

#[test]
fn alg_none_and_hmac_tokens_are_rejected() {
    let key = SigningKey::generate();
    let v = verifier("ci", &key, None);
    let b = signed(&key, None);
    let payload = payload_of(&b);

    let none = with_token(b.clone(), r#"{"alg":"none","kid":"ci"}"#, &payload, b"");
    let err = v.verify(&none).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedAlgorithm { ref alg, .. } if alg == "none"),
        "{err}"
    );

    // The classic confusion: an HMAC token keyed with the (public) verification key.
    let header = jsonwebtoken::Header {
        kid: Some("ci".into()),
        ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
    };
    let secret = jsonwebtoken::EncodingKey::from_secret(key.public_key_pem().unwrap().as_bytes());
    let claims: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &secret).unwrap();
    let mut hs = b.clone();
    hs.set_signatures(Some(SignaturesFile {
        signatures: vec![token],
        plugin: None,
    }));
    let err = v.verify(&hs).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedAlgorithm { ref alg, .. } if alg == "HS256"),
        "{err}"
    );

    let garbage = with_token(b, "not json", &payload, b"x");
    assert!(matches!(
        v.verify(&garbage),
        Err(BundleError::MalformedJwt(_))
    ));
}

#[test]
fn scope_must_match_exactly() {
    let key = SigningKey::generate();
    let err = verifier("ci", &key, Some("prod"))
        .verify(&signed(&key, Some("dev")))
        .unwrap_err();
    assert!(matches!(err, BundleError::ScopeMismatch { .. }), "{err}");
    assert!(verifier("ci", &key, Some("prod"))
        .verify(&signed(&key, None))
        .is_err());
    // As in OPA, a scoped token fails where no scope is configured.
    assert!(verifier("ci", &key, None)
        .verify(&signed(&key, Some("dev")))
        .is_err());
}

#[test]
fn signatures_file_must_hold_exactly_one_default_token() {
    let key = SigningKey::generate();
    let v = verifier("ci", &key, None);
    let mut two = signed(&key, None);
    let token = two.signatures().unwrap().signatures[0].clone();
    two.set_signatures(Some(SignaturesFile {
        signatures: vec![token.clone(), token.clone()],
        plugin: None,
    }));
    assert!(matches!(
        v.verify(&two),
        Err(BundleError::SignaturesFile(_))
    ));
    let mut plugin = signed(&key, None);
    plugin.set_signatures(Some(SignaturesFile {
        signatures: vec![token],
        plugin: Some("x".into()),
    }));
    assert!(matches!(
        v.verify(&plugin),
        Err(BundleError::SignaturesFile(_))
    ));
}

#[test]
fn keys_round_trip_through_pem_and_errors_leak_no_key_material() {
    let key = SigningKey::generate();
    let pem = key.to_pem().unwrap();
    assert!(pem
        .expose_secret()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let again = SigningKey::from_pem(pem.expose_secret()).unwrap();
    assert_eq!(
        again.public_key_pem().unwrap(),
        key.public_key_pem().unwrap()
    );
    assert_eq!(format!("{key:?}"), "SigningKey { alg: EdDSA, .. }");

    let err =
        SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
    assert!(!err.to_string().contains("AAAA"), "{err}");
    // A private key is not accepted where a public key is expected.
    let keys = BTreeMap::from([("ci".to_string(), pem.expose_secret().to_string())]);
    let err = BundleVerifier::new(keys, None, true).unwrap_err();
    assert!(err.to_string().contains("verification key 'ci'"), "{err}");
    assert!(!err.to_string().contains("PRIVATE"), "{err}");
}
