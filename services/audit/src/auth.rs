//! Officer sign-in: a bearer token in the `Authorization` header, or the same token kept
//! in an HttpOnly session cookie by the login form. Tokens are the services' EdDSA JWTs,
//! verified by [`TokenVerifier`](blindledger_gate::TokenVerifier); what each officer may
//! do is the policy's decision ([`crate::access`]).

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use blindledger_gate::Principal;

use crate::error::AppError;
use crate::state::AppState;

/// Name of the session cookie holding the token.
pub const SESSION_COOKIE: &str = "bl_audit_session";

/// The signed-in officer whose request the policy allowed.
#[derive(Debug, Clone)]
pub struct Officer(pub Principal);

/// The token of a request: the bearer header first, then the session cookie.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| cookie(headers, SESSION_COOKIE))
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Officer {
    type Rejection = AppError;

    /// Set by the gate on the routes it guards; a handler on an unguarded route gets
    /// nobody, so forgetting the gate fails closed.
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Officer>()
            .cloned()
            .ok_or(AppError::Unauthenticated)
    }
}

/// The `Set-Cookie` value keeping `token` for the session: HttpOnly (no script reads it),
/// SameSite=Strict (no other site sends it), whole site, gone when the token expires
/// (`time_left`), and `Secure` when asked.
pub fn session_cookie(token: &str, secure: bool, time_left: Option<Duration>) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = time_left
        .map(|left| format!("; Max-Age={}", left.as_secs()))
        .unwrap_or_default();
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{max_age}{secure}")
}

/// Whether the request reached the proxy in front of the service over TLS, as the proxy
/// says in `X-Forwarded-Proto` or `Forwarded: proto=`. Used only to mark the cookie
/// `Secure`, which a forged header can make stricter, never weaker.
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    let proto = |value: &str| value.trim().eq_ignore_ascii_case("https");
    let x_forwarded = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(proto);
    let forwarded = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(key, value)| key.eq_ignore_ascii_case("proto") && proto(value.trim_matches('"')));
    x_forwarded || forwarded
}

/// The `Set-Cookie` value ending the session.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}
