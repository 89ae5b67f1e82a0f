//! Exit codes that tell a script what happened, and errors as a script reads them.

use std::process::ExitCode;

use blindledger_client::ClientError;
use serde_json::json;

/// Exit statuses, as documented in `blindledger --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success
  1  any other error
  2  invalid input (a malformed argument, or the service answered invalid argument, not found
     or already exists)
  3  denied (the policy refused: the decision id is printed; or the token was refused)
  4  unavailable (a service could not be reached or asked to retry later)
  5  job failed (--wait, job watch: the job ended FAILED)
  6  timed out (--wait --timeout elapsed before the job finished; it goes on)";

/// What went wrong, as the exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any other error.
    Error = 1,
    /// A malformed argument, or a service answered that the input is wrong.
    InvalidInput = 2,
    /// The policy (or authentication) refused.
    Denied = 3,
    /// A service could not be reached or asked to retry.
    Unavailable = 4,
    /// The job finished FAILED.
    JobFailed = 5,
    /// `--timeout` elapsed while waiting.
    TimedOut = 6,
}

impl Outcome {
    /// The name in JSON error objects.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Error => "error",
            Outcome::InvalidInput => "invalid_input",
            Outcome::Denied => "denied",
            Outcome::Unavailable => "unavailable",
            Outcome::JobFailed => "job_failed",
            Outcome::TimedOut => "timed_out",
        }
    }
}

/// A job that did not end well while the command waited for it.
#[derive(Debug, thiserror::Error)]
pub enum JobEnded {
    /// It finished FAILED.
    #[error("job {id} failed: {reason}")]
    Failed {
        /// The job id.
        id: String,
        /// The ledger's reason.
        reason: String,
    },
    /// `--timeout` elapsed first.
    #[error("job {id} not finished after {waited}; it goes on (blindledger job watch {id})")]
    TimedOut {
        /// The job id.
        id: String,
        /// How long the command waited, e.g. "30s".
        waited: String,
    },
}

/// A non-2xx answer of an HTTP service (controller, audit service).
#[derive(Debug, thiserror::Error)]
#[error("the {service} refused ({status}): {message}")]
pub struct HttpRefusal {
    /// "controller" or "audit service".
    pub service: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// The service's reason, as it gave it.
    pub message: String,
    /// The policy decision's id, when the gate decided.
    pub decision_id: Option<String>,
}

/// The exit status for `err`.
pub fn outcome(err: &anyhow::Error) -> Outcome {
    for cause in err.chain() {
        if let Some(ended) = cause.downcast_ref::<JobEnded>() {
            return match ended {
                JobEnded::Failed { .. } => Outcome::JobFailed,
                JobEnded::TimedOut { .. } => Outcome::TimedOut,
            };
        }
        if let Some(refusal) = cause.downcast_ref::<HttpRefusal>() {
            return match refusal.status {
                401 | 403 => Outcome::Denied,
                400 | 404 | 409 | 413 | 422 => Outcome::InvalidInput,
                429 | 502 | 503 | 504 => Outcome::Unavailable,
                _ => Outcome::Error,
            };
        }
        if let Some(client) = cause.downcast_ref::<ClientError>() {
            return match client {
                ClientError::Status(status) => grpc_outcome(status.code()),
                ClientError::Transport(_) => Outcome::Unavailable,
                ClientError::PlaintextRefused(_) | ClientError::InvalidToken => {
                    Outcome::InvalidInput
                }
                _ => Outcome::Error,
            };
        }
        if let Some(status) = cause.downcast_ref::<tonic::Status>() {
            return grpc_outcome(status.code());
        }
        if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
            if http.is_connect() || http.is_timeout() {
                return Outcome::Unavailable;
            }
        }
    }
    Outcome::Error
}

fn grpc_outcome(code: tonic::Code) -> Outcome {
    use tonic::Code;
    match code {
        Code::PermissionDenied | Code::Unauthenticated => Outcome::Denied,
        Code::InvalidArgument | Code::NotFound | Code::AlreadyExists | Code::OutOfRange => {
            Outcome::InvalidInput
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted => {
            Outcome::Unavailable
        }
        _ => Outcome::Error,
    }
}

/// The policy decision id an error carries (gRPC `x-decision-id` metadata, or the HTTP
/// header of the same name).
pub fn decision_id(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(refusal) = cause.downcast_ref::<HttpRefusal>() {
            return refusal.decision_id.clone();
        }
        let status = cause
            .downcast_ref::<ClientError>()
            .and_then(ClientError::status)
            .or_else(|| cause.downcast_ref::<tonic::Status>());
        if let Some(status) = status {
            return status
                .metadata()
                .get("x-decision-id")
                .and_then(|v| v.to_str().ok())
                // Bounded: a decision id is a UUID.
                .map(|id| id.chars().take(64).collect());
        }
    }
    None
}

/// Reports `err` on stderr (text, or a JSON object under `--output json`) and returns its
/// exit status.
pub fn report(err: &anyhow::Error, message: &str) -> ExitCode {
    let outcome = outcome(err);
    let decision_id = decision_id(err);
    if crate::output::json() {
        let value = json!({
            "error": {
                "kind": outcome.name(),
                "exit_code": outcome as u8,
                "message": message,
                "decision_id": decision_id,
            }
        });
        eprintln!("{value}");
    } else {
        eprintln!("error: {message}");
        if let Some(id) = decision_id {
            eprintln!("decision id: {id} (the decision log and the dashboard show why)");
        }
    }
    ExitCode::from(outcome as u8)
}
