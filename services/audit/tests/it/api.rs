//! The HTTP API: sign-in, verification, signed commands, CSV export and live events.

use blindledger_audit::admin::Command;
use blindledger_audit::now_ms;
use futures::StreamExt;
use serde_json::Value;

use blindledger_gate::BundleSource;
use blindledger_test_support::TestDatabase;
use sqlx::Row;

use crate::helpers::{decision_event, ledger_decision, spawn_app, spawn_app_with};

#[tokio::test]
async fn officers_must_sign_in_with_an_allowed_role() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let anonymous = app
        .http
        .get(app.url("/api/audit/verify"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let page = app.http.get(app.url("/decisions")).send().await.unwrap();
    assert_eq!(
        (
            page.status().as_u16(),
            page.headers()["location"].to_str().unwrap()
        ),
        (303, "/login")
    );
    let teller = app.token("tom", &["teller"]);
    let refused = app
        .http
        .get(app.url("/api/audit/verify"))
        .bearer_auth(&teller)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // The refusal cites its logged decision, as an allowed request's answer does.
    let decision_id = refused.headers()["x-decision-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let logged: i64 = sqlx::query("SELECT COUNT(*) FROM decision_log WHERE decision_id = ?")
        .bind(&decision_id)
        .fetch_one(app.log.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        logged, 1,
        "the refusal {decision_id} is in the decision log"
    );
    let forged = format!("{}x", app.auditor());
    let refused = app
        .http
        .get(app.url("/api/audit/verify"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // The login form keeps the token in an HttpOnly, SameSite cookie that ends with the
    // token (600 s), Secure once a proxy says the request came over TLS.
    let login = app.sign_in(&app.auditor()).await;
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    let max_age: u64 = cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .expect("a Max-Age")
        .parse()
        .unwrap();
    assert!((590..=600).contains(&max_age), "{cookie}");
    for (name, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
    ] {
        let form = [("token", app.auditor())];
        let request = app.http.post(app.url("/login")).header(name, value);
        let login = request.form(&form).send().await.unwrap();
        let cookie = login.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.ends_with("; Secure"), "{name}: {cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let page = app
        .http
        .get(app.url("/decisions"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let login = app.sign_in("nonsense").await;
    assert!(login.text().await.unwrap().contains("not valid"));
    app.stop().await;
}

#[tokio::test]
async fn verification_reports_tampering_over_http() {
    let db = TestDatabase::sqlite().unwrap();
    // Not importing: the verification requests' own decisions would lengthen the chain.
    let app = spawn_app_with(db.url(), |config| config.import_interval_ms = 0).await;
    let events: Vec<_> = (0..30)
        .map(|i| decision_event(i, "alice", "allow", now_ms()))
        .collect();
    app.log.append_batch(&events).await.unwrap();
    let (status, body) = app.get("/api/audit/verify").await;
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, &report["ok"], &report["rows_checked"]),
        (200, &Value::Bool(true), &30.into())
    );
    sqlx::query("DELETE FROM audit_events WHERE seq = 17")
        .execute(app.log.pool())
        .await
        .unwrap();
    let report: Value = serde_json::from_str(&app.get("/api/audit/verify").await.1).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_problem"]["position"], 17);
    assert_eq!(report["first_problem"]["problem"], "missing");
    app.stop().await;
}

#[tokio::test]
async fn signed_commands_over_http() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let admin = app.token("ada", &["admin"]);
    let freeze = app.signed(Command::Freeze, "acme/alice");
    let send = |token: String, body: Value| {
        let request = app
            .http
            .post(app.url("/api/admin/command"))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let body = serde_json::to_value(&freeze).unwrap();
    assert_eq!(
        send(app.auditor(), body.clone()).await.status(),
        403,
        "auditors cannot command"
    );
    let accepted = send(admin.clone(), body.clone()).await;
    assert_eq!(accepted.status(), 200);
    let accepted: Value = accepted.json().await.unwrap();
    assert!(accepted["audit_seq"].as_i64().unwrap() >= 1);
    let replay = send(admin.clone(), body).await;
    assert_eq!(replay.status(), 409);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["rejection"],
        "replayed"
    );
    let mut altered = app.signed(Command::Unfreeze, "acme/bob");
    altered.payload = altered.payload.replace("acme/bob", "acme/alice");
    let refused = send(admin, serde_json::to_value(&altered).unwrap()).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["rejection"],
        "bad_signature"
    );
    let (_, data) = app.get("/api/policy-data").await;
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["frozen"]["acme/alice"]["reason"], "test");
    let (_, attention) = app.get("/attention").await;
    assert!(
        attention.contains("acme/alice") && attention.contains("bad_signature"),
        "{attention}"
    );
    app.stop().await;
}

#[tokio::test]
async fn csv_export_covers_the_range_without_amounts() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let base = 1_700_000_000_000;
    let events: Vec<_> = (0..5000)
        .map(|i| decision_event(i, "alice", "allow", base + i * 1000))
        .collect();
    app.log.append_batch(&events).await.unwrap();
    ledger_decision(&app.log, 1, "mallory", false, now_ms()).await;
    let (status, csv) = app
        .get(&format!(
            "/export.csv?from={}&to={}",
            base + 1_000_000,
            base + 3_000_000
        ))
        .await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], blindledger_audit::CSV_HEADER);
    assert_eq!(lines.len(), 1 + 2000);
    let first_row = format!(
        "1001,{},decision,alice,acme/alice,",
        blindledger_audit::rfc3339_ms(base + 1_000_000)
    );
    assert!(lines[1].starts_with(&first_row), "{}", lines[1]);
    crate::pages::import(&app).await;
    let (_, all) = app.get("/export.csv").await;
    // The officer's own requests are decisions in the trail too.
    let officer_rows = all.lines().filter(|l| l.contains(",olivia,")).count();
    assert!(officer_rows >= 1, "the export request's decision");
    assert_eq!(all.lines().count() - officer_rows, 1 + 5001);
    assert!(
        !all.contains("987654321"),
        "the policy's limits are not exported"
    );
    app.stop().await;
}

#[tokio::test]
async fn new_decisions_are_pushed_as_server_sent_events() {
    let db = TestDatabase::mysql().await.unwrap();
    let app = spawn_app(db.url()).await;
    let response = app
        .http
        .get(app.url("/events"))
        .bearer_auth(app.auditor())
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    ledger_decision(&app.log, 7, "mallory", false, now_ms()).await;
    // The stream's own decision (the officer opening it) may come first.
    let mut seen = String::new();
    let event = loop {
        if let Some(event) = seen
            .split("\n\n")
            .find(|e| e.contains("\"principal\":\"mallory\""))
        {
            break event.to_owned();
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("a decision event within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    };
    assert!(event.contains("event: decision"), "{event}");
    assert!(event.contains("\"outcome\":\"deny\""), "{event}");
    drop(stream);
    app.stop().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_event_stream_ends_when_its_token_expires() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let token = app.token_for("olivia", &["auditor"], std::time::Duration::from_secs(2));
    let response = app
        .http
        .get(app.url("/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    // Keep-alives and decisions may come first; the stream then ends, with the service up.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(chunk) = stream.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token");
    assert_eq!(app.get("/healthz").await.0, 200);
    app.stop().await;
}

#[tokio::test]
async fn a_token_for_another_service_is_refused() {
    use blindledger_gate::audiences::{AUDIT, CONTROLLER, LEDGER};
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let status = |token: String| {
        let request = app
            .http
            .get(app.url("/api/audit/verify"))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(app.token_for_audiences(&[LEDGER])).await, 401);
    assert_eq!(status(app.token_for_audiences(&[CONTROLLER])).await, 401);
    assert_eq!(status(app.token_for_audiences(&["blindledger"])).await, 401);
    let refused = app
        .sign_in(&app.token_for_audiences(&[LEDGER]))
        .await
        .text()
        .await
        .unwrap();
    assert!(refused.contains("not valid"), "{refused}");
    // A token naming this service among others is accepted.
    assert_eq!(status(app.token_for_audiences(&[LEDGER, AUDIT])).await, 200);
    app.stop().await;
}

#[tokio::test]
async fn dashboard_requests_pass_the_policy_gate() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let get = |path: &str, token: String| app.http.get(app.url(path)).bearer_auth(token).send();
    let allowed = get("/api/audit/checkpoints", app.auditor()).await.unwrap();
    assert_eq!(allowed.status(), 200);
    let allowed_id = allowed.headers()["x-decision-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let teller = app.token("tom", &["teller"]);
    let refused = get("/api/audit/checkpoints", teller).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.contains(
            r#"roles ["teller"] may not call /blindledger.audit.v1.Dashboard/Checkpoints"#
        ),
        "{reason}"
    );
    // A command needs the admin role: the policy says so before any signature is read.
    let command = serde_json::to_value(app.signed(Command::Freeze, "acme/alice")).unwrap();
    let refused = app
        .http
        .post(app.url("/api/admin/command"))
        .bearer_auth(app.auditor())
        .json(&command)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("Dashboard/AdminCommand"));

    // Each decision is in the decision log before the answer, under the officer.
    let rows = sqlx::query("SELECT decision_id, principal, method, allowed FROM decision_log")
        .fetch_all(app.log.pool())
        .await
        .unwrap();
    let logged: Vec<(String, String, String, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let checkpoints = "/blindledger.audit.v1.Dashboard/Checkpoints".to_owned();
    assert!(logged.contains(&(allowed_id, "olivia".into(), checkpoints.clone(), 1)));
    assert!(logged
        .iter()
        .any(|(_, who, method, allowed)| who == "tom" && method == &checkpoints && *allowed == 0));
    app.stop().await;
}

#[tokio::test]
async fn without_a_policy_every_request_is_refused() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app_with(db.url(), |config| {
        config.policy_bundle = Some(BundleSource::File("/nonexistent/policy.tar.gz".into()));
    })
    .await;
    let (status, body) = app.get("/api/audit/verify").await;
    assert_eq!(
        (status, body.contains("no policy loaded")),
        (503, true),
        "{body}"
    );
    let page = app.get_in_session("/decisions", &app.auditor()).await;
    assert_eq!(page.status(), 503);
    assert_eq!(app.sign_in(&app.auditor()).await.status(), 503);
    app.stop().await;
}

#[tokio::test]
async fn the_attention_page_shows_rows_set_aside_and_a_lagging_trail() {
    // A decision-log row the trail cannot hold (a 100,000-character account name), then an
    // ordinary one: the first is set aside, the second imported, and officers see both.
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let huge = "x".repeat(100_000);
    let event = serde_json::json!({
        "decision_id": "d-hostile",
        "input": {"principal": "mallory", "resource": {"tenant": "acme", "account": huge}},
        "result": {"allow": false, "reasons": []},
    });
    sqlx::query(
        "INSERT INTO decision_log (decision_id, logged_at, principal, method, allowed, revisions, event) \
         VALUES ('d-hostile', ?, 'mallory', '/blindledger.ledger.v1.LedgerService/OpenAccount', 0, '{}', ?)",
    )
    .bind(now_ms())
    .bind(serde_json::to_vec(&event).unwrap())
    .execute(app.log.pool())
    .await
    .unwrap();
    ledger_decision(&app.log, 2, "alice", true, now_ms()).await;
    let log = &app.log;
    blindledger_test_support::until("both rows are imported", WAIT, || async {
        log.import_position("decision_log").await.unwrap() == 2
    })
    .await;
    let (_, attention) = app.get("/attention").await;
    assert!(
        attention.contains("decision_log:1") && attention.contains("set aside"),
        "{attention}"
    );
    assert!(!attention.contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    assert!(!attention.contains("lags"), "{attention}");
    app.stop().await;

    // With no importer running, a row logged ten minutes ago makes the trail lag, and the
    // page says so.
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app_with(db.url(), |config| config.import_interval_ms = 0).await;
    ledger_decision(&app.log, 1, "alice", true, now_ms() - 600_000).await;
    let (_, attention) = app.get("/attention").await;
    assert!(
        attention.contains("lags") && attention.contains("decision_log"),
        "{attention}"
    );
    app.stop().await;
}

/// How long a test waits for the service to do something it does within a second.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Storage failures answer 503 only when a later try may succeed; a schema problem is a
/// 500, not a "retry later" that would hide it.
#[tokio::test]
async fn storage_failures_are_unavailable_or_internal_by_cause() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app_with(db.url(), |config| config.import_interval_ms = 0).await;
    assert_eq!(app.get("/api/audit/verify").await.0, 200);

    sqlx::query("DROP TABLE audit_checkpoints")
        .execute(app.log.pool())
        .await
        .unwrap();
    let (status, body) = app.get("/api/audit/verify").await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("audit_checkpoints"), "{body}");

    app.log.close().await;
    let (status, body) = app.get("/api/audit/verify").await;
    assert_eq!(status, 503, "{body}");
    app.stop().await;
}
