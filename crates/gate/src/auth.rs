//! Bearer-token authentication: EdDSA (Ed25519) JWTs, issued and verified.
//!
//! Only EdDSA is accepted. The algorithm is read from the token header and checked before
//! any key is looked up, so `none`, HMAC tokens "signed" with a public key and RSA/ECDSA
//! tokens are refused without touching a key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePublicKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

mod issuer;

pub use issuer::{generate_keypair, TokenIssuer};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// Longest key id echoed back in an error, so a caller cannot make us reflect megabytes.
const MAX_KID_ECHO: usize = 64;

/// An authenticated caller, as established from its token or its client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: who is calling.
    pub subject: String,
    /// Roles the token grants.
    pub roles: Vec<String>,
    /// Tenants the token grants access to.
    pub tenants: Vec<String>,
    /// The identity (URI or DNS SAN) of the client certificate the connection was made
    /// with, when the service requires one (mTLS): the calling workload.
    pub peer: Option<String>,
    /// When the token stops being valid (its `exp`, Unix seconds); none for a caller
    /// known by its certificate alone. Long-lived answers (event streams, session cookies)
    /// end by then.
    pub expires_at: Option<u64>,
}

impl Principal {
    /// How long the caller's token stays valid from now (zero once expired); none for a
    /// caller without a token's expiry.
    pub fn time_left(&self) -> Option<std::time::Duration> {
        let expires_at = self.expires_at?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Some(std::time::Duration::from_secs(expires_at).saturating_sub(now))
    }
}

/// Why a token was refused. Messages are safe to return to callers: they carry neither key
/// material nor token contents (a key id is echoed, truncated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization` header.
    #[error("missing bearer token")]
    Missing,
    /// The header or the token is not well formed.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// The signature does not verify with the key the token names.
    #[error("token signature does not verify")]
    BadSignature,
    /// The token names a key id that is not configured.
    #[error("unknown signing key '{0}'")]
    UnknownKey(String),
    /// The token's algorithm is not EdDSA.
    #[error("signature algorithm '{0}' rejected, only EdDSA is accepted")]
    WrongAlgorithm(String),
    /// A claim is missing or has the wrong value or type.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A configured key could not be parsed or used.
    #[error("invalid key: {0}")]
    Key(String),
}

impl AuthError {
    /// A short label for metrics, one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::BadSignature => "bad_signature",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::WrongAlgorithm(_) => "wrong_algorithm",
            AuthError::InvalidClaims(_) => "invalid_claims",
            AuthError::Key(_) => "key",
        }
    }
}

/// The claims read from a token; registered claims are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    tenants: Vec<String>,
    /// Required and checked by `jsonwebtoken` (`set_required_spec_claims`).
    exp: u64,
}

/// The header fields consulted before the signature is checked.
#[derive(Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// Verifies bearer tokens against configured Ed25519 public keys.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<BTreeMap<String, DecodingKey>>,
    validation: Arc<Validation>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Creates a verifier from `kid → Ed25519 public key` (SPKI PEM), accepting tokens whose
    /// `iss` is `issuer` and whose `aud` contains `audience`.
    pub fn new(
        keys: &BTreeMap<String, String>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let keys = keys
            .iter()
            .map(|(kid, pem)| {
                // Parsed strictly: jsonwebtoken's PEM reader accepts a truncated key and only
                // fails once a token is verified with it.
                let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
                    .map_err(|e| AuthError::Key(format!("public key '{kid}': {e}")))?;
                Ok((kid.clone(), DecodingKey::from_ed_der(key.as_bytes())))
            })
            .collect::<Result<BTreeMap<_, _>, AuthError>>()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // Without listing iss and aud here, a token lacking them would pass their checks.
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        Ok(TokenVerifier {
            keys: Arc::new(keys),
            validation: Arc::new(validation),
        })
    }

    /// Verifies `token` (the part after `Bearer `) and returns who it authenticates.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = read_header(token)?;
        let alg = header.alg.unwrap_or_default();
        if alg != "EdDSA" {
            return Err(AuthError::WrongAlgorithm(truncate(&alg)));
        }
        let kid = header
            .kid
            .filter(|kid| !kid.is_empty())
            .ok_or_else(|| AuthError::Malformed("no key id (kid) in the header".to_string()))?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| AuthError::UnknownKey(truncate(&kid)))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| classify(e.kind()))?
            .claims;
        if claims.sub.is_empty() {
            return Err(AuthError::InvalidClaims("sub is empty".to_string()));
        }
        Ok(Principal {
            subject: claims.sub,
            roles: claims.roles,
            tenants: claims.tenants,
            peer: None,
            expires_at: Some(claims.exp),
        })
    }
}

/// Decodes the header without trusting it: only `alg` and `kid` are read, to refuse
/// anything but EdDSA and to pick the key.
fn read_header(token: &str) -> Result<JwtHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed(
            "not three dot-separated parts".to_string(),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("header is not base64url".to_string()))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("header is not a JSON object".to_string()))
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::InvalidClaims(format!("{claim} is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::InvalidClaims(format!("{claim} is malformed"))
        }
        ErrorKind::InvalidIssuer => AuthError::InvalidClaims("wrong issuer".to_string()),
        ErrorKind::InvalidAudience => AuthError::InvalidClaims("wrong audience".to_string()),
        ErrorKind::InvalidSubject => AuthError::InvalidClaims("wrong subject".to_string()),
        ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm("mismatch".to_string()),
        // Signatures are checked before claims are parsed, so this is a signed token whose
        // custom claims have the wrong types (e.g. roles not an array of strings).
        ErrorKind::Json(_) => AuthError::InvalidClaims("claims have unexpected types".to_string()),
        _ => AuthError::Malformed("token could not be decoded".to_string()),
    }
}

fn truncate(value: &str) -> String {
    value.chars().take(MAX_KID_ECHO).collect()
}
