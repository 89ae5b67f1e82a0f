//! The HTTP server of the controller and the audit service: plain HTTP, or HTTPS when given
//! a certificate, optionally requiring client certificates (mTLS); and a graceful shutdown
//! that lets open requests finish for a bounded time, then closes their connections.
//!
//! Built on `axum-server`, which serves an axum router over rustls with a shutdown grace
//! period (`axum::serve` has neither TLS nor a grace period).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS files of an HTTP listener, as the services' configuration names them
/// (`tls_cert`, `tls_key`, `tls_client_ca`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    /// Certificate chain (PEM).
    pub cert: Option<&'a Path>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<&'a Path>,
    /// CA certificates (PEM) client certificates must chain to; set, every client must
    /// present one.
    pub client_ca: Option<&'a Path>,
}

impl TlsFiles<'_> {
    /// The rustls server configuration, `None` for plain HTTP. Errors name the file and
    /// what is wrong with it, never its content.
    pub fn server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        let (cert, key) = match (self.cert, self.key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) => {
                if self.client_ca.is_some() {
                    return Err(
                        "tls_client_ca needs tls_cert and tls_key: client certificates \
                                are checked over TLS"
                            .to_owned(),
                    );
                }
                return Ok(None);
            }
            _ => return Err("tls_cert and tls_key go together".to_owned()),
        };
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("{}: no private key read: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?;
        let builder = match self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for root in certificates(ca)? {
                    roots
                        .add(root)
                        .map_err(|e| format!("{}: not a CA certificate: {e}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.into(),
                    provider,
                )
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            format!(
                "{}: the key does not fit the certificate: {e}",
                cert.display()
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(Arc::new(config)))
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: no certificate read: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(chain)
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` completes; then
/// accepts no new connection, lets open requests finish for at most `grace`, closes what
/// is left and returns.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    let stopper = tokio::spawn(async move {
        shutdown.await;
        stop.graceful_shutdown(Some(grace));
    });
    let listener = listener.into_std()?;
    let service = router.into_make_service();
    let served = match tls {
        Some(config) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(service)
                .await
        }
    };
    stopper.abort();
    served
}
