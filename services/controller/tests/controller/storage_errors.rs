//! What a caller of the controller's API sees when storage fails: 503 `unavailable` only
//! when trying again later may help (no database, or lost races on every attempt), 500
//! `internal` for a schema or privilege problem, which no retry will fix.

use reqwest::StatusCode;

use crate::helpers::{config, json, TestApp, TestKeys};
use blindledger_test_support::TestDatabase;

async fn scores(app: &TestApp, keys: &TestKeys) -> (StatusCode, serde_json::Value) {
    let response = app
        .http
        .get(app.url("/v1/risk/scores"))
        .bearer_auth(keys.token("officer", &["auditor"]))
        .send()
        .await
        .unwrap();
    (response.status(), json(response).await)
}

#[tokio::test]
async fn a_missing_table_is_an_internal_error_not_a_retry_later() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    assert_eq!(scores(&app, &keys).await.0, StatusCode::OK);

    sqlx::query("DROP TABLE controller_entity_risk")
        .execute(app.controller.repo().pool())
        .await
        .unwrap();
    let (status, body) = scores(&app, &keys).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"], "internal");
    // The cause is logged, never shown: no table or statement in the answer.
    assert!(
        !body.to_string().contains("controller_entity_risk"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    app.controller.repo().close().await;
    let (status, body) = scores(&app, &keys).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert_eq!(body["message"], "storage unavailable, retry later");
}
