//! Job requests: validation, idempotency and queueing.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use blindledger_fhe::{wire, LedgerWidth};
use blindledger_store::{JobRow, NewJob, SubmitOutcome, TenantRow};

use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::names::{validate_idempotency_key, AccountRef};

/// Kinds of asynchronous jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `balance += amount`.
    Deposit,
    /// `balance -= amount` when covered.
    Withdraw,
    /// Confidential transfer between two accounts of a tenant.
    Transfer,
    /// Sums and counts over an account's transfers in a period.
    Aggregate,
}

impl JobKind {
    /// Name stored in the database and used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdraw => "withdraw",
            Self::Transfer => "transfer",
            Self::Aggregate => "aggregate",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "deposit" => Some(Self::Deposit),
            "withdraw" => Some(Self::Withdraw),
            "transfer" => Some(Self::Transfer),
            "aggregate" => Some(Self::Aggregate),
            _ => None,
        }
    }
}

/// Plaintext parameters of a job, recorded at submission.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParams {
    /// Largest amount the movement may move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_amount: Option<u64>,
    /// Largest outflow per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_limit: Option<u64>,
    /// Window length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    /// Aggregate period start (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    /// Aggregate period end, exclusive (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// Aggregate count threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
}

/// Limits the policy attached to a call (its obligations). They only ever tighten the
/// account's own limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyLimits {
    /// Largest amount one movement may move.
    pub max_amount: Option<u64>,
    /// Largest outflow per window.
    pub window_limit: Option<u64>,
    /// Window length in seconds, used when the account has no window of its own.
    pub window_seconds: Option<u64>,
}

impl PolicyLimits {
    /// Folds these obligations into the account's limits: the smaller of each limit wins.
    fn tighten(&self, params: &mut JobParams) {
        fn min(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        params.max_amount = min(params.max_amount, self.max_amount);
        if params.window_limit.is_none() && self.window_limit.is_some() {
            params.window_seconds = self.window_seconds.or(params.window_seconds);
        }
        params.window_limit = min(params.window_limit, self.window_limit);
    }
}

/// A mutating request, before validation.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// What to do.
    pub kind: JobKind,
    /// Main account (debited by a transfer).
    pub account: AccountRef,
    /// Credited account of a transfer.
    pub counterparty: Option<String>,
    /// Submitted ciphertext (deposit, withdraw, transfer).
    pub amount: Option<Vec<u8>>,
    /// Aggregate parameters.
    pub params: JobParams,
    /// Obligations of the policy decision that allowed the request; not part of what the
    /// client sent, so not part of its fingerprint.
    pub policy_limits: PolicyLimits,
    /// Client idempotency key.
    pub idempotency_key: String,
}

impl JobRequest {
    /// SHA-256 over everything the client sent, to tell a retry from another request.
    fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.kind.as_str().as_bytes(),
            self.account.tenant.as_bytes(),
            self.account.account.as_bytes(),
            self.counterparty.as_deref().unwrap_or("").as_bytes(),
            serde_json::to_string(&self.params)
                .unwrap_or_default()
                .as_bytes(),
            self.amount.as_deref().unwrap_or(&[]),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hex::encode(hasher.finalize())
    }
}

impl Ledger {
    /// Validates a mutating request of `tenant` (its row, as the policy decided on it) and
    /// queues its job, or returns the job already queued under its idempotency key.
    pub async fn submit(
        &self,
        tenant: &TenantRow,
        request: JobRequest,
    ) -> Result<JobRow, LedgerError> {
        validate_idempotency_key(&request.idempotency_key)?;
        if tenant.name != request.account.tenant {
            return Err(LedgerError::Internal(anyhow::anyhow!(
                "a job was submitted with another tenant's row"
            )));
        }
        let width = LedgerWidth::from_bits(tenant.width_bits as u32)
            .ok_or_else(|| LedgerError::Internal(anyhow::anyhow!("stored width is invalid")))?;
        if let Some(amount) = &request.amount {
            wire::decode_amount(amount, width)?;
        }
        let account = self.account_row(&request.account).await?;
        if let Some(to) = &request.counterparty {
            if *to == request.account.account {
                return Err(LedgerError::InvalidArgument(
                    "cannot transfer to the same account".into(),
                ));
            }
            self.account_row(&AccountRef::new(&request.account.tenant, to)?)
                .await?;
        }
        let mut params = request.params.clone();
        if matches!(request.kind, JobKind::Transfer | JobKind::Withdraw) {
            params.max_amount = account.max_amount.map(|v| v as u64);
            params.window_limit = account.window_limit.map(|v| v as u64);
            params.window_seconds = Some(account.window_seconds as u64);
            request.policy_limits.tighten(&mut params);
        }
        let open = self.db.open_jobs(&request.account.tenant).await?;
        let at_quota = open >= i64::try_from(self.quotas.max_open_jobs).unwrap_or(i64::MAX);
        // A retry of a job already queued is still answered with that job.
        if at_quota
            && !self
                .db
                .has_idempotency_key(&request.account.tenant, &request.idempotency_key)
                .await?
        {
            metrics::counter!("blindledger_quota_refusals_total", "quota" => "open_jobs")
                .increment(1);
            return Err(LedgerError::QuotaExceeded(format!(
                "tenant {} has {open} jobs queued or running, the most allowed; retry when some finished",
                request.account.tenant
            )));
        }
        let job = NewJob {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: request.account.tenant.clone(),
            kind: request.kind.as_str().into(),
            account_a: request.account.account.clone(),
            account_b: request.counterparty.clone(),
            idempotency_key: request.idempotency_key.clone(),
            request_hash: request.fingerprint(),
            payload: request.amount.clone(),
            params: serde_json::to_string(&params).map_err(|e| LedgerError::Internal(e.into()))?,
            // The worker's span continues this request's trace.
            trace_parent: blindledger_telemetry::traces::current_traceparent(),
        };
        match self.db.submit_job(&job).await? {
            SubmitOutcome::Created(row) => {
                metrics::counter!("blindledger_jobs_submitted_total", "kind" => request.kind.as_str()).increment(1);
                tracing::info!(job_id = %row.id, kind = request.kind.as_str(), "job queued");
                self.job_added.notify_waiters();
                Ok(row)
            }
            SubmitOutcome::Existing(row) => Ok(row),
            SubmitOutcome::KeyReused => Err(LedgerError::InvalidArgument(
                "idempotency key already used with a different request".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obligations_only_tighten_limits() {
        let mut params = JobParams {
            max_amount: Some(500),
            window_limit: None,
            window_seconds: Some(86_400),
            ..JobParams::default()
        };
        PolicyLimits {
            max_amount: Some(1_000),
            window_limit: Some(2_000),
            window_seconds: Some(3_600),
        }
        .tighten(&mut params);
        assert_eq!(params.max_amount, Some(500));
        assert_eq!(params.window_limit, Some(2_000));
        assert_eq!(params.window_seconds, Some(3_600));

        let mut params = JobParams {
            window_limit: Some(100),
            window_seconds: Some(86_400),
            ..JobParams::default()
        };
        PolicyLimits {
            max_amount: Some(50),
            window_limit: Some(1_000),
            window_seconds: Some(60),
        }
        .tighten(&mut params);
        assert_eq!(params.max_amount, Some(50));
        assert_eq!(params.window_limit, Some(100));
        assert_eq!(
            params.window_seconds,
            Some(86_400),
            "the account keeps its window"
        );
    }
}
