//! TLS settings of the HTTPS clients a service runs (bundle polling): which CA the server's
//! certificate must chain to, and the certificate this service presents when the server
//! requires one (mTLS).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The PEM files of an HTTPS client's TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTls {
    /// CA certificates (PEM) the server's certificate must chain to; set, only they are
    /// trusted, not the system's roots. Unset: the system's roots.
    pub ca: Option<PathBuf>,
    /// Certificate chain (PEM) presented to servers that require one; with `key`.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of `cert`.
    pub key: Option<PathBuf>,
}

impl ClientTls {
    /// True when nothing is configured (the system's roots, no client certificate).
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// `builder` with these settings applied; the error names the file that is missing or
    /// not a certificate or key (never its content).
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let mut builder = builder;
        if let Some(ca) = &self.ca {
            let pem = read(ca)?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{}: not PEM certificates: {e}", ca.display()))?;
            if roots.is_empty() {
                return Err(format!("{}: no certificate in it", ca.display()));
            }
            builder = builder.tls_certs_only(roots);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    format!(
                        "{} and {}: not a certificate and its key: {e}",
                        cert.display(),
                        key.display()
                    )
                })?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err("a client certificate and its key go together".to_owned()),
        }
        Ok(builder)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}
