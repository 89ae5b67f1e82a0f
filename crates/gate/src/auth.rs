//! Bearer-token authentication: JWTs signed with EdDSA (Ed25519), RS256/384/512,
//! PS256/384/512, ES256 or ES384, verified against configured public keys (PEM or JWK files)
//! and, when configured, an identity provider's JWKS URL (see [`jwks`]). BlindLedger's own
//! tools issue EdDSA tokens.
//!
//! The algorithm is read from the token header and must be one the key its `kid` names
//! admits (RS*/PS* for an RSA key, ES256 for P-256, ES384 for P-384, EdDSA for Ed25519), so
//! `none`, HMAC tokens "signed" with a public key and algorithm confusion are refused before
//! a signature is checked. Roles and tenants are read from configurable claims.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_policy::jose::{self, RawPublicKey, VerificationKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

mod issuer;
pub mod jwks;

pub use issuer::{generate_keypair, TokenIssuer};
pub use jwks::Jwks;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// Longest key id echoed back in an error, so a caller cannot make us reflect megabytes.
const MAX_KID_ECHO: usize = 64;
/// Most roles or tenants one token may grant, and the longest of each.
const MAX_GRANTS: usize = 64;
const MAX_GRANT_LEN: usize = 128;

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
    /// The token's algorithm is unknown, unsupported for tokens, or not one its key admits.
    #[error("signature algorithm '{0}' rejected")]
    WrongAlgorithm(String),
    /// A claim is missing or has the wrong value or type.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// A configured key could not be parsed or used.
    #[error("invalid key: {0}")]
    Key(String),
    /// The token names a key id this service does not hold, and the identity provider's key
    /// set could not be fetched to learn it: whether the token is valid is unknown.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
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
            AuthError::KeysUnavailable(_) => "keys_unavailable",
        }
    }

    /// Whether the caller should retry rather than fix its token: the verdict is unknown
    /// (`UNAVAILABLE`), not a refusal (`UNAUTHENTICATED`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable(_))
    }

    /// The gRPC status for this refusal, with an `ErrorInfo` whose reason is `TOKEN_` and
    /// [`AuthError::reason`] in capitals (`TOKEN_EXPIRED`, `TOKEN_KEYS_UNAVAILABLE`...).
    pub fn to_status(&self) -> tonic::Status {
        let code = if self.is_unavailable() {
            tonic::Code::Unavailable
        } else {
            tonic::Code::Unauthenticated
        };
        crate::status::Details::reason(self.error_info_reason()).status(code, self.to_string())
    }

    fn error_info_reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "TOKEN_MISSING",
            AuthError::Malformed(_) => "TOKEN_MALFORMED",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::NotYetValid => "TOKEN_NOT_YET_VALID",
            AuthError::BadSignature => "TOKEN_BAD_SIGNATURE",
            AuthError::UnknownKey(_) => "TOKEN_UNKNOWN_KEY",
            AuthError::WrongAlgorithm(_) => "TOKEN_WRONG_ALGORITHM",
            AuthError::InvalidClaims(_) => "TOKEN_INVALID_CLAIMS",
            AuthError::Key(_) => "TOKEN_KEY",
            AuthError::KeysUnavailable(_) => "TOKEN_KEYS_UNAVAILABLE",
        }
    }
}

/// The registered claims read from a token; their values are checked by `jsonwebtoken`.
#[derive(Deserialize)]
struct Registered {
    #[serde(default)]
    sub: String,
    /// Required and checked by `jsonwebtoken` (`set_required_spec_claims`).
    exp: u64,
}

/// Where roles and tenants are read from in a token's claims: a claim name, or a dotted
/// path into nested objects (`realm_access.roles`, as Keycloak writes them). The value is an
/// array of strings or one space-separated string (as `scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub roles: String,
    pub tenants: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            roles: "roles".to_string(),
            tenants: "tenants".to_string(),
        }
    }
}

/// A verification key as `jsonwebtoken` takes it, with the algorithms its type admits.
#[derive(Clone)]
pub(crate) struct TokenKey {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl TokenKey {
    /// Converts a strictly parsed key; HMAC secrets and P-521 keys are refused for tokens.
    pub(crate) fn new(key: &VerificationKey) -> Result<Self, String> {
        let key_for_jwt = match key.raw() {
            RawPublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(&n, &e),
            RawPublicKey::Ec { curve, point } if curve != "P-521" => {
                DecodingKey::from_ec_der(&point)
            }
            RawPublicKey::Ed25519(bytes) => DecodingKey::from_ed_der(&bytes),
            _ => return Err(format!("{} cannot verify access tokens", key.kind())),
        };
        let algorithms = key
            .algorithms()
            .into_iter()
            .filter_map(jwt_algorithm)
            .collect::<Vec<_>>();
        if algorithms.is_empty() {
            return Err(format!("{} admits no token algorithm", key.kind()));
        }
        Ok(TokenKey {
            key: key_for_jwt,
            algorithms,
        })
    }
}

fn jwt_algorithm(alg: jose::Algorithm) -> Option<Algorithm> {
    use jose::Algorithm as J;
    Some(match alg {
        J::RS256 => Algorithm::RS256,
        J::RS384 => Algorithm::RS384,
        J::RS512 => Algorithm::RS512,
        J::PS256 => Algorithm::PS256,
        J::PS384 => Algorithm::PS384,
        J::PS512 => Algorithm::PS512,
        J::ES256 => Algorithm::ES256,
        J::ES384 => Algorithm::ES384,
        J::EdDSA => Algorithm::EdDSA,
        // No HMAC for tokens (a shared secret in every service), no ES512 in jsonwebtoken.
        _ => return None,
    })
}

/// The header fields consulted before the signature is checked.
#[derive(Deserialize)]
struct JwtHeader {
    alg: Option<String>,
    kid: Option<String>,
}

/// Verifies bearer tokens against configured public keys and, optionally, a JWKS URL.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<BTreeMap<String, TokenKey>>,
    jwks: Option<Arc<Jwks>>,
    issuer: Arc<str>,
    audience: Arc<str>,
    claims: Arc<ClaimNames>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// Creates a verifier from `kid → public key` (PEM: SPKI or PKCS#1; or a JWK), accepting
    /// tokens whose `iss` is `issuer` and whose `aud` contains `audience`.
    pub fn new(
        keys: &BTreeMap<String, String>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let keys = keys
            .iter()
            .map(|(kid, text)| {
                // Parsed strictly: jsonwebtoken's PEM reader accepts a truncated key and only
                // fails once a token is verified with it.
                let key = VerificationKey::parse(text)
                    .and_then(|key| TokenKey::new(&key).map_err(jose::JoseError::Key))
                    .map_err(|e| AuthError::Key(format!("public key '{kid}': {e}")))?;
                Ok((kid.clone(), key))
            })
            .collect::<Result<BTreeMap<_, _>, AuthError>>()?;
        Ok(TokenVerifier {
            keys: Arc::new(keys),
            jwks: None,
            issuer: issuer.into(),
            audience: audience.into(),
            claims: Arc::new(ClaimNames::default()),
        })
    }

    /// Also trusts the keys an identity provider publishes in a JWKS document, fetched and
    /// refreshed in the background (see [`Jwks::spawn_refresh`]; needs a Tokio runtime).
    pub fn with_jwks(mut self, jwks: Jwks) -> Self {
        let jwks = Arc::new(jwks);
        jwks.spawn_refresh();
        self.jwks = Some(jwks);
        self
    }

    /// Reads roles and tenants from these claims.
    pub fn with_claims(mut self, claims: ClaimNames) -> Self {
        self.claims = Arc::new(claims);
        self
    }

    /// Whether any key (configured or from a JWKS URL) can verify tokens.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty() || self.jwks.is_some()
    }

    /// Verifies `token` (the part after `Bearer `) and returns who it authenticates, with the
    /// keys at hand: a key id only the identity provider knows (not yet fetched) is
    /// [`AuthError::UnknownKey`], or [`AuthError::KeysUnavailable`] while its key set
    /// cannot be fetched. [`TokenVerifier::verify_async`] fetches it first.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let (alg, kid) = read_header(token)?;
        match self.key(&kid) {
            Some(key) => self.verify_with(token, alg, &key),
            None => Err(self.unknown_key(&kid)),
        }
    }

    /// As [`TokenVerifier::verify`], but a key id unknown here makes the JWKS (when
    /// configured) be fetched again first, at most once per minimum interval.
    pub async fn verify_async(&self, token: &str) -> Result<Principal, AuthError> {
        let (alg, kid) = read_header(token)?;
        if let Some(key) = self.key(&kid) {
            return self.verify_with(token, alg, &key);
        }
        if let Some(jwks) = &self.jwks {
            jwks.refresh_for_unknown_kid().await;
        }
        match self.key(&kid) {
            Some(key) => self.verify_with(token, alg, &key),
            None => Err(self.unknown_key(&kid)),
        }
    }

    fn key(&self, kid: &str) -> Option<TokenKey> {
        if let Some(key) = self.keys.get(kid) {
            return Some(key.clone());
        }
        self.jwks.as_ref().and_then(|jwks| jwks.key(kid))
    }

    fn unknown_key(&self, kid: &str) -> AuthError {
        match self.jwks.as_ref().and_then(|jwks| jwks.last_error()) {
            Some(error) => AuthError::KeysUnavailable(error),
            None => AuthError::UnknownKey(truncate(kid)),
        }
    }

    fn verify_with(
        &self,
        token: &str,
        alg: String,
        key: &TokenKey,
    ) -> Result<Principal, AuthError> {
        let algorithm = alg
            .parse::<Algorithm>()
            .ok()
            .filter(|a| key.algorithms.contains(a))
            .ok_or_else(|| AuthError::WrongAlgorithm(truncate(&alg)))?;
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&*self.issuer]);
        validation.set_audience(&[&*self.audience]);
        // Without listing iss and aud here, a token lacking them would pass their checks.
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &validation)
            .map_err(|e| classify(e.kind()))?
            .claims;
        let registered: Registered = serde_json::from_value(claims.clone()).map_err(|_| {
            AuthError::InvalidClaims("sub or exp has an unexpected type".to_string())
        })?;
        if registered.sub.is_empty() {
            return Err(AuthError::InvalidClaims("sub is empty".to_string()));
        }
        Ok(Principal {
            subject: registered.sub,
            roles: grants(&claims, &self.claims.roles)?,
            tenants: grants(&claims, &self.claims.tenants)?,
            peer: None,
            expires_at: Some(registered.exp),
        })
    }
}

/// The strings at `path` (dotted) in `claims`: an array of strings or one space-separated
/// string; none when absent. Bounded in count and length.
fn grants(claims: &serde_json::Value, path: &str) -> Result<Vec<String>, AuthError> {
    let mut value = claims;
    for part in path.split('.') {
        match value.get(part) {
            Some(next) => value = next,
            None => return Ok(Vec::new()),
        }
    }
    let invalid =
        || AuthError::InvalidClaims(format!("{} is not a list of strings", truncate(path)));
    let grants: Vec<String> = match value {
        serde_json::Value::String(text) => text.split_whitespace().map(str::to_string).collect(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect::<Result<_, _>>()?,
        serde_json::Value::Null => Vec::new(),
        _ => return Err(invalid()),
    };
    if grants.len() > MAX_GRANTS || grants.iter().any(|g| g.len() > MAX_GRANT_LEN) {
        return Err(AuthError::InvalidClaims(format!(
            "{} grants more than {MAX_GRANTS} values or one longer than {MAX_GRANT_LEN} bytes",
            truncate(path)
        )));
    }
    Ok(grants)
}

/// Decodes the header without trusting it: only `alg` and `kid` are read, to pick the key
/// and check the algorithm is one it admits.
fn read_header(token: &str) -> Result<(String, String), AuthError> {
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
    let header: JwtHeader = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("header is not a JSON object".to_string()))?;
    let alg = header.alg.unwrap_or_default();
    // Refused before any key is looked up: no key admits these.
    if alg.is_empty() || alg.eq_ignore_ascii_case("none") || alg.starts_with("HS") {
        return Err(AuthError::WrongAlgorithm(truncate(&alg)));
    }
    let kid = header
        .kid
        .filter(|kid| !kid.is_empty())
        .ok_or_else(|| AuthError::Malformed("no key id (kid) in the header".to_string()))?;
    Ok((alg, kid))
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
