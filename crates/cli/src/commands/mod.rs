//! One module per group of verbs; each exposes its clap arguments and a `run` function.

pub mod account;
pub mod aggregate;
pub mod audit;
pub mod balance;
pub mod controller;
pub mod db;
pub mod dev;
pub mod jobs;
pub mod keys;
pub mod money;
pub mod policy;
pub mod risk;
pub mod token;
pub mod transfers;

use std::path::PathBuf;

use anyhow::Context as _;
use blindledger_client::{LedgerClient, TlsSettings};

use crate::home::Home;

/// What every client verb needs: where the ledger is and where local keys live.
#[derive(Debug, Clone)]
pub struct Context {
    /// The ledger's gRPC endpoint.
    pub endpoint: String,
    /// `--home`, when given.
    pub home: Option<PathBuf>,
    /// `--token`, when given; else the token file in the home directory.
    pub token: Option<String>,
    /// `--allow-plaintext`: plaintext http to a ledger on another host.
    pub allow_plaintext: bool,
    /// `--tls-ca`, `--tls-cert`, `--tls-key`.
    pub tls: TlsFiles,
}

/// The TLS files named on the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificate of the ledger; TLS when set.
    pub ca: Option<PathBuf>,
    /// Client certificate, for mTLS.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The settings to connect with, `None` for plaintext.
    fn settings(&self) -> anyhow::Result<Option<TlsSettings>> {
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let Some(ca) = &self.ca else {
            anyhow::ensure!(
                self.cert.is_none(),
                "--tls-cert needs --tls-ca: client certificates are sent over TLS"
            );
            return Ok(None);
        };
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        Ok(Some(TlsSettings {
            ca: read(ca)?,
            identity,
        }))
    }
}

impl Context {
    /// Connects to the ledger, sending the access token (`--token`, `BLINDLEDGER_TOKEN`, or
    /// `<home>/token`, which `blindledger dev` writes).
    pub async fn connect(&self) -> anyhow::Result<LedgerClient> {
        let client = match self.tls.settings()? {
            None if self.allow_plaintext => LedgerClient::connect_plaintext(&self.endpoint).await,
            tls => LedgerClient::connect_with(&self.endpoint, tls).await,
        }
        .with_context(|| format!("connecting to {}", self.endpoint))?;
        let token = match &self.token {
            Some(token) => Some(token.clone()),
            None => self.home()?.token()?,
        };
        match token {
            Some(token) => Ok(client.with_token(&token)?),
            None => Ok(client),
        }
    }

    /// Resolves the home directory.
    pub fn home(&self) -> anyhow::Result<Home> {
        Home::resolve(self.home.as_deref())
    }
}

/// The policy decision id a service put in its answer (`x-decision-id`), bounded.
pub(crate) fn decision_id_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("x-decision-id")
        .and_then(|value| value.to_str().ok())
        .map(|id| id.chars().take(64).collect())
}

/// `--tls-ca`, `--tls-cert` and `--tls-key`, for the HTTPS services (the controller, the
/// audit service) as for the ledger: set once, before any command runs, so every command
/// that calls one of them uses them without passing them through each verb.
static HTTP_TLS: std::sync::OnceLock<TlsFiles> = std::sync::OnceLock::new();

/// Makes `tls` the TLS files of every HTTPS call this process makes.
pub fn set_http_tls(tls: TlsFiles) {
    let _ = HTTP_TLS.set(tls);
}

/// Sends one request to an HTTP service (`name`, at `url`) with the command's trace context
/// and a bearer `token` when given;
/// the response is returned whatever its status, for the caller to read its own error shape.
pub(crate) async fn send_http(
    name: &str,
    url: &str,
    token: Option<&str>,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = HTTP_TLS.get().cloned().unwrap_or_default();
    let client = blindledger_gate::ClientTls {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
    }
    .apply(reqwest::Client::builder())
    .map_err(anyhow::Error::msg)?
    .build()
    .context("building the HTTP client")?;
    let base = url.trim_end_matches('/');
    // The command's trace continues at the service.
    let mut traced = reqwest::header::HeaderMap::new();
    blindledger_telemetry::traces::inject_current(&mut traced);
    let mut builder = request(&client, base).headers(traced);
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    builder
        .send()
        .await
        .with_context(|| format!("calling the {name} at {base}"))
}
