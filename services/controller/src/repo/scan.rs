//! Streaming the ledger's decision log and job metadata into the feature extractor.

use std::borrow::Cow;

use futures::TryStreamExt;
use serde::Deserialize;
use sqlx::{AnyPool, Row};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use blindledger_store::StoreError;

use super::Repo;
use crate::features::{DecisionFacts, FeatureExtractor, FeatureSet, FeatureWindow, JobFacts};

/// The part of a logged decision event that features read: `input.resource`.
#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(default, borrow)]
    input: Option<InputView<'a>>,
}

#[derive(Deserialize)]
struct InputView<'a> {
    #[serde(default, borrow)]
    resource: Option<ResourceView<'a>>,
    /// The tenants the caller's token (or certificate grant) names.
    #[serde(default, borrow)]
    tenant_claims: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ResourceView<'a> {
    #[serde(default, borrow)]
    tenant: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    account: Option<Cow<'a, str>>,
}

/// Rows handed from a reading task to the extractor at a time.
const BATCH_ROWS: usize = 1024;
/// Batches in flight between the reading tasks and the extractor.
const BATCHES_IN_FLIGHT: usize = 8;

/// A decision row, owned so that it can cross from the task reading it to the extractor.
struct DecisionRow {
    logged_at: i64,
    principal: String,
    method: String,
    allowed: bool,
    tenant: Option<String>,
    account: Option<String>,
    own_tenant: bool,
}

/// A job row, owned likewise.
struct JobRow {
    created_at: i64,
    tenant: String,
    kind: String,
    account_a: String,
    account_b: Option<String>,
}

enum Batch {
    Decisions(Vec<DecisionRow>),
    Jobs(Vec<JobRow>),
}

impl Repo {
    /// Reads every decision and job of `window` (baseline included) into features, each
    /// row once, streamed rather than collected.
    ///
    /// Three tasks read at once (on as many connections): the baseline decisions, the
    /// window's decisions in time order, and the jobs. Decoding rows is most of a cycle's
    /// work, and this spreads it over the cores; the extractor itself stays on one task.
    /// Order only matters within the window's decisions (minute buckets), which one task
    /// reads in order; baseline rows only add known counterparties.
    pub async fn scan_features(&self, window: FeatureWindow) -> Result<FeatureSet, StoreError> {
        let (tx, mut rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        let mut readers = JoinSet::new();
        for (from, to) in [
            (window.baseline_start, window.start),
            (window.start, window.end),
        ] {
            readers.spawn(read_decisions(self.db.pool().clone(), from, to, tx.clone()));
        }
        readers.spawn(read_jobs(
            self.db.pool().clone(),
            window.baseline_start,
            window.end,
            tx,
        ));
        let mut extractor = FeatureExtractor::new(window);
        while let Some(batch) = rx.recv().await {
            match batch {
                Batch::Decisions(rows) => {
                    rows.iter().for_each(|r| extractor.add_decision(&r.facts()))
                }
                Batch::Jobs(rows) => rows.iter().for_each(|r| extractor.add_job(&r.facts())),
            }
        }
        while let Some(done) = readers.join_next().await {
            done.map_err(|e| sqlx::Error::Protocol(format!("feature reader task: {e}")))??;
        }
        Ok(extractor.finish())
    }

    /// The inputs of the `limit` most recent logged decisions, newest first, with their
    /// decision ids, for impact analysis. Events without an input are skipped.
    pub async fn recent_inputs(
        &self,
        limit: u32,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let rows =
            sqlx::query("SELECT decision_id, event FROM decision_log ORDER BY seq DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(self.db.pool())
                .await?;
        let mut inputs = Vec::with_capacity(rows.len());
        for row in rows {
            let event: &[u8] = row.try_get(1)?;
            let Ok(mut event) = serde_json::from_slice::<serde_json::Value>(event) else {
                continue;
            };
            match event.get_mut("input").map(serde_json::Value::take) {
                Some(input) if input.is_object() => inputs.push((row.try_get(0)?, input)),
                _ => {}
            }
        }
        Ok(inputs)
    }
}

impl DecisionRow {
    fn facts(&self) -> DecisionFacts<'_> {
        DecisionFacts {
            logged_at: self.logged_at,
            principal: &self.principal,
            method: &self.method,
            allowed: self.allowed,
            tenant: self.tenant.as_deref(),
            account: self.account.as_deref(),
            own_tenant: self.own_tenant,
        }
    }
}

impl JobRow {
    fn facts(&self) -> JobFacts<'_> {
        JobFacts {
            created_at: self.created_at,
            tenant: &self.tenant,
            kind: &self.kind,
            account_a: &self.account_a,
            account_b: self.account_b.as_deref(),
        }
    }
}

/// Streams the decisions logged in `[from, to)`, oldest first, to `tx`.
async fn read_decisions(
    pool: AnyPool,
    from: i64,
    to: i64,
    tx: mpsc::Sender<Batch>,
) -> Result<(), StoreError> {
    let mut rows = sqlx::query(
        "SELECT logged_at, principal, method, allowed, event FROM decision_log \
         WHERE logged_at >= ? AND logged_at < ? ORDER BY logged_at",
    )
    .bind(from)
    .bind(to)
    .fetch(&pool);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.try_next().await? {
        let event: &[u8] = row.try_get(4)?;
        // A masked-out or malformed event still counts as a call of its principal.
        let input = serde_json::from_slice::<EventView<'_>>(event)
            .ok()
            .and_then(|e| e.input);
        let (tenant, account, own_tenant) = match input {
            Some(InputView {
                resource: Some(r),
                tenant_claims,
            }) => {
                let own = r
                    .tenant
                    .as_ref()
                    .is_some_and(|tenant| tenant_claims.contains(tenant));
                (
                    r.tenant.map(Cow::into_owned),
                    r.account.map(Cow::into_owned),
                    own,
                )
            }
            _ => (None, None, false),
        };
        batch.push(DecisionRow {
            logged_at: row.try_get(0)?,
            principal: row.try_get(1)?,
            method: row.try_get(2)?,
            allowed: row.try_get::<i64, _>(3)? != 0,
            tenant,
            account,
            own_tenant,
        });
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if tx.send(Batch::Decisions(full)).await.is_err() {
                return Ok(());
            }
        }
    }
    let _ = tx.send(Batch::Decisions(batch)).await;
    Ok(())
}

/// Streams the jobs created in `[from, to)`, oldest first, to `tx`.
async fn read_jobs(
    pool: AnyPool,
    from: i64,
    to: i64,
    tx: mpsc::Sender<Batch>,
) -> Result<(), StoreError> {
    let mut rows = sqlx::query(
        "SELECT created_at, tenant, kind, account_a, account_b FROM ledger_job_feed \
         WHERE created_at >= ? AND created_at < ? ORDER BY created_at",
    )
    .bind(from)
    .bind(to)
    .fetch(&pool);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.try_next().await? {
        batch.push(JobRow {
            created_at: row.try_get(0)?,
            tenant: row.try_get(1)?,
            kind: row.try_get(2)?,
            account_a: row.try_get(3)?,
            account_b: row.try_get(4)?,
        });
        if batch.len() == BATCH_ROWS {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
            if tx.send(Batch::Jobs(full)).await.is_err() {
                return Ok(());
            }
        }
    }
    let _ = tx.send(Batch::Jobs(batch)).await;
    Ok(())
}
