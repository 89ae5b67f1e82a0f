//! Bundles signed with every algorithm OPA signs bundles with, produced independently of this
//! crate: keys and signatures come from the `openssl` command line, the `.signatures.json`
//! token and the archive are assembled here by hand as OPA's documentation describes them
//! ("Signing" in the bundle docs: a JWS whose payload lists each file's SHA-256, `.manifest`
//! and `data.json` hashed over their canonical JSON, header `alg` and `kid`). Each verifies with
//! the public key as SPKI PEM, as PKCS#1 PEM (RSA) and as a JWK; a tampered file or signature
//! fails; a key never verifies a token of another key type's algorithm.

// Helpers outside #[test] functions unwrap too: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_policy::{Bundle, BundleError, BundleLimits, BundleVerifier};
use sha2::{Digest, Sha256};

const MANIFEST: &str = r#"{"revision":"opa-1","roots":["example"]}"#;
const DATA: &str = r#"{"example":{"limit":10}}"#;
const POLICY: &str = "package example\n\nallow if input.amount < data.example.limit\n";
const FILES: [(&str, &str); 3] = [
    (".manifest", MANIFEST),
    ("data.json", DATA),
    ("example/policy.rego", POLICY),
];

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A private key made by `openssl genpkey`, with its SPKI public half.
struct Key {
    private: &'static str,
    public_pem: String,
}

fn genpkey(dir: &Path, name: &'static str, args: &[&str]) -> Key {
    let mut all = vec!["genpkey", "-out", name];
    all.extend_from_slice(args);
    openssl(dir, &all);
    let public = openssl(dir, &["pkey", "-in", name, "-pubout"]);
    Key {
        private: name,
        public_pem: String::from_utf8(public).unwrap(),
    }
}

fn hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Signs `message` as JWS `alg` wants it, with openssl only.
fn sign(dir: &Path, key: &Key, alg: &str, message: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("message"), message).unwrap();
    let digest = format!("-sha{}", &alg[2..]);
    match &alg[..2] {
        "RS" => openssl(dir, &["dgst", &digest, "-sign", key.private, "message"]),
        // RFC 7518 3.5: MGF1 with the same hash, salt as long as the hash.
        "PS" => openssl(
            dir,
            &[
                "dgst",
                &digest,
                "-sign",
                key.private,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-sigopt",
                &format!("rsa_mgf1_md:sha{}", &alg[2..]),
                "message",
            ],
        ),
        "ES" => {
            let size = match alg {
                "ES256" => 32,
                "ES384" => 48,
                _ => 66,
            };
            let der = openssl(dir, &["dgst", &digest, "-sign", key.private, "message"]);
            der_to_raw(&der, size)
        }
        "Ed" => openssl(
            dir,
            &[
                "pkeyutl",
                "-sign",
                "-inkey",
                key.private,
                "-rawin",
                "-in",
                "message",
            ],
        ),
        other => panic!("no producer for {other}"),
    }
}

/// An ECDSA signature as openssl writes it (DER `SEQUENCE { INTEGER r, INTEGER s }`) to
/// the fixed-size `r || s` JWS uses (RFC 7518 3.4).
fn der_to_raw(der: &[u8], size: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30);
    // The sequence length is one byte, or 0x81 and one byte for P-521.
    let mut at = if der[1] == 0x81 { 3 } else { 2 };
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 0x02);
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(size)..];
        out.extend(std::iter::repeat_n(0, size - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

/// Writes the bundle's files, signs them with `alg` and packs them with `tar`.
fn produce(dir: &Path, key: &Key, alg: &str, kid: &str) -> Bundle {
    let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload())
    );
    let signature = sign(dir, key, alg, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    pack(dir, &FILES, &token)
}

/// The signature's payload: every file with its SHA-256. The JSON files are written
/// canonically (sorted keys, no spaces), so hashing their bytes is hashing their canonical
/// form.
fn payload() -> String {
    let listed: Vec<serde_json::Value> = FILES
        .iter()
        .map(|(name, text)| {
            serde_json::json!({"name": name, "hash": hash(text.as_bytes()), "algorithm": "SHA-256"})
        })
        .collect();
    serde_json::json!({ "files": listed }).to_string()
}

fn pack(dir: &Path, files: &[(&str, &str)], token: &str) -> Bundle {
    let root = dir.join("bundle");
    let _ = std::fs::remove_dir_all(&root);
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        root.join(".signatures.json"),
        serde_json::json!({ "signatures": [token] }).to_string(),
    )
    .unwrap();
    let status = Command::new("tar")
        .args(["czf", "../bundle.tar.gz", "."])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let bytes = std::fs::read(dir.join("bundle.tar.gz")).unwrap();
    Bundle::from_tar_gz("example", &bytes, &BundleLimits::default()).unwrap()
}

fn verifier(kid: &str, key_text: &str) -> BundleVerifier {
    BundleVerifier::new(
        BTreeMap::from([(kid.to_string(), key_text.to_string())]),
        None,
        true,
    )
    .unwrap()
}

/// The JWK of a public key, its parameters read from openssl's DER output.
fn jwk(dir: &Path, key: &Key, alg: &str) -> String {
    let der = openssl(
        dir,
        &["pkey", "-in", key.private, "-pubout", "-outform", "DER"],
    );
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let json = match &alg[..2] {
        "RS" | "PS" => {
            let text = openssl(dir, &["rsa", "-in", key.private, "-noout", "-modulus"]);
            let text = String::from_utf8(text).unwrap();
            let modulus = hex::decode(text.trim().trim_start_matches("Modulus=")).unwrap();
            serde_json::json!({"kty": "RSA", "n": b64(&modulus), "e": b64(&[1, 0, 1])})
        }
        "ES" => {
            let (crv, size) = match alg {
                "ES256" => ("P-256", 32),
                "ES384" => ("P-384", 48),
                _ => ("P-521", 66),
            };
            // The SPKI ends with the uncompressed point 04 || x || y.
            let point = &der[der.len() - 2 * size..];
            serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&point[..size]), "y": b64(&point[size..])})
        }
        _ => serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&der[der.len() - 32..])}),
    };
    json.to_string()
}

#[test]
fn bundles_signed_by_an_independent_producer_verify_with_every_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let rsa = genpkey(
        dir,
        "rsa.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let p256 = genpkey(
        dir,
        "p256.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p384 = genpkey(
        dir,
        "p384.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let p521 = genpkey(
        dir,
        "p521.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    );
    let ed = genpkey(dir, "ed.pem", &["-algorithm", "ed25519"]);
    let pkcs1 = String::from_utf8(openssl(
        dir,
        &["rsa", "-in", "rsa.pem", "-RSAPublicKey_out"],
    ))
    .unwrap();
    let cases: [(&str, &Key); 10] = [
        ("RS256", &rsa),
        ("RS384", &rsa),
        ("RS512", &rsa),
        ("PS256", &rsa),
        ("PS384", &rsa),
        ("PS512", &rsa),
        ("ES256", &p256),
        ("ES384", &p384),
        ("ES512", &p521),
        ("EdDSA", &ed),
    ];
    for (alg, key) in cases {
        let bundle = produce(dir, key, alg, "ci");
        verifier("ci", &key.public_pem)
            .verify(&bundle)
            .unwrap_or_else(|e| panic!("{alg} with an SPKI key: {e}"));
        let jwk = jwk(dir, key, alg);
        verifier("ci", &jwk)
            .verify(&bundle)
            .unwrap_or_else(|e| panic!("{alg} with a JWK: {e}"));
        if alg.starts_with('R') || alg.starts_with('P') {
            verifier("ci", &pkcs1)
                .verify(&bundle)
                .unwrap_or_else(|e| panic!("{alg} with a PKCS#1 key: {e}"));
        }

        // A changed policy file: its digest no longer matches.
        let mut tampered = bundle.clone();
        tampered
            .insert_file(
                "example/policy.rego",
                b"package example\n\nallow := true\n".to_vec(),
            )
            .unwrap();
        let err = verifier("ci", &key.public_pem)
            .verify(&tampered)
            .unwrap_err();
        assert!(
            matches!(err, BundleError::DigestMismatch { ref path } if path == "example/policy.rego"),
            "{alg}: {err}"
        );

        // A changed signature: one bit of the last signature byte flipped.
        let token = &bundle.signatures().unwrap().signatures[0];
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        *sig.last_mut().unwrap() ^= 1;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        let forged = pack(dir, &FILES, &forged);
        let err = verifier("ci", &key.public_pem).verify(&forged).unwrap_err();
        assert!(
            matches!(err, BundleError::BadSignature { ref kid } if kid == "ci"),
            "{alg}: {err}"
        );
    }
}

#[test]
fn a_key_verifies_only_its_own_algorithms() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let p256 = genpkey(
        dir,
        "p256.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let p384 = genpkey(
        dir,
        "p384.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let ed = genpkey(dir, "ed.pem", &["-algorithm", "ed25519"]);
    // A P-384 signature presented as ES256 under a P-256 key id, and an EdDSA token under an
    // EC key: refused on the algorithm, before any signature check.
    let bundle = produce(dir, &p384, "ES384", "ci");
    let err = verifier("ci", &p256.public_pem)
        .verify(&bundle)
        .unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedAlgorithm { ref alg, ref reason } if alg == "ES384" && reason.contains("P-256")),
        "{err}"
    );
    let bundle = produce(dir, &ed, "EdDSA", "ci");
    let err = verifier("ci", &p256.public_pem)
        .verify(&bundle)
        .unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedAlgorithm { .. }),
        "{err}"
    );

    // A JWK's `alg` pins the key to that algorithm.
    let mut pinned: serde_json::Value = serde_json::from_str(&jwk(dir, &p256, "ES256")).unwrap();
    pinned["alg"] = "ES256".into();
    let bundle = produce(dir, &p256, "ES256", "ci");
    verifier("ci", &pinned.to_string()).verify(&bundle).unwrap();
    pinned["alg"] = "ES384".into();
    let err = BundleVerifier::new(
        BTreeMap::from([("ci".to_string(), pinned.to_string())]),
        None,
        true,
    )
    .unwrap_err();
    assert!(matches!(err, BundleError::Key { .. }), "{err}");
}

#[test]
fn hmac_is_accepted_only_from_a_configured_secret() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let secret = [7u8; 32];
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"ci"}"#),
        URL_SAFE_NO_PAD.encode(payload())
    );
    std::fs::write(dir.join("message"), &input).unwrap();
    let mac = openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-mac",
            "HMAC",
            "-macopt",
            &format!("hexkey:{}", hex::encode(secret)),
            "-binary",
            "message",
        ],
    );
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
    let bundle = pack(dir, &FILES, &token);
    let oct = serde_json::json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(secret)}).to_string();
    verifier("ci", &oct).verify(&bundle).unwrap();

    // The same kid configured with a public key: an HS256 token is refused, whatever its MAC.
    let ed = genpkey(dir, "ed.pem", &["-algorithm", "ed25519"]);
    let err = verifier("ci", &ed.public_pem).verify(&bundle).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsupportedAlgorithm { .. }),
        "{err}"
    );

    // Short secrets and weak RSA keys are refused when configured.
    let short =
        serde_json::json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([7u8; 16])}).to_string();
    let weak = genpkey(
        dir,
        "weak.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    );
    for text in [short, weak.public_pem] {
        let err = BundleVerifier::new(BTreeMap::from([("ci".to_string(), text)]), None, true)
            .unwrap_err();
        assert!(matches!(err, BundleError::Key { .. }), "{err}");
    }
}
