//! Officer sign-in: a bearer token in the `Authorization` header, or the same token kept
//! in an HttpOnly session cookie by the login form. Tokens are the services' EdDSA JWTs,
//! verified by [`TokenVerifier`]; the dashboard admits the roles `auditor` and `admin`,
//! signed commands need `admin`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use blindledger_gate::Principal;

use crate::error::AppError;
use crate::state::AppState;

/// Name of the session cookie holding the token.
pub const SESSION_COOKIE: &str = "bl_audit_session";
/// Roles that may read the dashboard.
const READER_ROLES: [&str; 2] = ["auditor", "admin"];

/// A signed-in officer allowed to read the audit trail.
#[derive(Debug, Clone)]
pub struct Officer(pub Principal);

/// A signed-in officer with the `admin` role.
#[derive(Debug, Clone)]
pub struct AdminOfficer(pub Principal);

/// An officer on an HTML page: without a valid session the browser is sent to `/login`.
#[derive(Debug, Clone)]
pub struct PageOfficer(pub Principal);

/// The token of a request: the bearer header first, then the session cookie.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| cookie(headers, SESSION_COOKIE))
}

/// The value of cookie `name`, if sent.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Verifies the request's token and requires one of `roles`.
fn authenticate(parts: &Parts, state: &AppState, roles: &[&str]) -> Result<Principal, AppError> {
    let token = request_token(&parts.headers).ok_or(AppError::Unauthenticated)?;
    let principal = state.tokens.verify(token).map_err(|err| {
        tracing::debug!(reason = err.reason(), "sign-in token refused");
        AppError::Unauthenticated
    })?;
    if principal.roles.iter().any(|r| roles.contains(&r.as_str())) {
        Ok(principal)
    } else {
        Err(AppError::Forbidden("the auditor or admin role is required"))
    }
}

impl FromRequestParts<AppState> for Officer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        authenticate(parts, state, &READER_ROLES).map(Officer)
    }
}

impl FromRequestParts<AppState> for AdminOfficer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        authenticate(parts, state, &["admin"])
            .map_err(|err| match err {
                AppError::Forbidden(_) => AppError::Forbidden("the admin role is required"),
                other => other,
            })
            .map(AdminOfficer)
    }
}

impl FromRequestParts<AppState> for PageOfficer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match authenticate(parts, state, &READER_ROLES) {
            Ok(principal) => Ok(PageOfficer(principal)),
            Err(AppError::Unauthenticated) => Err(Redirect::to("/login").into_response()),
            Err(other) => Err(other.into_response()),
        }
    }
}

/// The `Set-Cookie` value keeping `token` for the session: HttpOnly (no script reads it),
/// SameSite=Strict (no other site sends it), whole site.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// The `Set-Cookie` value ending the session.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}
