//! Verification of bundle signatures, following OPA's `bundle/verify.go`.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use super::{digest, SignaturePayload, SHA256};
use crate::bundle::Bundle;
use crate::error::BundleError;
use crate::jose::{Algorithm, JoseError, VerificationKey};

/// Checks bundle signatures against configured public keys (RSA, ECDSA, Ed25519) or, when
/// configured as an `oct` JWK, HMAC secrets.
#[derive(Clone)]
pub struct BundleVerifier {
    keys: BTreeMap<String, VerificationKey>,
    scope: Option<String>,
    require_signature: bool,
}

impl fmt::Debug for BundleVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleVerifier")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("scope", &self.scope)
            .field("require_signature", &self.require_signature)
            .finish()
    }
}

/// The JWT header fields consulted before the signature is checked.
#[derive(Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    kid: Option<String>,
}

impl BundleVerifier {
    /// Creates a verifier from `kid → public key` (PEM: SPKI or PKCS#1; or a JWK, which may
    /// pin the key to one `alg`; HMAC secrets only as an `oct` JWK), the scope bundles must carry
    /// (`None`: they must carry none) and whether unsigned bundles are refused.
    pub fn new(
        keys: BTreeMap<String, String>,
        scope: Option<String>,
        require_signature: bool,
    ) -> Result<Self, BundleError> {
        let keys = keys
            .into_iter()
            .map(|(kid, text)| {
                // Parsed strictly here, so a truncated or weak key fails at start-up.
                let key = VerificationKey::parse(&text).map_err(|e| BundleError::Key {
                    what: format!("verification key '{kid}'"),
                    reason: e.to_string(),
                })?;
                Ok((kid, key))
            })
            .collect::<Result<_, BundleError>>()?;
        Ok(Self {
            keys,
            scope,
            require_signature,
        })
    }

    /// Verifies `bundle`'s signature, or accepts it unsigned when no signature is required.
    ///
    /// As in OPA: the token must be the only one, verify with the key its `kid` header (or,
    /// failing that, its deprecated `keyid` claim) names, and carry exactly the configured
    /// scope; its file list must equal the bundle's files, `.signatures.json` excluded, with
    /// every SHA-256 digest matching. The `alg` header must be one the named key's type
    /// admits (RS*/PS* for RSA, ES256/384/512 by curve, EdDSA for Ed25519, HS* only for an
    /// `oct` key), so `none` and an HMAC token keyed with a public key are refused before any
    /// signature is checked.
    pub fn verify(&self, bundle: &Bundle) -> Result<(), BundleError> {
        let Some(signatures) = bundle.signatures() else {
            return if self.require_signature {
                Err(BundleError::Unsigned)
            } else {
                Ok(())
            };
        };
        if self.keys.is_empty() {
            return Err(BundleError::KeysNotConfigured);
        }
        if let Some(plugin) = &signatures.plugin {
            let message = format!("signature plugin '{plugin}' is not supported");
            return Err(BundleError::SignaturesFile(message));
        }
        let [token] = signatures.signatures.as_slice() else {
            let message = format!(
                "expected exactly one JWT, found {}",
                signatures.signatures.len()
            );
            return Err(BundleError::SignaturesFile(message));
        };
        let payload = self.verify_token(token)?;
        let found = payload.scope.unwrap_or_default();
        let expected = self.scope.clone().unwrap_or_default();
        // OPA compares even when no scope is configured: a scoped token then fails.
        if found != expected {
            return Err(BundleError::ScopeMismatch { expected, found });
        }
        check_files(bundle, payload.files)
    }

    /// Checks the token's algorithm and signature and returns its payload.
    fn verify_token(&self, token: &str) -> Result<SignaturePayload, BundleError> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BundleError::MalformedJwt(
                "not three dot-separated parts".to_string(),
            ));
        };
        let header: JwtHeader = decode_part(header, "header")?;
        let alg_name = header.alg.unwrap_or_default();
        let alg: Algorithm = alg_name
            .parse()
            .map_err(|_| BundleError::UnsupportedAlgorithm {
                alg: alg_name.chars().take(32).collect(),
                reason: "not a JWS algorithm OPA signs bundles with".to_string(),
            })?;
        let kid = match header.kid.filter(|kid| !kid.is_empty()) {
            Some(kid) => kid,
            // Only used to pick the key; the claims are trusted after verification below.
            None => decode_part::<SignaturePayload>(claims, "payload")?
                .keyid
                .filter(|kid| !kid.is_empty())
                .ok_or(BundleError::MissingKeyId)?,
        };
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| BundleError::UnknownKeyId { kid: kid.clone() })?;
        let payload = key.verify_compact(alg, token).map_err(|e| match e {
            JoseError::AlgorithmMismatch { .. } => BundleError::UnsupportedAlgorithm {
                alg: alg.to_string(),
                reason: format!("key '{kid}' is {}", key.kind()),
            },
            _ => BundleError::BadSignature { kid: kid.clone() },
        })?;
        serde_json::from_slice(&payload).map_err(|e| {
            BundleError::MalformedJwt(format!("payload is not the expected JSON: {e}"))
        })
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, BundleError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| BundleError::MalformedJwt(format!("{what} is not base64url: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| BundleError::MalformedJwt(format!("{what} is not the expected JSON: {e}")))
}

/// Checks that the signed file list and the bundle's files are the same set with the same
/// digests.
fn check_files(bundle: &Bundle, files: Vec<super::FileDigest>) -> Result<(), BundleError> {
    let mut signed = BTreeMap::new();
    for file in files {
        let name = file.name.clone();
        if signed.insert(name.clone(), file).is_some() {
            let message = format!("file '{name}' is listed twice in the signature");
            return Err(BundleError::SignaturesFile(message));
        }
    }
    for (path, bytes) in bundle.files() {
        let Some(entry) = signed.remove(path) else {
            return Err(BundleError::FileNotSigned {
                path: path.to_string(),
            });
        };
        if entry.algorithm != SHA256 {
            let algorithm = entry.algorithm;
            return Err(BundleError::UnsupportedHash {
                path: path.to_string(),
                algorithm,
            });
        }
        let actual = digest::file_digest(path, bytes)?;
        if hex::decode(&entry.hash).ok().as_deref() != Some(actual.as_slice()) {
            return Err(BundleError::DigestMismatch {
                path: path.to_string(),
            });
        }
    }
    if !signed.is_empty() {
        return Err(BundleError::SignedFileMissing {
            paths: signed.into_keys().collect(),
        });
    }
    Ok(())
}
