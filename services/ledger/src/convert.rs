//! Conversions between stored rows and protobuf messages.

use blindledger_fhe::LedgerWidth;
use blindledger_proto::ledger::v1 as pb;
use blindledger_proto::prost_types::Timestamp;
use blindledger_store::{AccountRow, JobRow, JobState};

use crate::ledger::JobResults;

/// Milliseconds since the epoch as a protobuf timestamp.
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// A system time as a protobuf timestamp.
pub fn system_time(time: std::time::SystemTime) -> Timestamp {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    timestamp(ms)
}

/// A protobuf timestamp as milliseconds since the epoch.
pub fn millis(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

/// The protobuf width.
pub fn width(width: LedgerWidth) -> pb::LedgerWidth {
    match width {
        LedgerWidth::U32 => pb::LedgerWidth::U32,
        LedgerWidth::U64 => pb::LedgerWidth::U64,
    }
}

fn state(state: JobState) -> pb::JobState {
    match state {
        JobState::Pending => pb::JobState::Pending,
        JobState::Running => pb::JobState::Running,
        JobState::Committed => pb::JobState::Committed,
        JobState::Failed => pb::JobState::Failed,
    }
}

fn kind(kind: &str) -> pb::JobKind {
    match kind {
        "deposit" => pb::JobKind::Deposit,
        "withdraw" => pb::JobKind::Withdraw,
        "transfer" => pb::JobKind::Transfer,
        "aggregate" => pb::JobKind::Aggregate,
        _ => pb::JobKind::Unspecified,
    }
}

/// A job and, when given, its encrypted results.
pub fn job(row: &JobRow, results: Option<JobResults>) -> pb::Job {
    let result = results.map(|r| match r {
        JobResults::Movement { moved, ok } => {
            pb::job::Result::Movement(pb::MovementResult { moved, ok })
        }
        JobResults::Aggregate {
            sum_out,
            sum_in,
            count_above,
            transfers,
        } => pb::job::Result::Aggregate(pb::AggregateResult {
            sum_out,
            sum_in,
            count_above,
            transfers,
        }),
    });
    pb::Job {
        id: row.id.clone(),
        kind: kind(&row.kind).into(),
        state: state(row.state).into(),
        tenant: row.tenant.clone(),
        accounts: std::iter::once(row.account_a.clone())
            .chain(row.account_b.clone())
            .collect(),
        failure_reason: row.failure_reason.clone().unwrap_or_default(),
        attempts: row.attempts as u32,
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        result,
    }
}

/// An account's public metadata.
pub fn account(row: &AccountRow) -> pb::Account {
    pb::Account {
        tenant: row.tenant.clone(),
        account: row.name.clone(),
        limits: Some(pb::TransferLimits {
            max_amount: row.max_amount.unwrap_or_default() as u64,
            window_limit: row.window_limit.unwrap_or_default() as u64,
            window_seconds: row.window_seconds as u64,
        }),
        created_at: Some(timestamp(row.created_at)),
    }
}

/// A transfer job's metadata (never its amounts).
pub fn transfer(row: &JobRow) -> pb::Transfer {
    pb::Transfer {
        job_id: row.id.clone(),
        from_account: row.account_a.clone(),
        to_account: row.account_b.clone().unwrap_or_default(),
        state: state(row.state).into(),
        created_at: Some(timestamp(row.created_at)),
        committed_at: row.committed_at.map(timestamp),
    }
}
