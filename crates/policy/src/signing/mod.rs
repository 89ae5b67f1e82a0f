//! OPA bundle signatures: a compact JWS in `.signatures.json` whose payload lists every
//! file of the bundle with its SHA-256 digest. Only EdDSA (Ed25519) keys are used.

mod digest;
mod verify;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use verify::BundleVerifier;

use crate::bundle::{Bundle, SignaturesFile};
use crate::error::BundleError;

/// The only digest algorithm written and accepted, as OPA names it.
const SHA256: &str = "SHA-256";
/// The `iss` claim of bundles signed here.
const ISSUER: &str = "blindledger";

/// One file of the signature payload.
#[derive(Debug, Serialize, Deserialize)]
struct FileDigest {
    name: String,
    hash: String,
    algorithm: String,
}

/// The JWT payload of a bundle signature, with OPA's claim names.
#[derive(Debug, Serialize, Deserialize)]
struct SignaturePayload {
    files: Vec<FileDigest>,
    /// Deprecated in OPA in favour of the `kid` header, still written by `opa build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

/// An Ed25519 private key for signing bundles.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate() -> SigningKey {
        SigningKey {
            inner: ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey
    /// -algorithm ed25519` writes it.
    pub fn from_pem(pem: &str) -> Result<SigningKey, BundleError> {
        let inner = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| key_error(&e))?;
        Ok(SigningKey { inner })
    }

    /// Returns the key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<SecretString, BundleError> {
        let pem = self
            .inner
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| key_error(&e))?;
        Ok(SecretString::from(pem.as_str()))
    }

    /// Returns the public half as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form
    /// [`BundleVerifier::new`] and OPA's `keys` configuration take.
    pub fn public_key_pem(&self) -> Result<String, BundleError> {
        self.inner
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| key_error(&e))
    }
}

fn key_error(e: &dyn fmt::Display) -> BundleError {
    BundleError::Key {
        what: "signing key".to_string(),
        reason: e.to_string(),
    }
}

/// Signs `bundle` as `opa build --signing-alg EdDSA` does, replacing any `.signatures.json`.
///
/// The payload lists every file but `.signatures.json` with its SHA-256 digest (structured
/// files over their canonical JSON), plus `keyid`, `scope` (when given), `iat` and
/// `iss: "blindledger"`; the JWT header carries `alg: EdDSA` and `kid`.
pub fn sign_bundle(
    bundle: &mut Bundle,
    key: &SigningKey,
    kid: &str,
    scope: Option<&str>,
) -> Result<(), BundleError> {
    let files = bundle
        .files()
        .map(|(path, bytes)| {
            Ok(FileDigest {
                name: path.to_string(),
                hash: hex::encode(digest::file_digest(path, bytes)?),
                algorithm: SHA256.to_string(),
            })
        })
        .collect::<Result<Vec<_>, BundleError>>()?;
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let payload = SignaturePayload {
        files,
        keyid: Some(kid.to_string()),
        scope: scope.map(str::to_string),
        iat: Some(iat),
        iss: Some(ISSUER.to_string()),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    // OPA's signer writes no `typ`; keep the header to what it writes.
    header.typ = None;
    header.kid = Some(kid.to_string());
    let der = key.inner.to_pkcs8_der().map_err(|e| key_error(&e))?;
    let encoding_key = EncodingKey::from_ed_der(der.as_bytes());
    let token = jsonwebtoken::encode(&header, &payload, &encoding_key)
        .map_err(|e| BundleError::Signing(e.to_string()))?;
    bundle.set_signatures(Some(SignaturesFile {
        signatures: vec![token],
        plugin: None,
    }));
    Ok(())
}
