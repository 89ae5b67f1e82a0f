//! Synthetic operational metadata: decision-log rows (OPA events, as the ledger writes
//! them) and job rows, inserted straight into the ledger's tables.

use serde_json::json;
use sqlx::AnyPool;

/// 2026-01-15T00:00:00Z.
pub const MIDNIGHT: i64 = 1_768_435_200_000;
/// The moment the tests' cycles run at: 00:30 UTC, so the one-hour window is half night.
pub const NOW: i64 = MIDNIGHT + 30 * MINUTE;
pub const MINUTE: i64 = 60_000;
pub const TRANSFER: &str = "/blindledger.ledger.v1.LedgerService/Transfer";
pub const TENANT: &str = "acme";
pub const REGION: &str = "eu-west";

/// One logged decision.
#[derive(Debug, Clone)]
pub struct Decision {
    pub at: i64,
    pub principal: String,
    pub roles: Vec<&'static str>,
    pub method: String,
    pub account: String,
    pub allowed: bool,
}

/// One job (metadata only).
#[derive(Debug, Clone)]
pub struct Job {
    pub at: i64,
    pub kind: &'static str,
    pub from: String,
    pub to: Option<String>,
}

/// Decisions and jobs to insert.
#[derive(Debug, Default)]
pub struct Workload {
    pub decisions: Vec<Decision>,
    pub jobs: Vec<Job>,
}

impl Workload {
    /// A teller's transfer from `from` to `to` at `at`: a decision, and a job when allowed.
    pub fn transfer(&mut self, at: i64, principal: &str, from: &str, to: &str, allowed: bool) {
        self.decisions.push(Decision {
            at,
            principal: principal.to_string(),
            roles: vec!["teller"],
            method: TRANSFER.to_string(),
            account: from.to_string(),
            allowed,
        });
        if allowed {
            self.jobs.push(Job {
                at: at + 5,
                kind: "transfer",
                from: from.to_string(),
                to: Some(to.to_string()),
            });
        }
    }

    pub async fn insert(&self, pool: &AnyPool) {
        insert_decisions(pool, &self.decisions).await;
        insert_jobs(pool, &self.jobs).await;
    }
}

/// A small deterministic generator (xorshift), so workloads are the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `[low, high)`.
    pub fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next_u64() % (high - low) as u64) as i64
    }
}

/// `accounts` ordinary accounts (`acct-NN`, two per teller `teller-NN`): a steady trickle
/// of transfers to three regular counterparties, in the baseline day and in the window,
/// with a few denials.
pub fn ordinary(rng: &mut Rng, accounts: usize) -> Workload {
    let mut w = Workload::default();
    let window_start = NOW - 60 * MINUTE;
    for i in 0..accounts {
        let account = format!("acct-{i:02}");
        let teller = format!("teller-{:02}", i / 2);
        let peers: Vec<String> = (0..3).map(|p| format!("peer-{i:02}-{p}")).collect();
        for _ in 0..30 {
            let at = rng.range(window_start - 24 * 60 * MINUTE, window_start);
            let to = &peers[rng.range(0, 3) as usize];
            w.transfer(at, &teller, &account, to, true);
        }
        for _ in 0..rng.range(14, 22) {
            let at = rng.range(window_start, NOW);
            let to = &peers[rng.range(0, 3) as usize];
            w.transfer(at, &teller, &account, to, rng.range(0, 20) != 0);
        }
    }
    w
}

/// Account `mule` of principal `mallory`: ordinary in the baseline, then, in the last ten
/// minutes (at night), four one-minute bursts of transfers to 80 counterparties never
/// paid before.
pub fn bursts_at_night(rng: &mut Rng) -> Workload {
    let mut w = Workload::default();
    let window_start = NOW - 60 * MINUTE;
    for _ in 0..30 {
        let at = rng.range(window_start - 24 * 60 * MINUTE, window_start);
        let to = if rng.range(0, 2) == 0 {
            "landlord"
        } else {
            "grocer"
        };
        w.transfer(at, "mallory", "mule", to, true);
    }
    for burst in 0..4 {
        let minute = NOW - (9 - 2 * burst) * MINUTE;
        for k in 0..60 {
            let at = minute + k * 900;
            let to = format!("new-{}", (burst * 60 + k) % 80);
            w.transfer(at, "mallory", "mule", &to, true);
        }
    }
    w
}

/// The event the ledger's gate logs for `d`.
pub fn event(d: &Decision, decision_id: &str) -> Vec<u8> {
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(d.at as u64),
    )
    .to_string();
    let reasons: Vec<&str> = if d.allowed {
        vec![]
    } else {
        vec!["denied for the test"]
    };
    json!({
        "decision_id": decision_id,
        "path": "blindledger/authz/decision",
        "input": {
            "principal": d.principal,
            "roles": d.roles,
            "tenant_claims": [TENANT],
            "method": d.method,
            "resource": {"tenant": TENANT, "account": d.account, "region": REGION},
            "context": {"service_region": REGION, "time": time},
        },
        "result": {"allow": d.allowed, "reasons": reasons, "obligations": {}},
        "bundles": {"blindledger": {"revision": "v1"}},
        "timestamp": time,
        "metrics": {"timer_rego_query_eval_ns": 81234},
        "labels": {"service_region": REGION},
        "requested_by": d.principal,
    })
    .to_string()
    .into_bytes()
}

const ROWS_PER_INSERT: usize = 200;

pub async fn insert_decisions(pool: &AnyPool, decisions: &[Decision]) {
    let mut tx = pool.begin().await.expect("test helper");
    for chunk in decisions.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, \
             revisions, event) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for d in chunk {
            let id = uuid::Uuid::new_v4().to_string();
            let event = event(d, &id);
            query = query
                .bind(id)
                .bind(d.at)
                .bind(d.principal.clone())
                .bind(d.method.clone())
                .bind(i64::from(d.allowed))
                .bind(r#"{"blindledger":"v1"}"#)
                .bind(event);
        }
        query.execute(&mut *tx).await.expect("test helper");
    }
    tx.commit().await.expect("test helper");
}

pub async fn insert_jobs(pool: &AnyPool, jobs: &[Job]) {
    let mut tx = pool.begin().await.expect("test helper");
    for chunk in jobs.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, idempotency_key, \
             request_hash, params, created_at, updated_at) VALUES {}",
            vec!["(?, ?, ?, 'committed', ?, ?, ?, ?, '{}', ?, ?)"; chunk.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for j in chunk {
            let id = uuid::Uuid::new_v4().to_string();
            query = query
                .bind(id.clone())
                .bind(TENANT)
                .bind(j.kind)
                .bind(j.from.clone())
                .bind(j.to.clone())
                .bind(id)
                .bind("0".repeat(64))
                .bind(j.at)
                .bind(j.at);
        }
        query.execute(&mut *tx).await.expect("test helper");
    }
    tx.commit().await.expect("test helper");
}
