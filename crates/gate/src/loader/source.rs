//! Where a bundle comes from: a file, or an HTTP bundle server polled with ETags.
//!
//! The HTTP side follows OPA's bundle service protocol: `GET` the bundle URL with
//! `If-None-Match` set to the ETag of the active revision; `304 Not Modified` means nothing
//! changed, `200` brings a new archive and its ETag, `404` means the server has no bundle of
//! that name yet.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::GateError;

/// The location of one bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum BundleSource {
    /// A `.tar.gz` file on disk.
    File(PathBuf),
    /// An `http://` or `https://` URL of a bundle server.
    Http(String),
}

impl FromStr for BundleSource {
    type Err = String;

    /// Reads a URL when the text starts with `http://` or `https://`, a path otherwise.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err("empty bundle location".to_owned());
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            reqwest::Url::parse(text).map_err(|e| format!("bundle URL {text}: {e}"))?;
            return Ok(BundleSource::Http(text.to_owned()));
        }
        Ok(BundleSource::File(PathBuf::from(text)))
    }
}

impl TryFrom<String> for BundleSource {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<BundleSource> for String {
    fn from(source: BundleSource) -> Self {
        source.to_string()
    }
}

impl fmt::Display for BundleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSource::File(path) => write!(f, "{}", path.display()),
            BundleSource::Http(url) => f.write_str(url),
        }
    }
}

/// What a source gave for one poll.
pub(super) enum Download {
    /// Nothing there (no file, HTTP 404).
    Missing,
    /// The server says the revision with this ETag is still current (HTTP 304).
    NotModified,
    /// The archive's bytes, with the server's ETag if any and whether it holds long polls.
    Bytes {
        body: Vec<u8>,
        etag: Option<String>,
        long_polling: bool,
    },
}

/// The media type by which a bundle server says it supports long polling (as OPA's).
const LONG_POLLING_CONTENT_TYPE: &str = "application/vnd.openpolicyagent.bundles";

/// What a long poll ended with.
pub(super) enum Poll {
    /// The server has a new revision.
    Changed,
    /// The wait ran out with the revision unchanged.
    Unchanged,
}

/// Reads bundle sources; one HTTP client (and connection pool) for all of them.
pub(super) struct Fetcher {
    http: reqwest::Client,
    max_bytes: u64,
    timeout: Duration,
    /// A file holding the bearer token sent to bundle servers; read before each request,
    /// so a token rotated on disk is used at once.
    pub(super) token_file: Option<std::path::PathBuf>,
}

impl Fetcher {
    /// Creates a fetcher refusing archives over `max_bytes`, connecting to HTTPS servers
    /// with `tls`.
    pub(super) fn new(
        max_bytes: u64,
        timeout: Duration,
        tls: &crate::ClientTls,
    ) -> Result<Self, GateError> {
        // reqwest is built without a default crypto provider so that TLS uses ring, as the
        // rest of the workspace does, instead of compiling aws-lc. A provider installed
        // earlier in the process is just as good, so the error is ignored.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let builder = reqwest::Client::builder()
            .user_agent(concat!("blindledger/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout);
        let http = tls
            .apply(builder)
            .map_err(|e| GateError::Internal(format!("bundle client TLS: {e}")))?
            .build()
            .map_err(|e| GateError::Internal(format!("HTTP client: {e}")))?;
        Ok(Fetcher {
            http,
            max_bytes,
            timeout,
            token_file: None,
        })
    }

    /// A GET of `url`, with the caller's trace context, and the bearer token when one is
    /// configured. The token itself is
    /// never in an error: only the file that could not be read.
    async fn request(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        // The reload's trace continues at the bundle server.
        let mut traced = http::HeaderMap::new();
        blindledger_telemetry::traces::inject_current(&mut traced);
        let request = self.http.get(url).headers(traced);
        let Some(path) = &self.token_file else {
            return Ok(request);
        };
        let token = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("reading the bundle token file {}: {e}", path.display()))?;
        let token = token.trim();
        if token.is_empty() {
            return Err(format!("the bundle token file {} is empty", path.display()));
        }
        Ok(request.bearer_auth(token))
    }

    /// Polls `source` once; `etag` is the ETag of the active revision, if it came over HTTP.
    pub(super) async fn fetch(
        &self,
        bundle: &str,
        source: &BundleSource,
        etag: Option<&str>,
    ) -> Result<Download, GateError> {
        match source {
            BundleSource::File(path) => match tokio::fs::read(path).await {
                Ok(body) => Ok(Download::Bytes {
                    body,
                    etag: None,
                    long_polling: false,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Download::Missing),
                Err(source) => Err(GateError::Read {
                    bundle: bundle.to_owned(),
                    path: path.clone(),
                    source,
                }),
            },
            BundleSource::Http(url) => {
                self.get(url, etag)
                    .await
                    .map_err(|reason| GateError::Download {
                        bundle: bundle.to_owned(),
                        url: url.clone(),
                        reason,
                    })
            }
        }
    }

    async fn get(&self, url: &str, etag: Option<&str>) -> Result<Download, String> {
        let mut request = self.request(url).await?;
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => return Ok(Download::NotModified),
            reqwest::StatusCode::NOT_FOUND => return Ok(Download::Missing),
            status if !status.is_success() => return Err(format!("server answered {status}")),
            _ => {}
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let long_polling = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == LONG_POLLING_CONTENT_TYPE.as_bytes());
        let too_large = || format!("bundle is larger than {} bytes", self.max_bytes);
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(too_large());
        }
        // Read chunk by chunk so a server that lies about (or omits) the length cannot make
        // the service buffer more than the limit.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Download::Bytes {
            body,
            etag,
            long_polling,
        })
    }

    /// Asks the server at `url` to answer once the revision with `etag` is replaced, or
    /// after `wait` (`Prefer: wait=N`). The new archive itself is left to the next poll:
    /// bundles are small, and one download path keeps one set of checks.
    pub(super) async fn wait_for_change(
        &self,
        url: &str,
        etag: &str,
        wait: Duration,
    ) -> Result<Poll, String> {
        let response = self
            .request(url)
            .await?
            .header(reqwest::header::IF_NONE_MATCH, etag)
            .header("prefer", format!("wait={}", wait.as_secs().max(1)))
            // The server holds the request for the wait; the usual limit applies after it.
            .timeout(wait + self.timeout)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        match response.status() {
            reqwest::StatusCode::NOT_MODIFIED => Ok(Poll::Unchanged),
            status if status.is_success() || status == reqwest::StatusCode::NOT_FOUND => {
                Ok(Poll::Changed)
            }
            status => Err(format!("server answered {status}")),
        }
    }
}

/// Formats a reqwest error with its causes ("error sending request: connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::BundleSource;

    #[test]
    fn locations_parse_as_files_or_urls() {
        assert_eq!(
            "bundles/policy.tar.gz".parse::<BundleSource>(),
            Ok(BundleSource::File("bundles/policy.tar.gz".into()))
        );
        assert_eq!(
            "http://controller:8181/bundles/risk".parse::<BundleSource>(),
            Ok(BundleSource::Http(
                "http://controller:8181/bundles/risk".into()
            ))
        );
        assert!("http://".parse::<BundleSource>().is_err());
        assert!("".parse::<BundleSource>().is_err());
    }
}
