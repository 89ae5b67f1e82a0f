//! Signing and verifying with every algorithm the JOSE layer supports, with keys made by
//! the `openssl` command line: each signature verifies with the matching public key, and
//! is refused once the message or the signature is changed, or under another algorithm.
//! Keys that must not be used where they are given (a private key as a verification key, a
//! public key as a signing key, a short HMAC secret, an encryption JWK) are refused.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use blindledger_policy::jose::{Algorithm, JoseError, Jwk, SigningKey, VerificationKey};

const MESSAGE: &[u8] = b"eyJhbGciOiJFUzI1NiJ9.eyJyZXZpc2lvbiI6IjQyIn0";

/// A private key in PEM made by `openssl genpkey` with `args`.
fn private_key(dir: &Path, name: &str, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .args(["-out", name])
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl genpkey {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn refused(result: Result<impl Sized, JoseError>) -> String {
    match result {
        Ok(_) => panic!("accepted"),
        Err(error) => error.to_string(),
    }
}

/// Signs with `alg`, verifies, and checks each way the signature must fail.
fn round_trip(pem: &str, alg: Algorithm, foreign: Algorithm) {
    let key = SigningKey::from_pem(pem, Some(alg)).unwrap();
    assert_eq!(key.algorithm(), alg);
    let public = key.verification_key();
    let signature = key.sign(MESSAGE);
    public.verify(alg, MESSAGE, &signature).unwrap();

    let mut changed = MESSAGE.to_vec();
    changed[0] ^= 1;
    refused(public.verify(alg, &changed, &signature));
    let mut forged = signature.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    refused(public.verify(alg, MESSAGE, &forged));
    refused(public.verify(alg, MESSAGE, &signature[..last]));
    let message = refused(public.verify(foreign, MESSAGE, &signature));
    assert!(
        message.contains("cannot be used with"),
        "{alg:?}: {message}"
    );

    // The public half travels as PEM and comes back as the same key.
    if let Some(pem) = public.to_public_key_pem() {
        let parsed = VerificationKey::parse(&pem).unwrap();
        parsed.verify(alg, MESSAGE, &signature).unwrap();
    }
}

#[test]
fn every_algorithm_signs_what_its_public_key_verifies_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = private_key(
        dir.path(),
        "rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        round_trip(&rsa, alg, Algorithm::ES256);
    }
    for (curve, alg) in [
        ("P-256", Algorithm::ES256),
        ("P-384", Algorithm::ES384),
        ("P-521", Algorithm::ES512),
    ] {
        let name = format!("{curve}.pem");
        let ec = private_key(
            dir.path(),
            &name,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
            ],
        );
        round_trip(&ec, alg, Algorithm::RS256);
        // A curve signs with its own algorithm only.
        let other = if alg == Algorithm::ES256 {
            Algorithm::ES384
        } else {
            Algorithm::ES256
        };
        assert!(SigningKey::from_pem(&ec, Some(other)).is_err(), "{curve}");
    }
    let ed = private_key(dir.path(), "ed25519.pem", &["-algorithm", "ED25519"]);
    round_trip(&ed, Algorithm::EdDSA, Algorithm::ES256);
    // Without an algorithm, each key signs with its family's first (RS256 for RSA, as OPA).
    assert_eq!(
        SigningKey::from_pem(&rsa, None).unwrap().algorithm(),
        Algorithm::RS256
    );
    assert_eq!(
        SigningKey::from_pem(&ed, None).unwrap().algorithm(),
        Algorithm::EdDSA
    );
}

#[test]
fn hmac_secrets_sign_and_verify_and_a_short_one_is_refused() {
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let key = SigningKey::hmac(vec![7u8; 64], alg).unwrap();
        let public = key.verification_key();
        let signature = key.sign(MESSAGE);
        public.verify(alg, MESSAGE, &signature).unwrap();
        refused(public.verify(alg, b"another message", &signature));
        refused(public.verify(Algorithm::RS256, MESSAGE, &signature));
    }
    let message = refused(SigningKey::hmac(vec![7u8; 8], Algorithm::HS256));
    assert!(message.contains("fewer than"), "{message}");
}

#[test]
fn keys_given_in_the_wrong_place_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ed = private_key(dir.path(), "ed25519.pem", &["-algorithm", "ED25519"]);
    let message = refused(VerificationKey::parse(&ed));
    assert!(
        message.contains("a private key where a public key is expected"),
        "{message}"
    );

    let public = SigningKey::from_pem(&ed, None)
        .unwrap()
        .verification_key()
        .to_public_key_pem()
        .unwrap();
    let message = refused(SigningKey::from_pem(&public, None));
    assert!(message.contains("not a PEM private key"), "{message}");
    let message = refused(VerificationKey::parse("not a key"));
    assert!(message.contains("not a PEM public key"), "{message}");
    let message = refused(VerificationKey::parse(&"A".repeat(1 << 20)));
    assert!(message.contains("more than the"), "{message}");
    let message = refused(SigningKey::from_pem(&"A".repeat(1 << 20), None));
    assert!(message.contains("too long"), "{message}");

    let jwk = |text: &str| -> Jwk { serde_json::from_str(text).unwrap() };
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let private = jwk(&format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","d":"{x}"}}"#
    ));
    let message = refused(VerificationKey::from_jwk(&private));
    assert!(message.contains("holds a private key"), "{message}");
    let encryption = jwk(&format!(
        r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}","use":"enc"}}"#
    ));
    let message = refused(VerificationKey::from_jwk(&encryption));
    assert!(message.contains("\"use\" is not \"sig\""), "{message}");
    let message = refused(VerificationKey::parse("{\"kty\": 5}"));
    assert!(message.contains("not a JSON Web Key"), "{message}");
}
