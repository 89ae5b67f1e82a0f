//! OPA bundle signatures: a compact JWS in `.signatures.json` whose payload lists every
//! file of the bundle with its SHA-256 digest, signed with any algorithm OPA supports for
//! bundles (see [`crate::jose`]).

mod digest;
mod verify;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use verify::BundleVerifier;

use crate::bundle::{Bundle, SignaturesFile};
use crate::error::BundleError;
use crate::jose::{self, Algorithm};

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

/// A private key for signing bundles: RSA (RS256 by default, as OPA; RS384/512, PS256/384/512
/// on request), ECDSA P-256/P-384/P-521 (ES256/384/512), Ed25519 (EdDSA), or an HMAC secret.
pub struct SigningKey {
    inner: jose::SigningKey,
    /// The key as read or generated, for [`SigningKey::to_pem`].
    pem: SecretString,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.inner.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new Ed25519 key from the operating system's random source.
    pub fn generate() -> SigningKey {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| SecretString::from(pem.as_str()))
            .unwrap_or_else(|_| SecretString::from(""));
        SigningKey {
            inner: jose::SigningKey::ed25519(key),
            pem,
        }
    }

    /// Reads a PEM private key (PKCS#8 `PRIVATE KEY`, as `openssl genpkey` writes it; PKCS#1
    /// `RSA PRIVATE KEY`; SEC1 `EC PRIVATE KEY`), signing with the key type's default
    /// algorithm: RS256, ES256/384/512 by curve, or EdDSA.
    pub fn from_pem(pem: &str) -> Result<SigningKey, BundleError> {
        Self::from_pem_with(pem, None)
    }

    /// Like [`SigningKey::from_pem`], signing with `alg` (which must suit the key type).
    pub fn from_pem_with(pem: &str, alg: Option<Algorithm>) -> Result<SigningKey, BundleError> {
        let inner = jose::SigningKey::from_pem(pem, alg).map_err(|e| key_error(&e))?;
        Ok(SigningKey {
            inner,
            pem: SecretString::from(pem),
        })
    }

    /// An HMAC secret (at least 32 bytes) signing with HS256, HS384 or HS512. Verifiers
    /// accept it only from a JWK of type `oct` configured for the key id.
    pub fn hmac(secret: Vec<u8>, alg: Algorithm) -> Result<SigningKey, BundleError> {
        let inner = jose::SigningKey::hmac(secret, alg).map_err(|e| key_error(&e))?;
        Ok(SigningKey {
            inner,
            pem: SecretString::from(""),
        })
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm()
    }

    /// Returns the key as PEM, as read or (generated keys) PKCS#8.
    pub fn to_pem(&self) -> Result<SecretString, BundleError> {
        if self.pem.expose_secret().is_empty() {
            return Err(key_error(&"an HMAC secret has no PEM form"));
        }
        Ok(self.pem.clone())
    }

    /// Returns the public half as SPKI PEM (`-----BEGIN PUBLIC KEY-----`), the form
    /// [`BundleVerifier::new`] and OPA's `keys` configuration take.
    pub fn public_key_pem(&self) -> Result<String, BundleError> {
        self.inner
            .verification_key()
            .to_public_key_pem()
            .ok_or_else(|| key_error(&"an HMAC secret has no public key"))
    }
}

fn key_error(e: &dyn fmt::Display) -> BundleError {
    BundleError::Key {
        what: "signing key".to_string(),
        reason: e.to_string(),
    }
}

/// Signs `bundle` as `opa build --signing-key` does, replacing any `.signatures.json`.
///
/// The payload lists every file but `.signatures.json` with its SHA-256 digest (structured
/// files over their canonical JSON), plus `keyid`, `scope` (when given), `iat` and
/// `iss: "blindledger"`; the JWT header carries the key's `alg` and `kid`.
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
    // OPA's signer writes `alg` and `kid` only (no `typ`); keep the header to what it writes.
    let header = serde_json::json!({ "alg": key.algorithm().as_str(), "kid": kid });
    let payload = serde_json::to_vec(&payload).map_err(|e| BundleError::Signing(e.to_string()))?;
    let token = key
        .inner
        .sign_compact(&header, &payload)
        .map_err(|e| BundleError::Signing(e.to_string()))?;
    bundle.set_signatures(Some(SignaturesFile {
        signatures: vec![token],
        plugin: None,
    }));
    Ok(())
}
