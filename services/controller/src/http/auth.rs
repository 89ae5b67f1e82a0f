//! Bearer-token authentication of the JSON API, and role checks.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use blindledger_gate::Principal;

use super::AppState;
use crate::error::ControllerError;

/// Roles that may download bundles (services, with their `bundle_token_file`).
pub const BUNDLE_ROLES: &[&str] = &["bundle_reader", "admin"];
/// Roles that may read scores and history.
pub const READ_ROLES: &[&str] = &["admin", "ci", "auditor"];
/// Roles that may push policy (which a push's tests and impact threshold still vet).
pub const POLICY_ROLES: &[&str] = &["admin", "ci"];
/// Roles that may run a cycle on demand or serve an earlier revision again: a rollback
/// skips the tests and impact analysis a push goes through, so a CI pipeline cannot order
/// one (an officer can, with a signed command).
pub const ADMIN_ROLES: &[&str] = &["admin"];

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Fails with 403 unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[&str]) -> Result<(), ControllerError> {
        if self.0.roles.iter().any(|r| roles.contains(&r.as_str())) {
            return Ok(());
        }
        Err(ControllerError::Forbidden(format!(
            "one of the roles {roles:?} is required"
        )))
    }

    /// How long the caller's token stays valid (unbounded for a caller without expiry).
    pub fn time_left(&self) -> std::time::Duration {
        self.0.time_left().unwrap_or(std::time::Duration::MAX)
    }

    /// Who is calling.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ControllerError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let unauthenticated = |m: &str| ControllerError::Unauthenticated(m.to_string());
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthenticated("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthenticated("malformed authorization header"))?;
        state
            .tokens
            .verify_async(token.trim())
            .await
            .map(Caller)
            .map_err(|e| {
                if e.is_unavailable() {
                    ControllerError::Unavailable(e.to_string())
                } else {
                    unauthenticated(&e.to_string())
                }
            })
    }
}
