//! Issuing EdDSA bearer tokens, for tools, tests and the CLI's login.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::AuthError;

/// The `aud` claim as written.
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Several(&'a [String]),
}

/// The claims written by [`TokenIssuer`].
#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    iss: &'a str,
    /// One audience as a string, several as an array (RFC 7519, 4.1.3).
    aud: Audience<'a>,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
    roles: &'a [String],
    tenants: &'a [String],
}

/// Issues EdDSA bearer tokens, for tools, tests and the CLI's login.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    issuer: String,
    audiences: Vec<String>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Creates an issuer signing with an Ed25519 PKCS#8 PEM private key, naming it `kid`.
    pub fn new(
        private_key_pem: &str,
        kid: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(private_key_pem)
            .map_err(|e| AuthError::Key(format!("private key: {e}")))?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| AuthError::Key(format!("private key: {e}")))?;
        Ok(TokenIssuer {
            key: EncodingKey::from_ed_der(der.as_bytes()),
            kid: kid.to_string(),
            issuer: issuer.to_string(),
            audiences: vec![audience.to_string()],
        })
    }

    /// The same issuer, naming every one of `audiences` (the services a token is for: see
    /// [`crate::audiences`]) instead. An empty list keeps the audience it had.
    pub fn for_audiences(mut self, audiences: &[&str]) -> Self {
        if !audiences.is_empty() {
            self.audiences = audiences.iter().map(|a| a.to_string()).collect();
        }
        self
    }

    /// Issues a token for `subject`, valid from now for `ttl` (at least one second).
    pub fn issue(
        &self,
        subject: &str,
        roles: &[String],
        tenants: &[String],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::Key("system clock before 1970".to_string()))?
            .as_secs();
        let claims = IssuedClaims {
            sub: subject,
            iss: &self.issuer,
            aud: match self.audiences.as_slice() {
                [one] => Audience::One(one),
                several => Audience::Several(several),
            },
            iat: now,
            nbf: now,
            exp: now.saturating_add(ttl.as_secs().max(1)),
            jti: uuid::Uuid::new_v4().to_string(),
            roles,
            tenants,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Key(format!("signing token: {e}")))
    }
}

/// Generates an Ed25519 key pair as (private key PKCS#8 PEM, public key SPKI PEM).
pub fn generate_keypair() -> Result<(String, String), AuthError> {
    let key = blindledger_policy::SigningKey::generate();
    let private = key.to_pem().map_err(|e| AuthError::Key(e.to_string()))?;
    let public = key
        .public_key_pem()
        .map_err(|e| AuthError::Key(e.to_string()))?;
    Ok((private.expose_secret().to_string(), public))
}
