//! Keys, tokens and bundles made for the tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_gate::{generate_keypair, TokenVerifier};
use blindledger_policy::{sign_bundle, Bundle, BundleVerifier, SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub const ISSUER: &str = "https://auth.blindledger.test";
pub const AUDIENCE: &str = "blindledger-ledger";
pub const KID: &str = "k1";

/// A key pair and a verifier that trusts it as `k1`.
pub struct Keys {
    pub private_pem: String,
    pub public_pem: String,
    pub verifier: TokenVerifier,
}

pub fn keys() -> Keys {
    let (private_pem, public_pem) = generate_keypair().unwrap();
    let trusted = BTreeMap::from([(KID.to_string(), public_pem.clone())]);
    let verifier = TokenVerifier::new(&trusted, ISSUER, AUDIENCE).unwrap();
    Keys {
        private_pem,
        public_pem,
        verifier,
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a valid token for alice.
pub fn claims() -> Value {
    serde_json::json!({
        "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300,
        "roles": ["teller"], "tenants": ["acme"],
    })
}

/// Signs `claims` with an Ed25519 private key, naming `kid`.
pub fn ed_token(private_pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A token with an arbitrary header and signature, for algorithms we cannot sign with.
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let encode = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.{}",
        encode(header.to_string().as_bytes()),
        encode(claims.to_string().as_bytes()),
        encode(signature)
    )
}

/// The bundle signing key and a verifier requiring its signature.
pub struct BundleKeys {
    pub key: SigningKey,
    pub verifier: BundleVerifier,
}

pub fn bundle_keys() -> BundleKeys {
    let key = SigningKey::generate();
    let keys = BTreeMap::from([("ci".to_string(), key.public_key_pem().unwrap())]);
    let verifier = BundleVerifier::new(keys, None, true).unwrap();
    BundleKeys { key, verifier }
}

/// The test policy: admins are allowed, everyone else is denied with reasons; the decision
/// names `revision`, so tests can match it against the event's bundle revision.
pub fn policy(revision: &str) -> String {
    format!(
        r#"package blindledger.authz

default allow := false

allow if "admin" in input.roles

reasons contains "not an admin" if not allow

reasons contains sprintf("service region %s", [input.context.service_region]) if not allow

default obligations := {{}}

obligations := {{"max_amount": 100}} if input.resource.account == "limited"

decision := {{"allow": allow, "reasons": sort(reasons), "obligations": obligations, "revision": "{revision}"}}
"#
    )
}

/// Erases the token's tenants from logged inputs.
pub const MASK: &str = "package system.log\n\nmask contains \"/input/tenant_claims\"\n";

/// An unsigned bundle named `blindledger` with the test policy, a mask and `revision`.
pub fn policy_bundle(revision: &str) -> Bundle {
    bundle_of(
        "blindledger",
        revision,
        &["blindledger", "system"],
        &[("authz.rego", &policy(revision)), ("mask.rego", MASK)],
    )
}

pub fn bundle_of(name: &str, revision: &str, roots: &[&str], files: &[(&str, &str)]) -> Bundle {
    let mut bundle = Bundle::new(name);
    let manifest = serde_json::json!({"revision": revision, "roots": roots});
    bundle
        .insert_file(".manifest", manifest.to_string().into_bytes())
        .unwrap();
    for (path, contents) in files {
        bundle
            .insert_file(path, contents.as_bytes().to_vec())
            .unwrap();
    }
    bundle
}

/// Signs `bundle` and returns its archive bytes.
pub fn signed_tar_gz(mut bundle: Bundle, key: &SigningKey) -> Vec<u8> {
    sign_bundle(&mut bundle, key, "ci", None).unwrap();
    bundle.to_tar_gz().unwrap()
}

pub fn write(dir: &Path, file: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    path
}
