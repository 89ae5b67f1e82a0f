//! The tower layer that authenticates every request before it reaches a gRPC service.
//!
//! It wraps a whole tonic server (`Server::builder().layer(AuthLayer::new(..))`), so no
//! handler can be reached without a verified token unless its path is declared public.
//!
//! On a server that requires client certificates (mTLS), the certificate's identity is
//! the calling workload: it is added to the token's principal as `peer` (the policy sees
//! it as `input.peer`), and a workload granted roles in [`AuthLayer::peer_grants`] may
//! call without a token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

use crate::auth::{AuthError, Principal, TokenVerifier};

/// What a client certificate identity calling without a token is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerGrant {
    /// Roles, as a token's.
    pub roles: Vec<String>,
    /// Tenants, as a token's.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// Counter of refused requests, labelled by `reason`.
const AUTH_FAILURES: &str = "blindledger_auth_failures_total";

/// Authenticates requests with a bearer token; see [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    public_prefixes: Arc<Vec<String>>,
    peers: Arc<BTreeMap<String, PeerGrant>>,
}

impl AuthLayer {
    /// Creates a layer that requires a token valid for `verifier` on every path.
    pub fn new(verifier: TokenVerifier) -> Self {
        AuthLayer {
            verifier,
            public_prefixes: Arc::new(Vec::new()),
            peers: Arc::new(BTreeMap::new()),
        }
    }

    /// Lets workloads whose client certificate identity (URI or DNS SAN) is a key of
    /// `grants` call without a token, as principals named by that identity with the
    /// granted roles and tenants. Only meaningful on a server that verifies client
    /// certificates against a CA; elsewhere no request carries an identity.
    pub fn peer_grants(mut self, grants: BTreeMap<String, PeerGrant>) -> Self {
        self.peers = Arc::new(grants);
        self
    }

    /// Lets requests whose path starts with `prefix` (e.g. `/grpc.health.v1.Health/`)
    /// through without a token.
    pub fn public_path_prefix(mut self, prefix: &str) -> Self {
        Arc::make_mut(&mut self.public_prefixes).push(prefix.to_string());
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
            public_prefixes: Arc::clone(&self.public_prefixes),
            peers: Arc::clone(&self.peers),
        }
    }
}

/// Reads `authorization: Bearer <jwt>`, verifies it and inserts the
/// [`Principal`](crate::Principal) and the [`CalledMethod`] into the request's extensions, where tonic handlers find
/// it. A request without a valid token is answered `UNAUTHENTICATED` at once and never
/// reaches the inner service.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: TokenVerifier,
    public_prefixes: Arc<Vec<String>>,
    peers: Arc<BTreeMap<String, PeerGrant>>,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if self
            .public_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            return Box::pin(self.inner.call(request));
        }
        // The service that was polled ready handles this request; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let peers = Arc::clone(&self.peers);
        Box::pin(async move {
            let peer = peer_identity(request.extensions());
            match authenticate(&verifier, &peers, request.headers(), peer).await {
                Ok(principal) => {
                    let method = CalledMethod(request.uri().path().to_owned());
                    request.extensions_mut().insert(principal);
                    request.extensions_mut().insert(method);
                    inner.call(request).await
                }
                Err(error) => {
                    metrics::counter!(AUTH_FAILURES, "reason" => error.reason()).increment(1);
                    tracing::debug!(
                        reason = error.reason(),
                        path = request.uri().path(),
                        "request refused: authentication failed"
                    );
                    Ok(error.to_status().into_http())
                }
            }
        })
    }
}

/// The caller: its token's principal (with the certificate identity as `peer`), or, with
/// no token, the principal granted to its certificate identity.
async fn authenticate(
    verifier: &TokenVerifier,
    peers: &BTreeMap<String, PeerGrant>,
    headers: &http::HeaderMap,
    peer: Option<String>,
) -> Result<Principal, AuthError> {
    if headers.contains_key(http::header::AUTHORIZATION) {
        let mut principal = verify_bearer(verifier, headers).await?;
        principal.peer = peer;
        return Ok(principal);
    }
    let peer = peer.ok_or(AuthError::Missing)?;
    let grant = peers.get(&peer).ok_or(AuthError::Missing)?;
    Ok(Principal {
        subject: peer.clone(),
        roles: grant.roles.clone(),
        tenants: grant.tenants.clone(),
        peer: Some(peer),
        expires_at: None,
    })
}

/// The identity of the verified client certificate the connection was made with: its
/// first URI SAN (a SPIFFE id, say), else its first DNS SAN. The TLS layer has already
/// checked the chain against the configured CA; `None` without one.
fn peer_identity(extensions: &http::Extensions) -> Option<String> {
    let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let certs = info.peer_certs()?;
    let cert = x509_cert::Certificate::from_der(certs.first()?.as_ref()).ok()?;
    let (_, names) = cert.tbs_certificate.get::<SubjectAltName>().ok()??;
    let uri = names.0.iter().find_map(|name| match name {
        GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_owned()),
        _ => None,
    });
    uri.or_else(|| {
        names.0.iter().find_map(|name| match name {
            GeneralName::DnsName(dns) => Some(dns.as_str().to_owned()),
            _ => None,
        })
    })
}

async fn verify_bearer(
    verifier: &TokenVerifier,
    headers: &http::HeaderMap,
) -> Result<Principal, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("authorization header is not ASCII".to_string()))?;
    // The scheme is case-insensitive (RFC 9110), the token itself is not.
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(AuthError::Malformed(
                "authorization is not a bearer token".to_string(),
            ))
        }
    };
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    verifier.verify_async(token).await
}

/// The full gRPC method of an authenticated request (`/package.Service/Method`), as the
/// caller addressed it. tonic's servers do not record it, and the policy decides on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledMethod(pub String);
