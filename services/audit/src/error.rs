//! The service's error type and its one translation to an HTTP response.
//!
//! Messages are safe to show: they never carry an amount, a key or a token. Internal
//! causes are logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use blindledger_audit::admin::{AdminError, CommandRejection};
use blindledger_audit::AuditError;
use blindledger_gate::{Refusal, DECISION_ID_METADATA};
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid token.
    #[error("sign-in required")]
    Unauthenticated,
    /// Whether the caller's token is valid cannot be told now (the signing keys cannot be
    /// fetched): 503, retry later rather than sign in again.
    #[error("signing keys unavailable, retry later")]
    KeysUnavailable,
    /// The policy gate refused the request: 403 with the policy's reasons, 400 for input it
    /// refused before deciding, 503 when it cannot decide (no policy loaded, decision log
    /// unwritable); the decision id goes back in `x-decision-id`.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A malformed parameter or body.
    #[error("{0}")]
    BadRequest(String),
    /// A named record does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A signed admin command was refused.
    #[error(transparent)]
    Rejected(#[from] CommandRejection),
    /// Storage failed.
    #[error("audit storage failed")]
    Audit(#[from] AuditError),
}

impl From<AdminError> for AppError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Rejected(rejection) => AppError::Rejected(rejection),
            AdminError::Audit(err) => AppError::Audit(err),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Audit(AuditError::from(err))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Refused(refusal) => {
                StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::FORBIDDEN)
            }
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Rejected(CommandRejection::Replayed) => StatusCode::CONFLICT,
            AppError::Rejected(CommandRejection::Malformed { .. })
            | AppError::Rejected(CommandRejection::InvalidTarget { .. }) => StatusCode::BAD_REQUEST,
            AppError::Rejected(_) => StatusCode::FORBIDDEN,
            AppError::Audit(cause) if cause.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Audit(cause) => {
                tracing::error!(error = %cause, cause = ?std::error::Error::source(cause), "audit request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut body = json!({"error": self.to_string()});
        if let AppError::Rejected(rejection) = &self {
            body["rejection"] = json!(rejection.label());
        }
        let mut response = (status, Json(body)).into_response();
        if let AppError::Refused(refusal) = &self {
            decision_id_header(&mut response, refusal);
        }
        response
    }
}

/// The refusal's decision id in `x-decision-id`, as an allowed request's.
fn decision_id_header(response: &mut Response, refusal: &Refusal) {
    let id = refusal.decision_id().map(axum::http::HeaderValue::from_str);
    if let Some(Ok(value)) = id {
        response.headers_mut().insert(DECISION_ID_METADATA, value);
    }
}
