//! Decision-log rows and controller activations into audit events.

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{cursor, prepare_or_set_aside, set_cursor, Importer, Step, BATCH};
use crate::db::{retry, text};
use crate::error::Result;
use crate::event::{EventKind, NewEvent};

/// Reasons kept per decision, and characters kept per reason.
const MAX_REASONS: usize = 8;
const MAX_REASON_CHARS: usize = 200;

impl Importer {
    /// Imports up to [`BATCH`] decision-log rows older than `upper`; returns how many rows
    /// it read, and what became of them.
    pub(super) async fn decisions_step(&self, upper: i64) -> Result<(usize, Step)> {
        retry("audit_import_decisions", || async {
            let mut tx = self.log.begin_write().await?;
            let head = self.log.lock_head(&mut tx).await?;
            let after = cursor(&mut tx, "decision_log").await?;
            let rows = sqlx::query(
                "SELECT seq, decision_id, logged_at, principal, method, allowed, revisions, event \
                 FROM decision_log WHERE seq > ? AND logged_at <= ? ORDER BY seq LIMIT ?",
            )
            .bind(after)
            .bind(upper)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else {
                return Ok((0, Step::default()));
            };
            let last_seq: i64 = last.try_get(0)?;
            let mut step = Step::default();
            let events = rows
                .iter()
                .map(|row| {
                    let seq = row.try_get(0)?;
                    prepare_or_set_aside("decision_log", seq, decision_event(row), &mut step)
                })
                .collect::<Result<Vec<_>>>()?;
            self.log.append_after(&mut tx, head, &events).await?;
            set_cursor(&mut tx, "decision_log", last_seq).await?;
            tx.commit().await?;
            Ok((rows.len(), step))
        })
        .await
    }

    /// Imports up to [`BATCH`] controller activations older than `upper`; returns how many
    /// rows it read, and what became of them.
    pub(super) async fn activations_step(&self, upper: i64) -> Result<(usize, Step)> {
        retry("audit_import_activations", || async {
            let mut tx = self.log.begin_write().await?;
            let head = self.log.lock_head(&mut tx).await?;
            let after = cursor(&mut tx, "controller_activations").await?;
            let rows = sqlx::query(
                "SELECT seq, name, revision, action, actor, activated_at FROM controller_activation_feed \
                 WHERE seq > ? AND activated_at <= ? ORDER BY seq LIMIT ?",
            )
            .bind(after)
            .bind(upper)
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else {
                return Ok((0, Step::default()));
            };
            let last_seq: i64 = last.try_get(0)?;
            let mut step = Step::default();
            let events = rows
                .iter()
                .map(|row| {
                    let seq = row.try_get(0)?;
                    let event = activation_event(row);
                    prepare_or_set_aside("controller_activations", seq, event, &mut step)
                })
                .collect::<Result<Vec<_>>>()?;
            self.log.append_after(&mut tx, head, &events).await?;
            set_cursor(&mut tx, "controller_activations", last_seq).await?;
            tx.commit().await?;
            Ok((rows.len(), step))
        })
        .await
    }
}

/// A decision-log row as an audit event: who, which method, allowed or denied, by which
/// revisions, why. The policy's obligations (limits) and the input are left out.
fn decision_event(row: &AnyRow) -> Result<NewEvent> {
    let log_seq: i64 = row.try_get(0)?;
    let revisions: Value = serde_json::from_str(&text(row, 6)?).unwrap_or(Value::Null);
    let logged: Value = serde_json::from_slice(&row.try_get::<Vec<u8>, _>(7)?).unwrap_or_default();
    let allowed = row.try_get::<i64, _>(5)? != 0;
    let resource = &logged["input"]["resource"];
    let (tenant, account) = (resource["tenant"].as_str(), resource["account"].as_str());
    let subject = match (tenant, account) {
        (Some(t), Some(a)) => format!("{t}/{a}"),
        (Some(t), None) => t.to_owned(),
        _ => String::new(),
    };
    let mut summary = Map::new();
    summary.insert("decision_id".into(), json!(text(row, 1)?));
    summary.insert("log_seq".into(), json!(log_seq));
    summary.insert("method".into(), json!(text(row, 4)?));
    summary.insert(
        "outcome".into(),
        json!(if allowed { "allow" } else { "deny" }),
    );
    summary.insert("revision".into(), revisions["blindledger"].clone());
    summary.insert("revisions".into(), revisions);
    summary.insert("reasons".into(), reasons(&logged["result"]["reasons"]));
    if let Some(error) = logged["labels"]["error"].as_str() {
        summary.insert("error".into(), json!(truncate(error)));
    }
    Ok(NewEvent::new(
        EventKind::Decision,
        row.try_get(2)?,
        text(row, 3)?,
        subject,
        Value::Object(summary),
    ))
}

fn reasons(value: &Value) -> Value {
    let reasons = value.as_array().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        reasons
            .iter()
            .take(MAX_REASONS)
            .filter_map(Value::as_str)
            .map(|r| json!(truncate(r)))
            .collect(),
    )
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_REASON_CHARS).collect()
}

fn activation_event(row: &AnyRow) -> Result<NewEvent> {
    let name = text(row, 1)?;
    let summary = json!({
        "activation_seq": row.try_get::<i64, _>(0)?,
        "bundle": name,
        "revision": text(row, 2)?,
        "action": text(row, 3)?,
    });
    Ok(NewEvent::new(
        EventKind::BundleActivation,
        row.try_get(5)?,
        text(row, 4)?,
        format!("bundle:{name}"),
        summary,
    ))
}
