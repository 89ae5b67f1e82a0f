//! Token keys published by an identity provider at a JWKS URL (RFC 7517 key set), fetched
//! when the service starts, again every `refresh` interval, and when a token names a key id
//! not yet known (the provider rotated its keys) — at most once per `min_interval`, so
//! tokens with made-up key ids cannot make the service hammer the provider.
//!
//! The document is bounded (size, key count); keys that cannot verify tokens (HMAC, P-521,
//! encryption keys) are skipped. While the set cannot be fetched, a token naming a key id
//! not already known is `UNAVAILABLE` (its validity is unknown), never accepted.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use blindledger_policy::jose::{Jwk, VerificationKey};
use serde::Deserialize;

use super::{AuthError, TokenKey};

/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys kept from one document.
pub const MAX_JWKS_KEYS: usize = 64;
/// Gauge: keys currently held from the JWKS URL.
const JWKS_KEYS: &str = "blindledger_auth_jwks_keys";
/// Counter of JWKS fetches, by `result` (`ok`, `error`).
const JWKS_FETCHES: &str = "blindledger_auth_jwks_fetches_total";

/// How often the key set is fetched.
#[derive(Debug, Clone, Copy)]
pub struct JwksTiming {
    /// Regular refresh interval.
    pub refresh: Duration,
    /// Shortest time between two fetches triggered by unknown key ids.
    pub min_interval: Duration,
    /// Timeout of one fetch.
    pub timeout: Duration,
}

impl Default for JwksTiming {
    fn default() -> Self {
        JwksTiming {
            refresh: Duration::from_secs(300),
            min_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The keys of a JWKS URL, kept current.
pub struct Jwks {
    url: reqwest::Url,
    http: reqwest::Client,
    timing: JwksTiming,
    keys: ArcSwap<BTreeMap<String, TokenKey>>,
    state: Mutex<FetchState>,
    /// Serialises fetches: concurrent unknown key ids wait for one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .field("keys", &self.keys.load().len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// A key set at `url` (`https://`, or `http://` for a provider on the same host or in
    /// tests), not yet fetched: call [`Jwks::start`].
    pub fn new(url: &str, timing: JwksTiming) -> Result<Self, AuthError> {
        let url = reqwest::Url::parse(url).map_err(|e| AuthError::Key(format!("JWKS URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(AuthError::Key("JWKS URL must be http(s)".to_string()));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("blindledger/", env!("CARGO_PKG_VERSION")))
            .timeout(timing.timeout)
            .build()
            .map_err(|e| AuthError::Key(format!("HTTP client: {e}")))?;
        Ok(Jwks {
            url,
            http,
            timing,
            keys: ArcSwap::from_pointee(BTreeMap::new()),
            state: Mutex::new(FetchState {
                last_attempt: None,
                // Until the first fetch, an unknown key id is "unknown", not "invalid".
                last_error: Some("not fetched yet".to_string()),
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Fetches the key set now and then every `refresh` interval, in the background, for as
    /// long as the set is in use. A failed fetch is logged, not fatal: tokens naming key ids
    /// not yet known are answered `UNAVAILABLE` until the provider answers. Needs a Tokio
    /// runtime.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let jwks = Arc::downgrade(self);
        let refresh = self.timing.refresh;
        tokio::spawn(async move {
            loop {
                let Some(set) = jwks.upgrade() else { return };
                set.fetch().await;
                drop(set);
                tokio::time::sleep(refresh).await;
            }
        });
    }

    /// The key with id `kid`, if the last fetched set has it.
    pub(crate) fn key(&self, kid: &str) -> Option<TokenKey> {
        self.keys.load().get(kid).cloned()
    }

    /// Why the last fetch failed, if it did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.lock_state().last_error.clone()
    }

    /// Fetches again unless a fetch was attempted less than `min_interval` ago.
    pub(crate) async fn refresh_for_unknown_kid(&self) {
        let _fetching = self.fetching.lock().await;
        let recent = self
            .lock_state()
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.timing.min_interval);
        if !recent {
            self.fetch_locked().await;
        }
    }

    async fn fetch(&self) {
        let _fetching = self.fetching.lock().await;
        self.fetch_locked().await;
    }

    async fn fetch_locked(&self) {
        self.lock_state().last_attempt = Some(Instant::now());
        match self.download().await {
            Ok(keys) => {
                metrics::counter!(JWKS_FETCHES, "result" => "ok").increment(1);
                metrics::gauge!(JWKS_KEYS).set(keys.len() as f64);
                tracing::debug!(keys = keys.len(), "JWKS fetched");
                self.keys.store(Arc::new(keys));
                self.lock_state().last_error = None;
            }
            Err(error) => {
                metrics::counter!(JWKS_FETCHES, "result" => "error").increment(1);
                tracing::warn!(url = %self.url, %error, "JWKS not fetched; keeping the last key set");
                self.lock_state().last_error = Some(error);
            }
        }
    }

    async fn download(&self) -> Result<BTreeMap<String, TokenKey>, String> {
        let mut response = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(|e| format!("fetching the JWKS: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the JWKS URL answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the JWKS: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the JWKS is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse_key_set(&body)
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The signing keys of a JWKS document, by key id. Keys without a `kid`, of a type that
/// cannot verify tokens, or meant for encryption are skipped; more than
/// [`MAX_JWKS_KEYS`] keys is an error.
pub(crate) fn parse_key_set(body: &[u8]) -> Result<BTreeMap<String, TokenKey>, String> {
    let set: KeySet =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not a key set: {e}"))?;
    if set.keys.len() > MAX_JWKS_KEYS {
        return Err(format!(
            "the JWKS has {} keys, more than the {MAX_JWKS_KEYS} accepted",
            set.keys.len()
        ));
    }
    let mut keys = BTreeMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let Some(kid) = jwk.kid.clone().filter(|kid| !kid.is_empty()) else {
            continue;
        };
        let usable = VerificationKey::from_jwk(&jwk)
            .ok()
            .and_then(|key| TokenKey::new(&key).ok());
        match usable {
            Some(key) => {
                keys.insert(kid, key);
            }
            None => {
                tracing::debug!(kid = %kid.chars().take(64).collect::<String>(), "JWKS key skipped")
            }
        }
    }
    Ok(keys)
}
