//! The controller's error type and its one translation to an HTTP response.
//!
//! Responses carry `{"error": "<code>", "message": "...", "report": {...}?}` with a status
//! that says what the caller can do. Messages name the problem but never hold key material
//! or amounts (the controller never sees one); internal causes are logged once, here.

use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use blindledger_gate::{Refusal, RefusalKind, DECISION_ID_METADATA};
use blindledger_store::StoreError;
use serde_json::json;

use crate::push_report::PushReport;

/// Everything a controller operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// No or an invalid bearer token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's roles do not allow the operation.
    #[error("{0}")]
    Forbidden(String),
    /// The policy gate refused the request: 403 with the policy's reasons, 503 when it
    /// cannot decide (no policy served yet, decision log unwritable); the decision id goes
    /// back in `x-decision-id`.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The named bundle revision or entity does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A pushed bundle was refused; the report says why and what was measured.
    #[error("{message}")]
    PushRefused {
        /// Machine-readable reason (`unsigned`, `signature`, `tests_failed`,
        /// `impact_over_threshold`...).
        reason: &'static str,
        /// What went wrong, in words.
        message: String,
        /// The push report, stored as well.
        report: Box<PushReport>,
    },
    /// The operation conflicts with the current state (e.g. a revision reused with other
    /// contents, a rollback target that no longer builds).
    #[error("{0}")]
    Conflict(String),
    /// A dependency needed to decide (an identity provider's keys) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed: unreachable or losing races (503, retry later), or a bug or a
    /// schema problem (500), as [`StoreError::is_transient`] tells.
    #[error("{}", if .0.is_transient() { "storage unavailable, retry later" } else { "storage error" })]
    Storage(#[from] StoreError),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ControllerError {
    /// The machine-readable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ControllerError::Unauthenticated(_) => "unauthenticated",
            ControllerError::Unavailable(_) => "unavailable",
            ControllerError::Forbidden(_) => "forbidden",
            ControllerError::Refused(refusal) => match refusal.kind() {
                RefusalKind::InvalidArgument => "invalid_argument",
                RefusalKind::Denied => "forbidden",
                RefusalKind::Unavailable => "unavailable",
            },
            ControllerError::InvalidArgument(_) => "invalid_argument",
            ControllerError::NotFound(_) => "not_found",
            ControllerError::PushRefused { reason, .. } => reason,
            ControllerError::Conflict(_) => "conflict",
            ControllerError::Storage(e) if e.is_transient() => "unavailable",
            ControllerError::Storage(_) => "internal",
            ControllerError::Internal(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ControllerError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ControllerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ControllerError::Forbidden(_) => StatusCode::FORBIDDEN,
            ControllerError::Refused(refusal) => {
                StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::FORBIDDEN)
            }
            ControllerError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ControllerError::NotFound(_) => StatusCode::NOT_FOUND,
            ControllerError::PushRefused { reason, .. } => match *reason {
                "impact_over_threshold" | "revision_exists" => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            },
            ControllerError::Conflict(_) => StatusCode::CONFLICT,
            ControllerError::Storage(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ControllerError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ControllerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ControllerError {
    fn into_response(self) -> Response {
        match &self {
            ControllerError::Storage(cause) => {
                tracing::error!(error = %cause, cause = ?std::error::Error::source(cause), "storage error");
            }
            ControllerError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            _ => {}
        }
        let mut body = json!({"error": self.code(), "message": self.to_string()});
        if let ControllerError::PushRefused { report, .. } = &self {
            body["report"] = serde_json::to_value(report).unwrap_or_default();
        }
        let mut response = (self.status(), Json(body)).into_response();
        let decision_id = match &self {
            ControllerError::Refused(refusal) => refusal.decision_id(),
            _ => None,
        };
        if let Some(Ok(value)) = decision_id.map(HeaderValue::from_str) {
            response.headers_mut().insert(DECISION_ID_METADATA, value);
        }
        response
    }
}

impl From<sqlx::Error> for ControllerError {
    fn from(error: sqlx::Error) -> Self {
        ControllerError::Storage(error.into())
    }
}

impl From<blindledger_policy::BundleError> for ControllerError {
    fn from(error: blindledger_policy::BundleError) -> Self {
        ControllerError::Internal(error.into())
    }
}

/// The result of controller operations.
pub type Result<T, E = ControllerError> = std::result::Result<T, E>;
