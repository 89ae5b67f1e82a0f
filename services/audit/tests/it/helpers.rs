//! `spawn_app()`: the service on a free port over a fresh database, with real keys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use blindledger_audit::admin::{
    generate_officer_keypair, sign_command, Command, CommandPayload, SignedCommand,
};
use blindledger_audit::{AuditLog, CheckpointSigner, EventKind, NewEvent};
use blindledger_audit_service::{Application, AuditConfig};
use blindledger_gate::{generate_keypair, BundleSource, TokenIssuer};
use blindledger_policy::{sign_bundle, Bundle, SigningKey};
use serde_json::json;
use tokio::sync::oneshot;

/// A running service and what tests drive it with.
pub struct TestApp {
    pub addr: SocketAddr,
    pub log: AuditLog,
    pub http: reqwest::Client,
    pub issuer: TokenIssuer,
    /// The private key (PEM) behind `issuer`, for tokens with other claims.
    pub token_key: String,
    pub officer_key: String,
    _keys: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

fn write(dir: &std::path::Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// The shipped policy (`policies/` at the repository root), signed with a fresh key as
/// `dir/policy.tar.gz`; returns the bundle and public key paths.
fn signed_policy(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut bundle = Bundle::from_dir("blindledger", &policies, "test").unwrap();
    let key = SigningKey::generate();
    sign_bundle(&mut bundle, &key, "ci", None).unwrap();
    let archive = dir.join("policy.tar.gz");
    std::fs::write(&archive, bundle.to_tar_gz().unwrap()).unwrap();
    (
        archive,
        write(dir, "bundle.pub", &key.public_key_pem().unwrap()),
    )
}

/// Starts the service on `url` (migrated), importing every 100 ms, deciding requests with
/// the shipped policy.
pub async fn spawn_app(url: &str) -> TestApp {
    spawn_app_with(url, |_| {}).await
}

/// [`spawn_app`] with the configuration changed by `adjust` first.
pub async fn spawn_app_with(url: &str, adjust: impl FnOnce(&mut AuditConfig)) -> TestApp {
    let keys = tempfile::tempdir().unwrap();
    let (policy, bundle_key) = signed_policy(keys.path());
    let (token_private, token_public) = generate_keypair().unwrap();
    let (officer_private, officer_public) = generate_officer_keypair().unwrap();
    let checkpoint = CheckpointSigner::generate("audit-1");
    let mut config = AuditConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        policy_bundle: Some(BundleSource::File(policy)),
        bundle_keys: BTreeMap::from([("ci".into(), bundle_key)]),
        database_url: url.to_string().into(),
        token_keys: BTreeMap::from([("t1".into(), write(keys.path(), "token.pub", &token_public))]),
        officer_keys: BTreeMap::from([(
            "officer-1".into(),
            write(keys.path(), "officer.pub", &officer_public),
        )]),
        checkpoint_key: Some(write(
            keys.path(),
            "checkpoint.key",
            &checkpoint.private_key_pem().unwrap(),
        )),
        checkpoint_interval_ms: 1_000,
        import_interval_ms: 100,
        import_settle_ms: Some(0),
        live_poll_ms: 50,
        ..AuditConfig::default()
    };
    adjust(&mut config);
    let app = Application::build(config).await.unwrap();
    let (addr, log) = (app.addr(), app.log());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let issuer = TokenIssuer::new(
        &token_private,
        "t1",
        "blindledger",
        blindledger_gate::audiences::AUDIT,
    )
    .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        addr,
        log,
        http,
        issuer,
        token_key: token_private,
        officer_key: officer_private,
        _keys: keys,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A token for `subject` with `roles`.
    pub fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.token_for(subject, roles, Duration::from_secs(600))
    }

    /// An auditor's token naming `audiences` instead of this service's alone.
    pub fn token_for_audiences(&self, audiences: &[&str]) -> String {
        TokenIssuer::new(&self.token_key, "t1", "blindledger", "unused")
            .unwrap()
            .for_audiences(audiences)
            .issue("olivia", &["auditor".into()], &[], Duration::from_secs(600))
            .unwrap()
    }

    /// A token valid for `ttl` only.
    pub fn token_for(&self, subject: &str, roles: &[&str], ttl: Duration) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.issuer.issue(subject, &roles, &[], ttl).unwrap()
    }

    pub fn auditor(&self) -> String {
        self.token("olivia", &["auditor"])
    }

    /// GET `path` as an auditor; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(self.auditor())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// POSTs `token` to the sign-in form.
    pub async fn sign_in(&self, token: &str) -> reqwest::Response {
        let form = [("token", token)];
        let request = self.http.post(self.url("/login")).form(&form);
        request.send().await.unwrap()
    }

    /// GETs `path` with `token` in the session cookie, as a signed-in browser sends it.
    pub async fn get_in_session(&self, path: &str, token: &str) -> reqwest::Response {
        let cookie = format!("bl_audit_session={token}");
        let request = self.http.get(self.url(path)).header("cookie", cookie);
        request.send().await.unwrap()
    }

    /// A command signed with the configured officer key.
    pub fn signed(&self, command: Command, target: &str) -> SignedCommand {
        let payload = CommandPayload::new(command, target, "test", "officer-1");
        sign_command(&payload, &self.officer_key).unwrap()
    }

    /// Stops the service and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A decision-log row as the ledger writes it.
pub async fn ledger_decision(log: &AuditLog, n: i64, principal: &str, allowed: bool, at: i64) {
    let event = json!({
        "decision_id": format!("d-{n}"), "path": "blindledger/authz/decision",
        "input": {"principal": principal, "resource": {"tenant": "acme", "account": "alice"}},
        "result": {"allow": allowed, "reasons": if allowed { json!([]) } else { json!(["tier blocked"]) },
                   "obligations": {"max_amount": 987654321}},
        "timestamp": "2025-01-01T00:00:00Z",
    });
    sqlx::query(
        "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, revisions, event) \
         VALUES (?, ?, ?, '/blindledger.ledger.v1.LedgerService/Transfer', ?, '{\"blindledger\":\"r1\"}', ?)",
    )
    .bind(format!("d-{n}"))
    .bind(at)
    .bind(principal)
    .bind(i64::from(allowed))
    .bind(serde_json::to_vec(&event).unwrap())
    .execute(log.pool())
    .await
    .unwrap();
}

/// A job row as the ledger writes it, with a ciphertext payload of `bytes` bytes.
pub async fn ledger_job(log: &AuditLog, id: &str, state: &str, at: i64, bytes: usize) {
    sqlx::query(
        "INSERT INTO jobs (id, tenant, kind, state, account_a, account_b, idempotency_key, request_hash, \
         payload, params, created_at, updated_at) VALUES (?, 'acme', 'transfer', ?, 'alice', 'bob', ?, 'h', ?, \
         '{\"max_amount\":987654321}', ?, ?)",
    )
    .bind(id)
    .bind(state)
    .bind(format!("key-{id}"))
    .bind(vec![7u8; bytes])
    .bind(at)
    .bind(at)
    .execute(log.pool())
    .await
    .unwrap();
}

/// An audit event appended directly (for volume).
pub fn decision_event(i: i64, principal: &str, outcome: &str, at: i64) -> NewEvent {
    NewEvent::new(
        EventKind::Decision,
        at,
        principal,
        "acme/alice",
        json!({"decision_id": format!("x-{i}"), "method": "/blindledger.ledger.v1.LedgerService/Transfer",
               "outcome": outcome, "revision": "r1", "reasons": []}),
    )
}

/// An entity's risk state as the controller writes it, scored at `since`.
pub async fn controller_risk(
    log: &AuditLog,
    (kind, entity): (&str, &str),
    tier: &str,
    score: f64,
    since: i64,
) {
    let top = json!([{"name": "night_share", "value": 0.9, "z": 4.2},
                     {"name": "new_counterparties", "value": 12.0, "z": 3.1}]);
    sqlx::query(
        "INSERT INTO controller_entity_risk (kind, entity, tier, score, model_version, features, \
         top_features, tier_since, updated_at) VALUES (?, ?, ?, ?, 3, '{}', ?, ?, ?)",
    )
    .bind(kind)
    .bind(entity)
    .bind(tier)
    .bind(score)
    .bind(top.to_string())
    .bind(since)
    .bind(since)
    .execute(log.pool())
    .await
    .unwrap();
}

/// A point of the controller's score history.
pub async fn controller_score(log: &AuditLog, (kind, entity): (&str, &str), score: f64, at: i64) {
    sqlx::query(
        "INSERT INTO controller_score_history (kind, entity, score, tier, model_version, scored_at) \
         VALUES (?, ?, ?, 'high', 3, ?)",
    )
    .bind(kind)
    .bind(entity)
    .bind(score)
    .bind(at)
    .execute(log.pool())
    .await
    .unwrap();
}

/// A tier change as the controller records it.
pub async fn controller_tier_change(log: &AuditLog, entity: &str, from: &str, to: &str, at: i64) {
    sqlx::query(
        "INSERT INTO controller_tier_changes (kind, entity, from_tier, to_tier, score, \
         model_version, changed_at) VALUES ('account', ?, ?, ?, 0.74, 3, ?)",
    )
    .bind(entity)
    .bind(from)
    .bind(to)
    .bind(at)
    .execute(log.pool())
    .await
    .unwrap();
}

/// An activation of bundle `name` at `revision`.
pub async fn controller_activation(
    log: &AuditLog,
    name: &str,
    revision: &str,
    action: &str,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO controller_activations (name, revision, action, actor, activated_at) \
         VALUES (?, ?, ?, 'ci', ?)",
    )
    .bind(name)
    .bind(revision)
    .bind(action)
    .bind(at)
    .execute(log.pool())
    .await
    .unwrap();
}

/// A policy push report; `report` is the controller's JSON (tests, impact, ...).
pub async fn controller_push(
    log: &AuditLog,
    revision: &str,
    (outcome, reason): (&str, &str),
    report: serde_json::Value,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO controller_push_reports (revision, pushed_by, pushed_at, outcome, reason, \
         report) VALUES (?, 'ci', ?, ?, ?, ?)",
    )
    .bind(revision)
    .bind(at)
    .bind(outcome)
    .bind(reason)
    .bind(report.to_string())
    .execute(log.pool())
    .await
    .unwrap();
}

/// The impact report of a push that changes 7 decisions, with an example carrying a limit
/// (which the dashboard must not show).
pub fn impact_report(revision: &str) -> serde_json::Value {
    let transfer = "/blindledger.ledger.v1.LedgerService/Transfer";
    json!({
        "revision": revision, "outcome": "activated", "reason": null,
        "tests": {"passed": 12, "failed": [], "coverage_percent": 93.5},
        "impact": {
            "baseline_revision": "r1", "replayed": 200, "changed": 7, "allow_to_deny": 5,
            "deny_to_allow": 1, "obligations_changed": 1, "errors_before": 0, "errors_after": 0,
            "by_method": {transfer: 6, "/blindledger.ledger.v1.LedgerService/Withdraw": 1},
            "by_principal": {"alice": 1, "bob": 1, "carol": 1, "dave": 1, "erin": 1, "frank": 1, "grace": 1},
            "examples": [{"decision_id": "d-1", "method": transfer, "principal": "alice",
                          "before": {"allow": true, "obligations": {"max_amount": 987654321}},
                          "after": {"allow": false}}],
        },
        "max_changed": 10, "active_revision": revision,
    })
}
