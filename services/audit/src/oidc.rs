//! Officers' sign-in through an OpenID Connect provider: the authorization code flow with
//! PKCE (RFC 7636, `S256`), a `state` against cross-site request forgery and a `nonce`
//! bound to the ID token. The provider's endpoints and keys come from its discovery
//! document (`<issuer>/.well-known/openid-configuration`), fetched when first needed and
//! kept; its ID token becomes the session token, verified on every request with the keys at
//! its `jwks_uri` (issuer: the provider, audience: this client).
//!
//! Written here rather than with an OIDC client crate: the flow is four HTTP exchanges on
//! the reqwest client and JWT verification the services already have, and the crates that
//! implement it bring a second HTTP and crypto stack.

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blindledger_gate::{AuthError, ClaimNames, Jwks, JwksTiming, Principal, TokenVerifier};
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Largest discovery document or token response read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Longest `code` or `state` accepted from the redirect.
const MAX_PARAM_BYTES: usize = 2048;
/// How long a sign-in may take between leaving for the provider and coming back.
pub const SIGN_IN_SECONDS: u64 = 600;

/// How the audit service signs officers in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL.
    pub issuer: String,
    /// This service's client id at the provider.
    pub client_id: String,
    /// A file holding the client secret (confidential clients); none for a public client
    /// (PKCE alone).
    pub client_secret_file: Option<PathBuf>,
    /// Where the provider sends the officer back: `https://<dashboard>/login/callback`.
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always included.
    pub scopes: String,
    /// Claims roles and tenants are read from.
    pub claims: ClaimNames,
}

/// What the provider's discovery document says, with a verifier for its ID tokens.
struct Discovered {
    authorization_endpoint: reqwest::Url,
    token_endpoint: String,
    verifier: TokenVerifier,
}

/// The fields of the discovery document used here.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The token endpoint's answer; only the ID token is used.
#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// Why a sign-in through the provider failed. Messages name the step, never a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider or its documents could not be reached or read: retry later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The redirect back does not belong to a sign-in started here (no, another or an
    /// expired `state`), or carries an error from the provider.
    #[error("{0}")]
    Rejected(String),
    /// The ID token is not valid for this client.
    #[error("the identity provider's token was refused: {0}")]
    Token(AuthError),
}

/// The OpenID Connect client.
pub struct Oidc {
    settings: OidcSettings,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    discovered: tokio::sync::OnceCell<Discovered>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer)
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

/// A sign-in on its way to the provider: where to send the browser, and the cookie that
/// brings `state`, the PKCE verifier and the nonce back with it.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL with this sign-in's parameters.
    pub redirect: String,
    /// `state.verifier.nonce`, for the short-lived sign-in cookie.
    pub cookie: String,
}

impl Oidc {
    /// The client for `settings`; reads the client secret file now.
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        reqwest::Url::parse(&settings.issuer).context("oidc_issuer")?;
        reqwest::Url::parse(&settings.redirect_url).context("oidc_redirect_url")?;
        let client_secret = match &settings.client_secret_file {
            Some(path) => Some(SecretString::from(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_owned(),
            )),
            None => None,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("blindledger/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(10))
            .build()
            .context("HTTP client")?;
        Ok(Oidc {
            settings,
            client_secret,
            http,
            discovered: tokio::sync::OnceCell::new(),
        })
    }

    /// Starts a sign-in: fresh `state`, PKCE verifier and nonce.
    pub async fn start(&self) -> Result<Started, OidcError> {
        let discovered = self.discovered().await?;
        let (state, verifier, nonce) = (random(32), random(32), random(16));
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let scopes = if self.settings.scopes.split(' ').any(|s| s == "openid") {
            self.settings.scopes.clone()
        } else {
            format!("openid {}", self.settings.scopes)
        };
        let mut redirect = discovered.authorization_endpoint.clone();
        redirect
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", scopes.trim())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(Started {
            redirect: redirect.into(),
            cookie: format!("{state}.{verifier}.{nonce}"),
        })
    }

    /// Finishes a sign-in: checks `state` against the cookie, exchanges `code` (with the
    /// PKCE verifier) for an ID token, verifies it and its nonce. Returns the token, which
    /// becomes the session, and who it authenticates.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<(String, Principal), OidcError> {
        if code.is_empty() || code.len() > MAX_PARAM_BYTES || state.len() > MAX_PARAM_BYTES {
            return Err(OidcError::Rejected("malformed sign-in response".into()));
        }
        let mut parts = cookie.unwrap_or_default().split('.');
        let (Some(expected), Some(verifier), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::Rejected(
                "no sign-in was started from this browser, or it took too long".into(),
            ));
        };
        if expected.is_empty() || expected != state {
            return Err(OidcError::Rejected(
                "this sign-in response does not belong to the sign-in started here".into(),
            ));
        }
        let discovered = self.discovered().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("client_id", self.settings.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        let secret = self
            .client_secret
            .as_ref()
            .map(|s| s.expose_secret().to_owned());
        if let Some(secret) = &secret {
            form.push(("client_secret", secret));
        }
        let response = self
            .http
            .post(&discovered.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if status.is_client_error() {
            // The provider refused the code: used twice, expired, or the verifier differs.
            return Err(OidcError::Rejected(format!(
                "the identity provider refused the sign-in ({status})"
            )));
        }
        if !status.is_success() {
            return Err(OidcError::Unavailable(format!(
                "token endpoint answered {status}"
            )));
        }
        let tokens: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| OidcError::Rejected("the token response has no id_token".into()))?;
        let principal = discovered
            .verifier
            .verify_async(&tokens.id_token)
            .await
            .map_err(OidcError::Token)?;
        if token_nonce(&tokens.id_token).as_deref() != Some(nonce) {
            return Err(OidcError::Rejected(
                "the ID token was not issued for this sign-in (nonce)".into(),
            ));
        }
        Ok((tokens.id_token, principal))
    }

    /// Verifies a session made from this provider's ID token.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match self.discovered().await {
            Ok(discovered) => discovered.verifier.verify_async(token).await,
            Err(error) => Err(AuthError::KeysUnavailable(error.to_string())),
        }
    }

    async fn discovered(&self) -> Result<&Discovered, OidcError> {
        self.discovered
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let response = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| OidcError::Unavailable(format!("discovery: {e}")))?;
                if !response.status().is_success() {
                    return Err(OidcError::Unavailable(format!(
                        "discovery answered {}",
                        response.status()
                    )));
                }
                let body = read_bounded(response).await?;
                let discovery: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| OidcError::Unavailable(format!("discovery document: {e}")))?;
                // OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it
                // was fetched for.
                if discovery.issuer.trim_end_matches('/')
                    != self.settings.issuer.trim_end_matches('/')
                {
                    return Err(OidcError::Unavailable(
                        "the discovery document names another issuer".into(),
                    ));
                }
                let authorization_endpoint = reqwest::Url::parse(&discovery.authorization_endpoint)
                    .map_err(|e| OidcError::Unavailable(format!("authorization_endpoint: {e}")))?;
                let jwks = Jwks::new(&discovery.jwks_uri, JwksTiming::default())
                    .map_err(|e| OidcError::Unavailable(e.to_string()))?;
                let verifier = TokenVerifier::new(
                    &Default::default(),
                    &discovery.issuer,
                    &self.settings.client_id,
                )
                .map_err(|e| OidcError::Unavailable(e.to_string()))?
                .with_claims(self.settings.claims.clone())
                .with_jwks(jwks);
                Ok(Discovered {
                    authorization_endpoint,
                    token_endpoint: discovery.token_endpoint,
                    verifier,
                })
            })
            .await
    }
}

/// `n` random bytes, base64url: state, PKCE verifier (43 characters for 32 bytes, within
/// RFC 7636's 43 to 128), nonce.
fn random(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `nonce` claim of a token already verified.
fn token_nonce(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OidcError::Unavailable(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OidcError::Unavailable(format!(
                "a response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
