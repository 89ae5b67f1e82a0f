//! The gate's own answer when it refuses a request, independent of the protocol the request
//! came in: each adapter maps it once, gRPC through `From<Refusal> for tonic::Status`
//! (with `google.rpc` details and the `x-decision-id` metadata) and HTTP through
//! [`Refusal::http_status`] (with the decision id in the `x-decision-id` header).

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::status::{Details, DECISION_ID_METADATA};

/// Why a request was refused, in the terms a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The request's input is not acceptable (a name over its bound, a bad character): the
    /// same request will never be allowed.
    InvalidArgument,
    /// The policy denied it, or could not be evaluated (fail closed).
    Denied,
    /// The gate cannot decide now (no policy loaded, a required bundle inactive, the
    /// decision log unwritable): try again later. Never an allow.
    Unavailable,
}

/// A refusal by the policy gate; its message never holds a confidential outcome and never
/// echoes unbounded input.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    kind: RefusalKind,
    /// `ErrorInfo.reason`: stable, UPPER_SNAKE_CASE.
    reason: &'static str,
    message: String,
    /// The logged decision behind the refusal (none when nothing could be logged).
    decision_id: Option<String>,
    /// The request field at fault, with what is wrong with it.
    field: Option<(String, String)>,
}

impl Refusal {
    pub(crate) fn new(kind: RefusalKind, reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            kind,
            reason,
            message: message.into(),
            decision_id: None,
            field: None,
        }
    }

    pub(crate) fn with_decision_id(mut self, decision_id: &str) -> Self {
        self.decision_id = Some(decision_id.to_string());
        self
    }

    pub(crate) fn with_field(mut self, field: &str, description: &str) -> Self {
        self.field = Some((field.to_string(), description.to_string()));
        self
    }

    /// What kind of refusal this is.
    pub fn kind(&self) -> RefusalKind {
        self.kind
    }

    /// The stable machine-readable reason (`POLICY_DENIED`, `POLICY_NOT_LOADED`, …).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// What happened, in words (the policy's reasons for a denial).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id of the decision-log entry recording the refusal.
    pub fn decision_id(&self) -> Option<&str> {
        self.decision_id.as_deref()
    }

    /// The gRPC code of the refusal.
    pub fn code(&self) -> Code {
        match self.kind {
            RefusalKind::InvalidArgument => Code::InvalidArgument,
            RefusalKind::Denied => Code::PermissionDenied,
            RefusalKind::Unavailable => Code::Unavailable,
        }
    }

    /// The HTTP status of the refusal: 400, 403 or 503.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            RefusalKind::InvalidArgument => 400,
            RefusalKind::Denied => 403,
            RefusalKind::Unavailable => 503,
        }
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        let code = refusal.code();
        let mut details = Details::reason(refusal.reason);
        if let Some(id) = &refusal.decision_id {
            details = details.decision_id(id);
        }
        if let Some((field, description)) = &refusal.field {
            details = details.field(field, description);
        }
        let mut status = details.status(code, refusal.message);
        if let Some(id) = refusal.decision_id {
            if let Ok(value) = MetadataValue::try_from(id.as_str()) {
                status.metadata_mut().insert(DECISION_ID_METADATA, value);
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::reason_of;

    #[test]
    fn each_kind_maps_to_one_grpc_code_and_one_http_status() {
        let cases = [
            (RefusalKind::InvalidArgument, Code::InvalidArgument, 400),
            (RefusalKind::Denied, Code::PermissionDenied, 403),
            (RefusalKind::Unavailable, Code::Unavailable, 503),
        ];
        for (kind, code, http) in cases {
            let refusal = Refusal::new(kind, "SOME_REASON", "refused").with_decision_id("d-1");
            assert_eq!(refusal.http_status(), http);
            let status = Status::from(refusal);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), "refused");
            assert_eq!(reason_of(&status).as_deref(), Some("SOME_REASON"));
            assert_eq!(
                status.metadata().get(DECISION_ID_METADATA).unwrap(),
                "d-1",
                "the decision id travels in the metadata"
            );
        }
    }
}
