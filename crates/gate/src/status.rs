//! gRPC statuses with `google.rpc` error details (AIP-193), so a client can act on an error
//! without parsing its message: every status carries an `ErrorInfo` (a stable `reason` in
//! UPPER_SNAKE_CASE, the `blindledger` domain, and the policy decision's id when the gate
//! decided); `INVALID_ARGUMENT` carries a `BadRequest` naming the field when one is known;
//! `UNAVAILABLE` and `RESOURCE_EXHAUSTED` carry a `RetryInfo` saying when to retry.
//!
//! The details travel in the `grpc-status-details-bin` trailer, as every gRPC library reads
//! them (`tonic-types`, grpc-go's `status.FromError`, grpcio's `rpc_status`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The metadata key (gRPC) and header (HTTP) carrying the decision id to the caller.
pub const DECISION_ID_METADATA: &str = "x-decision-id";
/// The `ErrorInfo.domain` of every BlindLedger error.
pub const DOMAIN: &str = "blindledger";
/// The `ErrorInfo.metadata` key of the policy decision's id.
pub const DECISION_ID_KEY: &str = "decision_id";
/// How long a caller should wait before retrying an `UNAVAILABLE` or `RESOURCE_EXHAUSTED`
/// call, as `RetryInfo.retry_delay`.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What one error says beyond its code and message.
#[derive(Debug, Clone, Default)]
pub struct Details {
    reason: &'static str,
    decision_id: Option<String>,
    field: Option<(String, String)>,
    retry_after: Option<Duration>,
    never_retry: bool,
}

impl Details {
    /// Details with `reason` (UPPER_SNAKE_CASE, stable: clients match on it).
    pub fn reason(reason: &'static str) -> Self {
        Details {
            reason,
            ..Details::default()
        }
    }

    /// The id of the policy decision behind the error.
    pub fn decision_id(mut self, decision_id: &str) -> Self {
        self.decision_id = Some(decision_id.to_string());
        self
    }

    /// The request field that is wrong, with what is wrong with it.
    pub fn field(mut self, field: &str, description: &str) -> Self {
        self.field = Some((field.to_string(), description.to_string()));
        self
    }

    /// When to retry, overriding [`RETRY_DELAY`].
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// No `RetryInfo`, whatever the code: retrying the same request cannot succeed (one
    /// over a size limit).
    pub fn never_retry(mut self) -> Self {
        self.never_retry = true;
        self
    }

    /// The status: `code`, `message`, and these details.
    pub fn status(self, code: Code, message: impl Into<String>) -> Status {
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        if let Some(id) = &self.decision_id {
            metadata.insert(DECISION_ID_KEY.to_string(), id.clone());
        }
        details.set_error_info(self.reason, DOMAIN, metadata);
        if let Some((field, description)) = self.field {
            details.add_bad_request_violation(field, description);
        }
        let retry = match code {
            _ if self.never_retry => None,
            Code::Unavailable | Code::ResourceExhausted => {
                Some(self.retry_after.unwrap_or(RETRY_DELAY))
            }
            _ => self.retry_after,
        };
        if retry.is_some() {
            details.set_retry_info(retry);
        }
        Status::with_error_details_and_metadata(code, message, details, MetadataMap::new())
    }
}

/// The `ErrorInfo.reason` of a status, if it carries one.
pub fn reason_of(status: &Status) -> Option<String> {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .filter(|reason| !reason.is_empty())
}
