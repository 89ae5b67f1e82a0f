//! The HTTP API: sign-in, verification, signed commands, CSV export and live events.

use blindledger_audit::admin::Command;
use blindledger_audit::now_ms;
use futures::StreamExt;
use serde_json::Value;

use crate::helpers::{decision_event, ledger_decision, spawn_app, TestDb};

#[tokio::test]
async fn officers_must_sign_in_with_an_allowed_role() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db.url).await;
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
    let forged = format!("{}x", app.auditor());
    let refused = app
        .http
        .get(app.url("/api/audit/verify"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // The login form keeps the token in an HttpOnly, SameSite cookie.
    let form = [("token", app.auditor())];
    let login = app
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = app
        .http
        .get(app.url("/decisions"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let bad = [("token", "nonsense")];
    let login = app
        .http
        .post(app.url("/login"))
        .form(&bad)
        .send()
        .await
        .unwrap();
    assert!(login.text().await.unwrap().contains("not valid"));
    app.stop().await;
}

#[tokio::test]
async fn verification_reports_tampering_over_http() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db.url).await;
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
    let db = TestDb::sqlite();
    let app = spawn_app(&db.url).await;
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
    let db = TestDb::sqlite();
    let app = spawn_app(&db.url).await;
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
    assert_eq!(all.lines().count(), 1 + 5001);
    assert!(
        !all.contains("987654321"),
        "the policy's limits are not exported"
    );
    app.stop().await;
}

#[tokio::test]
async fn new_decisions_are_pushed_as_server_sent_events() {
    let db = TestDb::mysql().await;
    let app = spawn_app(&db.url).await;
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
    let mut seen = String::new();
    while !seen.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("a decision event within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: decision"), "{seen}");
    assert!(
        seen.contains("\"principal\":\"mallory\"") && seen.contains("\"outcome\":\"deny\""),
        "{seen}"
    );
    drop(stream);
    app.stop().await;
    db.cleanup().await;
}
