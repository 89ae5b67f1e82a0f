//! The service's error type and its one translation to an HTTP response.
//!
//! Messages are safe to show: they never carry an amount, a key or a token. Internal
//! causes are logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use blindledger_audit::admin::{AdminError, CommandRejection};
use blindledger_audit::AuditError;
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid token.
    #[error("sign-in required")]
    Unauthenticated,
    /// The policy refused the request (403 with its reasons), or no policy is loaded yet
    /// (503).
    #[error("{message}")]
    Denied {
        /// 403 or 503.
        status: StatusCode,
        /// The gate's answer: the policy's reasons, never a confidential outcome.
        message: String,
    },
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
            AppError::Denied { status, .. } => *status,
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
        (status, Json(body)).into_response()
    }
}
