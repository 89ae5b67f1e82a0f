//! JWS signatures with every algorithm OPA signs bundles with: RS256/384/512, PS256/384/512,
//! ES256/384/512, EdDSA (Ed25519), and HS256/384/512 for keys configured as shared secrets.
//!
//! Written on RustCrypto's primitives rather than through `jsonwebtoken`: that crate has no
//! ES512 (P-521), which OPA accepts, and reads PEM keys leniently (a truncated key only fails
//! when used). Here every key is parsed strictly when configured, each key type admits only
//! its own algorithms, and one code path covers all thirteen.
//!
//! Keys are read from PEM (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`; private keys as PKCS#8
//! `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`) or from a JWK (RFC 7517).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use hmac::{Hmac, Mac};
use p521::elliptic_curve::sec1::ToEncodedPoint;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};
use signature::{RandomizedSigner, SignatureEncoding, Signer, Verifier};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;
/// Shortest HMAC secret accepted, in bytes (RFC 7518, 3.2: at least the hash output).
pub const MIN_HMAC_BYTES: usize = 32;
/// Longest key text read (PEM or JWK); a 16384-bit RSA key in PEM is about 3 KB.
pub const MAX_KEY_TEXT: usize = 16 * 1024;

/// A JWS algorithm (RFC 7518), as named in a JWT header's `alg`.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt).
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

impl Algorithm {
    /// Every algorithm, in the order of RFC 7518 (EdDSA last but HMAC).
    pub const ALL: [Algorithm; 13] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
    ];

    /// The name as written in `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JoseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| JoseError::UnsupportedAlgorithm(truncate(s)))
    }
}

/// Why a key or a signature was refused. Messages never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// The key text is not a key of a supported type, or is too weak.
    #[error("{0}")]
    Key(String),
    /// `alg` names no supported algorithm.
    #[error("unsupported signature algorithm '{0}'")]
    UnsupportedAlgorithm(String),
    /// The algorithm is not one the key may be used with.
    #[error("algorithm {alg} cannot be used with {key}")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The key's kind, e.g. "a P-256 key".
        key: String,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
}

fn truncate(value: &str) -> String {
    value.chars().take(32).collect()
}

fn key_error(reason: impl fmt::Display) -> JoseError {
    JoseError::Key(reason.to_string())
}

/// A public key (or, for HS*, a shared secret) that verifies signatures.
#[derive(Clone)]
pub struct VerificationKey {
    key: PublicKey,
    /// The one algorithm a JWK's `alg` allows; otherwise every algorithm of the key type.
    pinned: Option<Algorithm>,
}

#[derive(Clone)]
enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Hmac(Vec<u8>),
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kind", &self.kind())
            .field("pinned", &self.pinned)
            .finish()
    }
}

impl VerificationKey {
    /// Reads a public key from PEM or from a JWK (text starting with `{`).
    pub fn parse(text: &str) -> Result<Self, JoseError> {
        if text.len() > MAX_KEY_TEXT {
            return Err(key_error(format!(
                "key text is {} bytes, more than the {MAX_KEY_TEXT} accepted",
                text.len()
            )));
        }
        let text = text.trim();
        if text.starts_with('{') {
            let jwk: Jwk = serde_json::from_str(text)
                .map_err(|e| key_error(format!("not a JSON Web Key: {e}")))?;
            Self::from_jwk(&jwk)
        } else {
            Self::from_pem(text)
        }
    }

    /// Reads an SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) PEM public key.
    pub fn from_pem(pem: &str) -> Result<Self, JoseError> {
        let key = if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
            PublicKey::Rsa(RsaPublicKey::from_pkcs1_pem(pem).map_err(key_error)?)
        } else if pem.contains("-----BEGIN PUBLIC KEY-----") {
            spki_public_key(pem)?
        } else if pem.contains("PRIVATE KEY-----") {
            return Err(key_error(
                "a private key where a public key is expected (configure the public half)",
            ));
        } else {
            return Err(key_error(
                "not a PEM public key (expected -----BEGIN PUBLIC KEY----- or -----BEGIN RSA PUBLIC KEY-----)",
            ));
        };
        Self::checked(key, None)
    }

    /// Reads a JWK: `RSA`, `EC` (P-256, P-384, P-521), `OKP` (Ed25519), or `oct` (a shared
    /// secret for HS*, only ever from an explicit JWK). A private JWK is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, JoseError> {
        if jwk.d.is_some() {
            return Err(key_error(
                "the JWK holds a private key (\"d\"); configure its public half",
            ));
        }
        if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(key_error("the JWK's \"use\" is not \"sig\""));
        }
        let key = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => {
                let n = rsa::BigUint::from_bytes_be(&b64(&jwk.n, "n")?);
                let e = rsa::BigUint::from_bytes_be(&b64(&jwk.e, "e")?);
                PublicKey::Rsa(RsaPublicKey::new(n, e).map_err(key_error)?)
            }
            ("EC", Some("P-256")) => {
                let point = ec_point::<32>(jwk)?;
                PublicKey::P256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(key_error)?,
                )
            }
            ("EC", Some("P-384")) => {
                let point = ec_point::<48>(jwk)?;
                PublicKey::P384(
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(key_error)?,
                )
            }
            ("EC", Some("P-521")) => {
                let point = ec_point::<66>(jwk)?;
                PublicKey::P521(
                    p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(key_error)?,
                )
            }
            ("OKP", Some("Ed25519")) => {
                let x: [u8; 32] = b64(&jwk.x, "x")?
                    .try_into()
                    .map_err(|_| key_error("Ed25519 \"x\" is not 32 bytes"))?;
                PublicKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(key_error)?)
            }
            ("oct", _) => PublicKey::Hmac(b64(&jwk.k, "k")?),
            (kty, crv) => {
                return Err(key_error(format!(
                    "unsupported JWK type {:?}{}",
                    truncate(kty),
                    crv.map(|c| format!(" on curve {:?}", truncate(c)))
                        .unwrap_or_default()
                )))
            }
        };
        let pinned = jwk.alg.as_deref().map(str::parse).transpose()?;
        Self::checked(key, pinned)
    }

    fn checked(key: PublicKey, pinned: Option<Algorithm>) -> Result<Self, JoseError> {
        match &key {
            PublicKey::Rsa(rsa) if rsa.size() * 8 < MIN_RSA_BITS => {
                return Err(key_error(format!(
                    "RSA key of {} bits, fewer than the {MIN_RSA_BITS} accepted",
                    rsa.size() * 8
                )))
            }
            PublicKey::Hmac(secret) if secret.len() < MIN_HMAC_BYTES => {
                return Err(key_error(format!(
                    "HMAC secret of {} bytes, fewer than the {MIN_HMAC_BYTES} accepted",
                    secret.len()
                )))
            }
            _ => {}
        }
        let key = VerificationKey { key, pinned };
        if let Some(alg) = pinned {
            key.check_algorithm(alg)?;
        }
        Ok(key)
    }

    /// The key's kind, for messages: "an RSA key", "a P-256 key", ...
    pub fn kind(&self) -> &'static str {
        match self.key {
            PublicKey::Rsa(_) => "an RSA key",
            PublicKey::P256(_) => "a P-256 key",
            PublicKey::P384(_) => "a P-384 key",
            PublicKey::P521(_) => "a P-521 key",
            PublicKey::Ed25519(_) => "an Ed25519 key",
            PublicKey::Hmac(_) => "an HMAC secret",
        }
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        match self.pinned {
            Some(alg) => vec![alg],
            None => family(&self.key).to_vec(),
        }
    }

    /// Whether `alg` may be used with this key; refused before any signature is checked.
    pub fn check_algorithm(&self, alg: Algorithm) -> Result<(), JoseError> {
        let allowed = family(&self.key).contains(&alg) && self.pinned.is_none_or(|p| p == alg);
        if allowed {
            Ok(())
        } else {
            Err(JoseError::AlgorithmMismatch {
                alg,
                key: self.kind().to_string(),
            })
        }
    }

    /// Verifies `signature` (raw bytes: for ECDSA the fixed-size `r || s` of RFC 7518) over
    /// `message` with `alg`.
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JoseError> {
        self.check_algorithm(alg)?;
        let verified = match (&self.key, alg) {
            (PublicKey::Rsa(key), Algorithm::RS256) => rsa_pkcs1::<Sha256>(key, message, signature),
            (PublicKey::Rsa(key), Algorithm::RS384) => rsa_pkcs1::<Sha384>(key, message, signature),
            (PublicKey::Rsa(key), Algorithm::RS512) => rsa_pkcs1::<Sha512>(key, message, signature),
            (PublicKey::Rsa(key), Algorithm::PS256) => rsa_pss::<Sha256>(key, message, signature),
            (PublicKey::Rsa(key), Algorithm::PS384) => rsa_pss::<Sha384>(key, message, signature),
            (PublicKey::Rsa(key), Algorithm::PS512) => rsa_pss::<Sha512>(key, message, signature),
            (PublicKey::P256(key), _) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            (PublicKey::P384(key), _) => p384::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            (PublicKey::P521(key), _) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            (PublicKey::Ed25519(key), _) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
            (PublicKey::Hmac(secret), Algorithm::HS256) => {
                hmac_verify::<Hmac<Sha256>>(secret, message, signature)
            }
            (PublicKey::Hmac(secret), Algorithm::HS384) => {
                hmac_verify::<Hmac<Sha384>>(secret, message, signature)
            }
            (PublicKey::Hmac(secret), Algorithm::HS512) => {
                hmac_verify::<Hmac<Sha512>>(secret, message, signature)
            }
            // check_algorithm admits no other pair.
            _ => false,
        };
        if verified {
            Ok(())
        } else {
            Err(JoseError::BadSignature)
        }
    }

    /// Verifies a compact JWS (`header.payload.signature`) whose header has already been
    /// read, returning the decoded payload.
    pub fn verify_compact(&self, alg: Algorithm, token: &str) -> Result<Vec<u8>, JoseError> {
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| key_error("not a compact JWS"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| JoseError::BadSignature)?;
        self.verify(alg, signing_input.as_bytes(), &signature)?;
        let payload = signing_input
            .split_once('.')
            .map(|(_, payload)| payload)
            .ok_or(JoseError::BadSignature)?;
        URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| JoseError::BadSignature)
    }

    /// The key as an SPKI PEM public key; none for an HMAC secret.
    pub fn to_public_key_pem(&self) -> Option<String> {
        let le = rsa::pkcs8::LineEnding::LF;
        match &self.key {
            PublicKey::Rsa(key) => key.to_public_key_pem(le).ok(),
            PublicKey::P256(key) => key.to_public_key_pem(le).ok(),
            PublicKey::P384(key) => key.to_public_key_pem(le).ok(),
            PublicKey::P521(key) => {
                p521::PublicKey::from_sec1_bytes(key.to_encoded_point(false).as_bytes())
                    .ok()
                    .and_then(|k| k.to_public_key_pem(le).ok())
            }
            PublicKey::Ed25519(key) => key.to_public_key_pem(le).ok(),
            PublicKey::Hmac(_) => None,
        }
    }

    /// The raw parts another JWT library needs: RSA `(n, e)` big-endian, EC SEC1
    /// uncompressed point, Ed25519 32 bytes.
    pub fn raw(&self) -> RawPublicKey {
        match &self.key {
            PublicKey::Rsa(key) => RawPublicKey::Rsa {
                n: key.n().to_bytes_be(),
                e: key.e().to_bytes_be(),
            },
            PublicKey::P256(key) => RawPublicKey::Ec {
                curve: "P-256",
                point: key.to_encoded_point(false).as_bytes().to_vec(),
            },
            PublicKey::P384(key) => RawPublicKey::Ec {
                curve: "P-384",
                point: key.to_encoded_point(false).as_bytes().to_vec(),
            },
            PublicKey::P521(key) => RawPublicKey::Ec {
                curve: "P-521",
                point: key.to_encoded_point(false).as_bytes().to_vec(),
            },
            PublicKey::Ed25519(key) => RawPublicKey::Ed25519(key.to_bytes()),
            PublicKey::Hmac(_) => RawPublicKey::Secret,
        }
    }
}

/// A public key's raw parts, see [`VerificationKey::raw`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPublicKey {
    /// RSA modulus and exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// An EC point, SEC1 uncompressed (`04 || x || y`).
    Ec {
        /// "P-256", "P-384" or "P-521".
        curve: &'static str,
        /// The point.
        point: Vec<u8>,
    },
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
    /// An HMAC secret: nothing public.
    Secret,
}

fn family(key: &PublicKey) -> &'static [Algorithm] {
    use Algorithm::*;
    match key {
        PublicKey::Rsa(_) => &[RS256, RS384, RS512, PS256, PS384, PS512],
        PublicKey::P256(_) => &[ES256],
        PublicKey::P384(_) => &[ES384],
        PublicKey::P521(_) => &[ES512],
        PublicKey::Ed25519(_) => &[EdDSA],
        PublicKey::Hmac(_) => &[HS256, HS384, HS512],
    }
}

fn spki_public_key(pem: &str) -> Result<PublicKey, JoseError> {
    if let Ok(key) = RsaPublicKey::from_public_key_pem(pem) {
        return Ok(PublicKey::Rsa(key));
    }
    if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
        return Ok(PublicKey::P256(key.into()));
    }
    if let Ok(key) = p384::PublicKey::from_public_key_pem(pem) {
        return Ok(PublicKey::P384(key.into()));
    }
    if let Ok(key) = p521::PublicKey::from_public_key_pem(pem) {
        let point = key.to_encoded_point(false);
        return Ok(PublicKey::P521(
            p521::ecdsa::VerifyingKey::from_encoded_point(&point).map_err(key_error)?,
        ));
    }
    ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
        .map(PublicKey::Ed25519)
        .map_err(|_| key_error("not an RSA, P-256, P-384, P-521 or Ed25519 public key (SPKI PEM)"))
}

fn rsa_pkcs1<D>(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + rsa::pkcs8::AssociatedOid,
{
    let key = rsa::pkcs1v15::VerifyingKey::<D>::new(key.clone());
    rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

fn rsa_pss<D>(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool
where
    D: sha2::Digest + sha2::digest::FixedOutputReset,
{
    let key = rsa::pss::VerifyingKey::<D>::new(key.clone());
    rsa::pss::Signature::try_from(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

fn hmac_verify<M: Mac + hmac::digest::KeyInit>(
    secret: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(message);
    // Constant-time comparison.
    mac.verify_slice(signature).is_ok()
}

fn b64(value: &Option<String>, name: &str) -> Result<Vec<u8>, JoseError> {
    let value = value
        .as_deref()
        .ok_or_else(|| key_error(format!("the JWK has no \"{name}\"")))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| key_error(format!("the JWK's \"{name}\" is not base64url")))
}

/// The uncompressed SEC1 point of an EC JWK whose coordinates are `N` bytes each.
fn ec_point<const N: usize>(jwk: &Jwk) -> Result<Vec<u8>, JoseError> {
    let x = b64(&jwk.x, "x")?;
    let y = b64(&jwk.y, "y")?;
    if x.len() != N || y.len() != N {
        return Err(key_error(format!(
            "EC coordinates must be {N} bytes for this curve"
        )));
    }
    let mut point = Vec::with_capacity(1 + 2 * N);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

/// A JSON Web Key (RFC 7517), public parameters only.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    /// Key type: RSA, EC, OKP or oct.
    pub kty: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// The one algorithm the key is for, when given.
    #[serde(default)]
    pub alg: Option<String>,
    /// `sig` or `enc`; only `sig` (or none) is accepted.
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    /// Curve of an EC or OKP key.
    #[serde(default)]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default)]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// Shared secret of an oct key.
    #[serde(default)]
    pub k: Option<String>,
    /// Present only in a private key, which is refused.
    #[serde(default)]
    pub d: Option<String>,
}

/// A private key (or HMAC secret) that signs with one algorithm.
pub struct SigningKey {
    key: PrivateKey,
    alg: Algorithm,
}

enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Hmac(Vec<u8>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1) to sign with `alg`, or with the key
    /// type's default (RS256 for RSA, as OPA; ES256/384/512 by curve; EdDSA).
    pub fn from_pem(pem: &str, alg: Option<Algorithm>) -> Result<Self, JoseError> {
        if pem.len() > MAX_KEY_TEXT {
            return Err(key_error("key text too long"));
        }
        let key = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            PrivateKey::Rsa(Box::new(
                RsaPrivateKey::from_pkcs1_pem(pem).map_err(key_error)?,
            ))
        } else if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
            sec1_private_key(pem)?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            pkcs8_private_key(pem)?
        } else {
            return Err(key_error(
                "not a PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
            ));
        };
        Self::new(key, alg)
    }

    /// An Ed25519 key, signing with EdDSA.
    pub fn ed25519(key: ed25519_dalek::SigningKey) -> Self {
        SigningKey {
            key: PrivateKey::Ed25519(key),
            alg: Algorithm::EdDSA,
        }
    }

    /// A shared secret, signing with HS256, HS384 or HS512.
    pub fn hmac(secret: Vec<u8>, alg: Algorithm) -> Result<Self, JoseError> {
        if secret.len() < MIN_HMAC_BYTES {
            return Err(key_error(format!(
                "HMAC secret of {} bytes, fewer than the {MIN_HMAC_BYTES} accepted",
                secret.len()
            )));
        }
        Self::new(PrivateKey::Hmac(secret), Some(alg))
    }

    fn new(key: PrivateKey, alg: Option<Algorithm>) -> Result<Self, JoseError> {
        let public = public_of(&key);
        let alg = match alg {
            Some(alg) => alg,
            None => family(&public)[0],
        };
        VerificationKey::checked(public, None)?.check_algorithm(alg)?;
        Ok(SigningKey { key, alg })
    }

    /// The algorithm it signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The matching verification key.
    pub fn verification_key(&self) -> VerificationKey {
        VerificationKey {
            key: public_of(&self.key),
            pinned: None,
        }
    }

    /// Signs `message`; ECDSA signatures come as the fixed-size `r || s` of RFC 7518.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let mut rng = rand_core::OsRng;
        match (&self.key, self.alg) {
            (PrivateKey::Rsa(key), Algorithm::RS256) => {
                rsa::pkcs1v15::SigningKey::<Sha256>::new(key.as_ref().clone())
                    .sign(message)
                    .to_vec()
            }
            (PrivateKey::Rsa(key), Algorithm::RS384) => {
                rsa::pkcs1v15::SigningKey::<Sha384>::new(key.as_ref().clone())
                    .sign(message)
                    .to_vec()
            }
            (PrivateKey::Rsa(key), Algorithm::RS512) => {
                rsa::pkcs1v15::SigningKey::<Sha512>::new(key.as_ref().clone())
                    .sign(message)
                    .to_vec()
            }
            (PrivateKey::Rsa(key), Algorithm::PS256) => {
                rsa::pss::BlindedSigningKey::<Sha256>::new(key.as_ref().clone())
                    .sign_with_rng(&mut rng, message)
                    .to_vec()
            }
            (PrivateKey::Rsa(key), Algorithm::PS384) => {
                rsa::pss::BlindedSigningKey::<Sha384>::new(key.as_ref().clone())
                    .sign_with_rng(&mut rng, message)
                    .to_vec()
            }
            (PrivateKey::Rsa(key), _) => {
                rsa::pss::BlindedSigningKey::<Sha512>::new(key.as_ref().clone())
                    .sign_with_rng(&mut rng, message)
                    .to_vec()
            }
            (PrivateKey::P256(key), _) => {
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            (PrivateKey::P384(key), _) => {
                let sig: p384::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            (PrivateKey::P521(key), _) => {
                // p521 0.13 signs with a random nonce (no RFC 6979 yet).
                let sig: p521::ecdsa::Signature = key.sign_with_rng(&mut rng, message);
                sig.to_bytes().to_vec()
            }
            (PrivateKey::Ed25519(key), _) => key.sign(message).to_bytes().to_vec(),
            (PrivateKey::Hmac(secret), Algorithm::HS256) => {
                hmac_sign::<Hmac<Sha256>>(secret, message)
            }
            (PrivateKey::Hmac(secret), Algorithm::HS384) => {
                hmac_sign::<Hmac<Sha384>>(secret, message)
            }
            (PrivateKey::Hmac(secret), _) => hmac_sign::<Hmac<Sha512>>(secret, message),
        }
    }

    /// Signs `header` and `payload` (JSON) as a compact JWS.
    pub fn sign_compact(
        &self,
        header: &serde_json::Value,
        payload: &[u8],
    ) -> Result<String, JoseError> {
        let header = serde_json::to_vec(header).map_err(key_error)?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(self.sign(signing_input.as_bytes()));
        Ok(format!("{signing_input}.{signature}"))
    }
}

fn hmac_sign<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
    match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length.
        Err(_) => Vec::new(),
    }
}

fn public_of(key: &PrivateKey) -> PublicKey {
    match key {
        PrivateKey::Rsa(key) => PublicKey::Rsa(key.to_public_key()),
        PrivateKey::P256(key) => PublicKey::P256(*key.verifying_key()),
        PrivateKey::P384(key) => PublicKey::P384(*key.verifying_key()),
        PrivateKey::P521(key) => PublicKey::P521(p521::ecdsa::VerifyingKey::from(key)),
        PrivateKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
        PrivateKey::Hmac(secret) => PublicKey::Hmac(secret.clone()),
    }
}

fn pkcs8_private_key(pem: &str) -> Result<PrivateKey, JoseError> {
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        return Ok(PrivateKey::Ed25519(key));
    }
    if let Ok(key) = RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(PrivateKey::Rsa(Box::new(key)));
    }
    if let Ok(key) = p256::SecretKey::from_pkcs8_pem(pem) {
        return Ok(PrivateKey::P256(key.into()));
    }
    if let Ok(key) = p384::SecretKey::from_pkcs8_pem(pem) {
        return Ok(PrivateKey::P384(key.into()));
    }
    if let Ok(key) = p521::SecretKey::from_pkcs8_pem(pem) {
        return p521_signing_key(&key);
    }
    Err(key_error(
        "not an RSA, P-256, P-384, P-521 or Ed25519 private key (PKCS#8 PEM)",
    ))
}

fn sec1_private_key(pem: &str) -> Result<PrivateKey, JoseError> {
    if let Ok(key) = p256::SecretKey::from_sec1_pem(pem) {
        return Ok(PrivateKey::P256(key.into()));
    }
    if let Ok(key) = p384::SecretKey::from_sec1_pem(pem) {
        return Ok(PrivateKey::P384(key.into()));
    }
    if let Ok(key) = p521::SecretKey::from_sec1_pem(pem) {
        return p521_signing_key(&key);
    }
    Err(key_error(
        "not a P-256, P-384 or P-521 private key (SEC1 PEM)",
    ))
}

fn p521_signing_key(key: &p521::SecretKey) -> Result<PrivateKey, JoseError> {
    p521::ecdsa::SigningKey::from_bytes(&key.to_bytes())
        .map(PrivateKey::P521)
        .map_err(key_error)
}
