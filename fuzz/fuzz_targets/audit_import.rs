//! Audit rows being imported (`blindledger_audit::Importer::run_once`): decision-log
//! rows, job rows and controller activations, with arbitrary contents of the column types
//! their tables declare, written to a scratch SQLite database and imported into the audit
//! trail. Every row either becomes its event or is set aside; the import must succeed
//! (a row it cannot take must not stop it) and the resulting chain must verify.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use blindledger_audit::{now_ms, AuditLog, CheckpointKeys, Importer, VerifyOptions};
use blindledger_fuzz::scratch_sqlite_url;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tokio::runtime::Runtime;

/// A JSON document.
#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => Value::from(*f),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::value).collect()),
            Json::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value()))
                    .collect(),
            ),
        }
    }
}

/// A text column holding JSON: usually JSON, possibly anything.
#[derive(Debug, Arbitrary)]
enum JsonText {
    Json(Json),
    Text(String),
}

impl JsonText {
    fn text(&self) -> String {
        match self {
            JsonText::Json(json) => json.value().to_string(),
            JsonText::Text(text) => text.clone(),
        }
    }
}

/// The decision-log `event` blob: the fields the importer reads, placed where OPA's
/// decision-log event has them, or any bytes.
#[derive(Debug, Arbitrary)]
enum LoggedEvent {
    Shaped {
        tenant: Option<Json>,
        account: Option<Json>,
        reasons: Option<Json>,
        error: Option<Json>,
        extra: Vec<(String, Json)>,
    },
    Json(Json),
    Bytes(Vec<u8>),
}

impl LoggedEvent {
    fn bytes(&self) -> Vec<u8> {
        match self {
            LoggedEvent::Shaped {
                tenant,
                account,
                reasons,
                error,
                extra,
            } => {
                let mut resource = Map::new();
                if let Some(tenant) = tenant {
                    resource.insert("tenant".into(), tenant.value());
                }
                if let Some(account) = account {
                    resource.insert("account".into(), account.value());
                }
                let mut event: Map<String, Value> =
                    extra.iter().map(|(k, v)| (k.clone(), v.value())).collect();
                event.insert(
                    "input".into(),
                    serde_json::json!({ "resource": Value::Object(resource) }),
                );
                if let Some(reasons) = reasons {
                    event.insert(
                        "result".into(),
                        serde_json::json!({ "reasons": reasons.value() }),
                    );
                }
                if let Some(error) = error {
                    event.insert(
                        "labels".into(),
                        serde_json::json!({ "error": error.value() }),
                    );
                }
                Value::Object(event).to_string().into_bytes()
            }
            LoggedEvent::Json(json) => json.value().to_string().into_bytes(),
            LoggedEvent::Bytes(bytes) => bytes.clone(),
        }
    }
}

/// A time column: shortly before the import (so the row is due), or any value.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Time {
    Recent(u16),
    At(i64),
}

impl Time {
    fn at(self, now: i64) -> i64 {
        match self {
            Time::Recent(age) => now - 1 - i64::from(age),
            Time::At(at) => at,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Row {
    Decision {
        decision_id: String,
        logged_at: Time,
        principal: String,
        method: String,
        allowed: i64,
        revisions: JsonText,
        event: LoggedEvent,
    },
    Job {
        id: String,
        tenant: String,
        kind: String,
        state: String,
        account_a: String,
        account_b: Option<String>,
        idempotency_key: String,
        payload: Option<Vec<u8>>,
        attempts: i64,
        failure_reason: Option<String>,
        result_moved: Option<Vec<u8>>,
        result_count: Option<Vec<u8>>,
        updated_at: Time,
    },
    Activation {
        name: String,
        revision: String,
        action: String,
        actor: String,
        activated_at: Time,
    },
}

struct Fixture {
    runtime: Runtime,
    log: AuditLog,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let url = scratch_sqlite_url("audit-import");
        let log = runtime
            .block_on(AuditLog::connect(&url, 2, true))
            .expect("scratch audit database");
        Fixture { runtime, log }
    })
}

/// Empties the sources and the trail, so that every input starts from the same state.
const RESET: &[&str] = &[
    "DELETE FROM decision_log",
    "DELETE FROM jobs",
    "DELETE FROM controller_activations",
    "DELETE FROM audit_events",
    "DELETE FROM audit_cursors",
    "DELETE FROM audit_job_states",
    "UPDATE audit_head SET size = 0, \
     hash = '0000000000000000000000000000000000000000000000000000000000000000', \
     updated_at = 0 WHERE id = 1",
];

async fn insert(log: &AuditLog, row: &Row, now: i64) {
    let query = match row {
        Row::Decision {
            decision_id,
            logged_at,
            principal,
            method,
            allowed,
            revisions,
            event,
        } => sqlx::query(
            "INSERT INTO decision_log \
             (decision_id, logged_at, principal, method, allowed, revisions, event) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(decision_id.clone())
        .bind(logged_at.at(now))
        .bind(principal.clone())
        .bind(method.clone())
        .bind(*allowed)
        .bind(revisions.text())
        .bind(event.bytes()),
        Row::Job {
            id,
            tenant,
            kind,
            state,
            account_a,
            account_b,
            idempotency_key,
            payload,
            attempts,
            failure_reason,
            result_moved,
            result_count,
            updated_at,
        } => sqlx::query(
            "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, \
             idempotency_key, request_hash, payload, params, attempts, failure_reason, \
             result_moved, result_count, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'h', ?, '{}', ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.clone())
        .bind(tenant.clone())
        .bind(kind.clone())
        .bind(state.clone())
        .bind(account_a.clone())
        .bind(account_b.clone())
        .bind(idempotency_key.clone())
        .bind(payload.clone())
        .bind(*attempts)
        .bind(failure_reason.clone())
        .bind(result_moved.clone())
        .bind(result_count.clone())
        .bind(updated_at.at(now))
        .bind(updated_at.at(now)),
        Row::Activation {
            name,
            revision,
            action,
            actor,
            activated_at,
        } => sqlx::query(
            "INSERT INTO controller_activations \
             (name, revision, action, actor, activated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(name.clone())
        .bind(revision.clone())
        .bind(action.clone())
        .bind(actor.clone())
        .bind(activated_at.at(now)),
    };
    // A row its table refuses (a duplicate id) never reaches the importer.
    let _ = query.execute(log.pool()).await;
}

fuzz_target!(|rows: Vec<Row>| {
    let Fixture { runtime, log } = fixture();
    runtime.block_on(async {
        for statement in RESET {
            sqlx::query(statement)
                .execute(log.pool())
                .await
                .expect("resetting the scratch database");
        }
        let now = now_ms();
        for row in &rows {
            insert(log, row, now).await;
        }
        let importer = Importer::new(log.clone()).with_settle_ms(0);
        if let Err(err) = importer.run_once().await {
            panic!("import failed: {err}");
        }
        let report = log
            .verify(&CheckpointKeys::default(), &VerifyOptions::default())
            .await
            .expect("verification runs");
        assert!(report.ok, "imported chain does not verify: {report:?}");
    });
});
