//! A transaction's workflow: submitted → allowed/denied → computed → committed, with
//! amounts shown only as ciphertext sizes.

use blindledger_audit::AuditLog;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::text;

/// How long before its submission a job's decision is looked for.
const DECISION_LOOKBACK_MS: i64 = 60_000;

/// A job as listed and as the head of its workflow (metadata and sizes only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobSummary {
    /// Job id.
    pub id: String,
    /// Submission order.
    pub seq: i64,
    /// `deposit`, `withdraw`, `transfer`, `aggregate`.
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// Main account.
    pub account: String,
    /// Credited account of a transfer.
    pub counterparty: String,
    /// Current state.
    pub state: String,
    /// Times claimed by a worker.
    pub attempts: i64,
    /// Why it failed.
    pub failure_reason: String,
    /// Submitted (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Committed (Unix ms).
    pub committed_at: Option<i64>,
    /// Size of the encrypted input still stored, in bytes (dropped once committed).
    pub input_bytes: i64,
    /// Size of the encrypted results, in bytes.
    pub result_bytes: i64,
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `submitted`, `allowed`, `denied`, `computed`, `committed`, `failed`.
    pub name: String,
    /// When (Unix ms), when known.
    pub at: Option<i64>,
    /// What the trail says about it.
    pub detail: String,
}

const JOB_COLUMNS: &str = "id, seq, kind, tenant, account_a, account_b, state, attempts, \
    failure_reason, created_at, updated_at, committed_at, payload_bytes, result_bytes";

/// The newest jobs, before the job `before` (a seq) when given.
pub async fn recent_jobs(
    log: &AuditLog,
    before: Option<i64>,
) -> Result<Vec<JobSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM ledger_job_feed WHERE seq < ? ORDER BY seq DESC LIMIT 50"
    );
    let rows = sqlx::query(&sql)
        .bind(before.unwrap_or(i64::MAX))
        .fetch_all(log.pool())
        .await?;
    rows.iter().map(job).collect()
}

/// A job and its workflow steps; `None` when no job has this id.
pub async fn workflow(
    log: &AuditLog,
    id: &str,
) -> Result<Option<(JobSummary, Vec<Step>)>, sqlx::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM ledger_job_feed WHERE id = ?");
    let Some(row) = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(log.pool())
        .await?
    else {
        return Ok(None);
    };
    let job = job(&row)?;
    let subject = format!("{}/{}", job.tenant, job.account);
    let transitions = transitions(log, &subject, &job.id).await?;
    let submitted_bytes = transitions
        .iter()
        .find_map(|t| t["ciphertext_bytes"].as_i64())
        .unwrap_or(job.input_bytes);
    let mut steps = vec![Step {
        name: "submitted".into(),
        at: Some(job.created_at),
        detail: format!(
            "{} of {subject}; encrypted amount: {submitted_bytes} bytes of ciphertext",
            job.kind
        ),
    }];
    steps.push(decision_step(log, &job, &subject).await?);
    let running = transitions.iter().find(|t| t["to"] == "RUNNING");
    let terminal = matches!(job.state.as_str(), "COMMITTED" | "FAILED");
    steps.push(Step {
        name: "computed".into(),
        at: running
            .and_then(|t| t["_at"].as_i64())
            .or(terminal.then_some(job.updated_at)),
        detail: format!("homomorphic computation; {} attempt(s)", job.attempts),
    });
    steps.push(final_step(&job));
    Ok(Some((job, steps)))
}

fn final_step(job: &JobSummary) -> Step {
    match job.state.as_str() {
        "COMMITTED" => Step {
            name: "committed".into(),
            at: job.committed_at,
            detail: format!(
                "encrypted results: {} bytes of ciphertext",
                job.result_bytes
            ),
        },
        "FAILED" => Step {
            name: "failed".into(),
            at: Some(job.updated_at),
            detail: job.failure_reason.clone(),
        },
        state => Step {
            name: "committed".into(),
            at: None,
            detail: format!("not yet: the job is {state}"),
        },
    }
}

/// The job's transition summaries from the trail, oldest first, with `_at` added.
async fn transitions(log: &AuditLog, subject: &str, id: &str) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT summary, occurred_at FROM audit_events WHERE subject = ? \
         AND kind = 'job_transition' ORDER BY occurred_at DESC LIMIT 500",
    )
    .bind(subject)
    .fetch_all(log.pool())
    .await?;
    let mut found: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let mut summary: Value = serde_json::from_str(&text(row, 0)).ok()?;
            summary["_at"] = row.try_get::<i64, _>(1).ok()?.into();
            (summary["job_id"] == id).then_some(summary)
        })
        .collect();
    found.reverse();
    Ok(found)
}

/// The decision that let the job in: the latest decision on its account for its method,
/// up to its submission.
async fn decision_step(
    log: &AuditLog,
    job: &JobSummary,
    subject: &str,
) -> Result<Step, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, occurred_at, method, outcome, revision FROM audit_events WHERE subject = ? \
         AND kind = 'decision' AND occurred_at >= ? AND occurred_at <= ? \
         ORDER BY occurred_at DESC LIMIT 50",
    )
    .bind(subject)
    .bind(job.created_at - DECISION_LOOKBACK_MS)
    .bind(job.created_at + 1_000)
    .fetch_all(log.pool())
    .await?;
    let wanted = job.kind.to_ascii_lowercase();
    let matching = rows.iter().find(|row| {
        let method = text(row, 2);
        method
            .rsplit('/')
            .next()
            .is_some_and(|m| m.to_ascii_lowercase() == wanted)
            && text(row, 3) == "allow"
    });
    Ok(match matching {
        Some(row) => Step {
            name: "allowed".into(),
            at: row.try_get(1).ok(),
            detail: format!(
                "audit seq {} by policy revision {}",
                row.try_get::<i64, _>(0)?,
                text(row, 4)
            ),
        },
        None => Step {
            name: "allowed".into(),
            at: None,
            detail: "no matching decision imported yet".into(),
        },
    })
}

fn job(row: &AnyRow) -> Result<JobSummary, sqlx::Error> {
    Ok(JobSummary {
        id: text(row, 0),
        seq: row.try_get(1)?,
        kind: text(row, 2),
        tenant: text(row, 3),
        account: text(row, 4),
        counterparty: text(row, 5),
        state: text(row, 6),
        attempts: row.try_get(7)?,
        failure_reason: text(row, 8),
        created_at: row.try_get(9)?,
        updated_at: row.try_get(10)?,
        committed_at: row.try_get(11)?,
        input_bytes: row.try_get(12)?,
        result_bytes: row.try_get(13)?,
    })
}
