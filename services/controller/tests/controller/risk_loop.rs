//! The whole loop: a workload in which one account suddenly sends bursts to many new
//! counterparties at night; one cycle raises its tier; a service's bundle loader, polling
//! the controller over HTTP, activates the new risk bundle; the service's next transfer
//! decision on that account carries the tier's limits; the on-call channel hears of it
//! exactly once.

use std::sync::Arc;

use blindledger_controller::{EntityKind, RiskTier};
use blindledger_gate::{
    BundleConfig, BundleLoader, BundleSource, MemorySink, PolicyGate, Principal, Resource,
};
use blindledger_policy::{BundleLimits, BundleVerifier, Obligations};
use sqlx::Row;

use crate::helpers::{config, json, TestApp, TestKeys};
use blindledger_test_support::metadata::{
    bursts_at_night, ordinary, Rng, NOW, REGION, TENANT, TRANSFER,
};
use blindledger_test_support::webhook::Receiver;
use blindledger_test_support::TestDatabase;

/// A service's policy gate and the loader feeding it from the controller.
pub struct Service {
    pub gate: PolicyGate,
    pub loader: BundleLoader,
}

impl Service {
    pub fn polling(app: &TestApp, keys: &TestKeys) -> Service {
        let gate = PolicyGate::new(REGION, Arc::new(MemorySink::new()));
        let bundles = ["blindledger", "risk"]
            .into_iter()
            .map(|name| BundleConfig {
                name: name.to_string(),
                source: BundleSource::Http(app.url(&format!("/bundles/{name}"))),
            })
            .collect();
        let verifier = BundleVerifier::new(keys.service_keys(), None, true).unwrap();
        let loader = BundleLoader::new(gate.clone(), bundles, verifier, BundleLimits::default())
            .unwrap()
            .with_bearer_token_file(keys.bundle_token_file());
        Service { gate, loader }
    }

    pub fn active(&self, name: &str) -> Option<String> {
        self.gate.revisions().and_then(|r| r.get(name).cloned())
    }

    /// A teller's transfer decision on `account`.
    pub async fn transfer(&self, account: &str) -> Result<Obligations, tonic::Status> {
        let teller = Principal {
            subject: "mallory".into(),
            roles: vec!["teller".into()],
            tenants: vec![TENANT.into()],
            ..Principal::default()
        };
        let resource = Resource {
            tenant: Some(TENANT.into()),
            account: Some(account.into()),
            region: Some(REGION.into()),
            ..Resource::default()
        };
        let authorized = self.gate.authorize(&teller, TRANSFER, resource).await?;
        Ok(authorized.obligations)
    }
}

/// The anomalous workload over 40 ordinary accounts, inserted.
pub async fn seed(app: &TestApp) {
    let mut rng = Rng::new(11);
    let pool = app.controller.repo().pool();
    ordinary(&mut rng, 40).insert(pool).await;
    bursts_at_night(&mut rng).insert(pool).await;
}

/// Score-history rows of account `entity`.
pub async fn score_history(app: &TestApp, entity: &str) -> i64 {
    let row = sqlx::query(
        "SELECT COUNT(*) FROM controller_score_history WHERE kind = 'account' AND entity = ?",
    )
    .bind(entity)
    .fetch_one(app.controller.repo().pool())
    .await
    .unwrap();
    row.get(0)
}

/// Alerts ever queued.
pub async fn queued_alerts(app: &TestApp) -> i64 {
    let row = sqlx::query("SELECT COUNT(*) FROM controller_alerts")
        .fetch_one(app.controller.repo().pool())
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn bursts_at_night_raise_the_tier_and_services_enforce_it() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let receiver = Receiver::start().await;
    let mut config = config(&db, &keys, Some(receiver.url()));
    let policy = keys.dir.path().join("policy.tar.gz");
    std::fs::write(&policy, keys.signed_policy("v1")).unwrap();
    config.initial_policy_bundle = Some(policy);
    let app = TestApp::spawn(config).await;
    let service = Service::polling(&app, &keys);
    service.loader.reload().await.unwrap();
    assert_eq!(service.active("blindledger").as_deref(), Some("v1"));
    assert_eq!(
        service.active("risk"),
        None,
        "no risk bundle before the first cycle"
    );
    assert_eq!(
        service.transfer("mule").await.unwrap(),
        Obligations::default()
    );

    seed(&app).await;
    let report = app.controller.run_cycle_at(NOW, false).await.unwrap();
    let accounts = &report.kinds[0];
    assert_eq!(accounts.kind, EntityKind::Account);
    assert_eq!(accounts.entities, 41, "{report:?}");
    assert!(accounts.trained);
    let [change] = accounts.changes.as_slice() else {
        panic!("exactly the mule's tier changes: {:?}", accounts.changes);
    };
    assert_eq!(change.entity, "acme/mule");
    assert!(change.to > RiskTier::Low, "{change:?}");
    let drivers: Vec<&str> = change
        .top_features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert!(!drivers.is_empty());
    let risk = report.risk_bundle.clone().unwrap();
    assert!(risk.new);
    assert_eq!(
        score_history(&app, "acme/mule").await,
        1,
        "one point per cycle"
    );
    assert_eq!(
        score_history(&app, "acme/acct-03").await,
        0,
        "ordinary accounts are not recorded"
    );

    // The service picks the new risk bundle up over HTTP and enforces the tier.
    service.loader.reload().await.unwrap();
    assert_eq!(
        service.active("risk").as_deref(),
        Some(risk.revision.as_str())
    );
    let limits = app.controller.config().tier_limits.clone();
    match change.to {
        RiskTier::Blocked => {
            let denied = service.transfer("mule").await.unwrap_err();
            assert!(denied.message().contains("blocked"), "{denied:?}");
        }
        tier => {
            let expected = limits[&tier];
            let obligations = service.transfer("mule").await.unwrap();
            assert_eq!(obligations.max_amount, Some(expected.max_amount));
            assert_eq!(obligations.window_limit, Some(expected.window_limit));
            assert_eq!(obligations.window_seconds, Some(expected.window_seconds));
        }
    }
    // Ordinary accounts are untouched.
    assert_eq!(
        service.transfer("acct-03").await.unwrap(),
        Obligations::default()
    );

    // Exactly one alert, naming the account and never an amount.
    let alerts = receiver.wait_for(1).await;
    let text = alerts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("acme/mule") && text.contains(change.to.as_str()),
        "{text}"
    );
    assert!(alerts[0]["blocks"].is_array());

    // A second cycle changes nothing: no new revision, no second alert.
    let again = app.controller.run_cycle_at(NOW, false).await.unwrap();
    assert!(!again.kinds[0].trained, "the fresh model is reused");
    assert!(again.kinds[0].changes.is_empty(), "{again:?}");
    let same = again.risk_bundle.unwrap();
    assert_eq!(
        (same.revision.as_str(), same.new),
        (risk.revision.as_str(), false)
    );
    assert_eq!(again.alerts_queued, 0);
    assert_eq!(
        score_history(&app, "acme/mule").await,
        2,
        "elevated: recorded each cycle"
    );
    assert_eq!(queued_alerts(&app).await, 1);
    assert_eq!(receiver.bodies().len(), 1);

    // The scores API explains the escalation.
    let token = keys.token("officer", &["auditor"]);
    let scores = app
        .http
        .get(app.url("/v1/risk/scores?kind=account&min_tier=medium"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let scores = json(scores).await;
    let entities = scores["entities"].as_array().unwrap();
    assert_eq!(entities.len(), 1, "{scores}");
    assert_eq!(entities[0]["entity"], "acme/mule");
    assert!(!entities[0]["top_features"].as_array().unwrap().is_empty());
    assert_eq!(scores["risk_revision"], risk.revision.as_str());
    app.stop().await;
}

#[tokio::test]
async fn admins_run_cycles_on_demand_and_few_rows_train_nothing() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    let cycle = |token: String| {
        let url = app.url("/v1/risk/cycle?retrain=true");
        app.http.post(url).bearer_auth(token).send()
    };
    let auditor = cycle(keys.token("officer", &["auditor"])).await.unwrap();
    assert_eq!(auditor.status(), 403);
    let report = json(cycle(keys.token("root", &["admin"])).await.unwrap()).await;
    let accounts = &report["kinds"][0];
    assert_eq!(accounts["kind"], "account");
    assert_eq!(accounts["model_version"], serde_json::Value::Null);
    let skipped = accounts["skipped"].as_str().unwrap();
    assert!(skipped.contains("min_training_rows"), "{skipped}");
    // The first risk bundle carries the limits even before anyone is scored (published by
    // this cycle, or already by the officers' sync when the service started).
    assert!(report["risk_bundle"]["revision"].is_string(), "{report}");
    let risk = app.controller.bundle("risk").unwrap();
    let data = risk.bundle.data().unwrap();
    assert_eq!(data["risk"]["tiers"], serde_json::json!({}));
    assert_eq!(data["risk"]["limits"]["medium"]["max_amount"], 100_000);
    app.stop().await;
}
