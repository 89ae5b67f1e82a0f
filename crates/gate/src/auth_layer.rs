//! The tower layer that authenticates every request before it reaches a gRPC service.
//!
//! It wraps a whole tonic server (`Server::builder().layer(AuthLayer::new(..))`), so no
//! handler can be reached without a verified token unless its path is declared public.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready};
use tower::{Layer, Service};

use crate::auth::{AuthError, TokenVerifier};

/// Counter of refused requests, labelled by `reason`.
const AUTH_FAILURES: &str = "blindledger_auth_failures_total";

/// Authenticates requests with a bearer token; see [`AuthService`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: TokenVerifier,
    public_prefixes: Arc<Vec<String>>,
}

impl AuthLayer {
    /// Creates a layer that requires a token valid for `verifier` on every path.
    pub fn new(verifier: TokenVerifier) -> Self {
        AuthLayer {
            verifier,
            public_prefixes: Arc::new(Vec::new()),
        }
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
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<S::Response, S::Error>>, S::Future>;

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
            return Either::Right(self.inner.call(request));
        }
        match authenticate(&self.verifier, request.headers()) {
            Ok(principal) => {
                let method = CalledMethod(request.uri().path().to_owned());
                request.extensions_mut().insert(principal);
                request.extensions_mut().insert(method);
                Either::Right(self.inner.call(request))
            }
            Err(error) => {
                metrics::counter!(AUTH_FAILURES, "reason" => error.reason()).increment(1);
                tracing::debug!(
                    reason = error.reason(),
                    path,
                    "request refused: authentication failed"
                );
                let response = tonic::Status::unauthenticated(error.to_string()).into_http();
                Either::Left(futures::future::ready(Ok(response)))
            }
        }
    }
}

fn authenticate(
    verifier: &TokenVerifier,
    headers: &http::HeaderMap,
) -> Result<crate::Principal, AuthError> {
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
    verifier.verify(token)
}

/// The full gRPC method of an authenticated request (`/package.Service/Method`), as the
/// caller addressed it. tonic's servers do not record it, and the policy decides on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledMethod(pub String);
