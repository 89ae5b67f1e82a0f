//! The same loop on MariaDB: the controller's queries, its migration and the ledger's
//! tables under the engine production runs.

use blindledger_controller::scores::ScoresQuery;
use blindledger_controller::{EntityKind, RiskTier};
use blindledger_policy::Bundle;

use crate::helpers::{config, policies_dir, signed, TestApp, TestKeys, CI_KID};
use crate::risk_loop::{seed, Service};
use blindledger_test_support::metadata::NOW;
use blindledger_test_support::TestDatabase;

#[tokio::test]
async fn the_loop_runs_on_mariadb() {
    let db = TestDatabase::mysql().await.unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    let ci = keys.token("pipeline", &["ci"]);
    let pushed = app
        .http
        .post(app.url("/v1/policy/push"))
        .bearer_auth(&ci)
        .body(keys.signed_policy("v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200, "{}", pushed.text().await.unwrap());

    seed(&app).await;
    let report = app.controller.run_cycle_at(NOW, false).await.unwrap();
    let change = &report.kinds[0].changes;
    assert_eq!(change.len(), 1, "{report:?}");
    assert!(change[0].to > RiskTier::Low);
    let service = Service::polling(&app, &keys);
    service.loader.reload().await.unwrap();
    let risk = report.risk_bundle.unwrap().revision;
    assert_eq!(service.active("risk"), Some(risk));
    assert_ne!(
        service.transfer("mule").await.ok(),
        Some(Default::default())
    );

    // A second revision, then back: the stored archive is served byte for byte.
    let mut v2 = Bundle::from_dir("blindledger", &policies_dir(), "v2").unwrap();
    v2.insert_file(
        "blindledger/authz/note.rego",
        b"package blindledger.authz\n\nnote := 1\n".to_vec(),
    )
    .unwrap();
    let pushed = app
        .http
        .post(app.url("/v1/policy/push"))
        .bearer_auth(&ci)
        .body(signed(v2, &keys.ci, CI_KID))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200, "{}", pushed.text().await.unwrap());
    app.controller.rollback("v1", "test").await.unwrap();
    service.loader.reload().await.unwrap();
    assert_eq!(service.active("blindledger").as_deref(), Some("v1"));
    let query = ScoresQuery {
        kind: Some(EntityKind::Account),
        ..ScoresQuery::default()
    };
    let scores = app.controller.scores(&query).await.unwrap();
    assert_eq!(scores.entities[0].entity, "acme/mule");
    app.stop().await;
    db.drop_db().await.unwrap();
}
