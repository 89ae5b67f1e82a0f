//! The controller's loop through the real ledger: the controller serves both bundles over
//! HTTP, the ledger polls them; a workload in which one account suddenly sends bursts to
//! many new counterparties at night raises that account's tier in one cycle; the ledger
//! activates the new risk bundle on its own; the account's next transfer above the tier's
//! limit moves nothing (decrypted here) or is refused; the on-call channel hears of it
//! exactly once.

use std::time::Duration;

use blindledger_controller::{ControllerConfig, RiskTier, TierLimits};
use blindledger_gate::BundleSource;
use blindledger_test_support::metadata::{bursts_at_night, ordinary, Rng, NOW};
use blindledger_test_support::until;
use blindledger_test_support::webhook::Receiver;
use secrecy::SecretString;
use tonic::Code;

use crate::helpers::*;

/// Small limits, so the test moves small amounts.
fn limits() -> std::collections::BTreeMap<RiskTier, TierLimits> {
    let limits = |max_amount, window_limit| TierLimits {
        max_amount,
        window_limit,
        window_seconds: 3_600,
    };
    [
        (RiskTier::Medium, limits(50, 100)),
        (RiskTier::High, limits(20, 40)),
    ]
    .into()
}

/// Waits until the ledger serves risk bundle `revision`.
async fn until_active(app: &TestApp, revision: &str) {
    until(
        &format!("the ledger activates risk {revision}"),
        Duration::from_secs(30),
        || async {
            let status = app.client.policy_status().await.unwrap();
            status
                .iter()
                .any(|b| b.name == "risk" && b.active_revision == revision)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_escalated_account_is_limited_by_the_ledger_after_one_cycle() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let keys = tempfile::tempdir().unwrap();
    blindledger_ledger::dev::key_pair(keys.path(), "controller").unwrap();
    let credentials = env.objects.path().join("credentials");
    let controller = blindledger_controller::Application::build(ControllerConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: SecretString::from(env.db.url().to_string()),
        signing_key: Some(keys.path().join("controller.key")),
        ci_keys: [("dev".to_string(), credentials.join("bundle.pub"))].into(),
        token_keys: [("dev".to_string(), credentials.join("token.pub"))].into(),
        initial_policy_bundle: Some(credentials.join("policy.tar.gz")),
        cycle_interval_ms: 0,
        alert_webhook_url: Some(SecretString::from(receiver.url())),
        tier_limits: limits(),
        ..ControllerConfig::default()
    })
    .await
    .unwrap();
    let url = controller.base_url();
    let handle = controller.controller();
    let (stop_controller, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller_task = tokio::spawn(controller.run_until(async move {
        let _ = stopped.await;
    }));

    let mut config = env.config();
    config.policy_bundle = Some(BundleSource::Http(format!("{url}/bundles/blindledger")));
    config.risk_bundle = Some(BundleSource::Http(format!("{url}/bundles/risk")));
    config.risk_bundle_keys = [("controller".into(), keys.path().join("controller.pub"))].into();
    // The controller serves bundles to a token with the bundle_reader role only.
    let token_file = keys.path().join("bundle.token");
    std::fs::write(&token_file, env.token("ledger-1", &["bundle_reader"], &[])).unwrap();
    config.bundle_token_file = Some(token_file);
    config.policy_poll_ms = 100;
    let app = spawn_with(config, &env.admin_token()).await;
    // Money calls fail closed until the controller's first risk bundle is active.
    until(
        "the ledger activates a risk bundle",
        Duration::from_secs(30),
        || async {
            let status = app.client.policy_status().await.unwrap();
            status
                .iter()
                .any(|b| b.name == "risk" && !b.active_revision.is_empty())
        },
    )
    .await;
    tenant_with_accounts(&app, &env.keys, "acme", &["mule", "landlord"]).await;
    let deposit = app
        .client
        .deposit("acme", "mule", encrypt(&env.keys, 200), &key())
        .await
        .unwrap();
    committed(&app, deposit).await;
    let mallory = env.token("mallory", &["teller"], &["acme"]);
    let teller = app.client.clone().with_token(&mallory).unwrap();

    // Before: 60 is covered and nothing limits the account.
    let job = teller
        .transfer("acme", "mule", "landlord", encrypt(&env.keys, 60), &key())
        .await
        .unwrap();
    assert_eq!(movement(&app, &env.keys, job).await, (60, true));

    // The night's metadata, then one cycle.
    let mut rng = Rng::new(11);
    let pool = handle.repo().pool();
    ordinary(&mut rng, 40).insert(pool).await;
    bursts_at_night(&mut rng).insert(pool).await;
    let report = handle.run_cycle_at(NOW, false).await.unwrap();
    let changes = &report.kinds[0].changes;
    let [change] = changes.as_slice() else {
        panic!("exactly the mule's tier changes: {changes:?}");
    };
    assert_eq!(change.entity, "acme/mule");
    let risk = report.risk_bundle.clone().expect("a risk bundle");
    assert!(risk.new);
    until_active(&app, &risk.revision).await;

    // After: 45 is covered by the balance (140), but over the tier's limit: above `high`'s
    // largest amount (20), or past `medium`'s window (60 already moved, limit 100).
    let after = teller
        .transfer("acme", "mule", "landlord", encrypt(&env.keys, 45), &key())
        .await;
    if change.to == RiskTier::Blocked {
        assert_eq!(code(after), Code::PermissionDenied);
    } else {
        assert!(
            matches!(change.to, RiskTier::Medium | RiskTier::High),
            "{change:?}"
        );
        assert_eq!(movement(&app, &env.keys, after.unwrap()).await, (0, false));
    }
    assert_eq!(balance(&app, &env.keys, "acme", "mule").await, 140);

    // Exactly one alert, naming the account and the tier, never an amount.
    let alerts = receiver.wait_for(1).await;
    let text = alerts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("acme/mule") && text.contains(change.to.as_str()),
        "{text}"
    );
    // Once the outbox holds nothing undelivered, nothing more will be sent.
    let repo = handle.repo();
    until(
        "the alert outbox is drained",
        Duration::from_secs(30),
        || async { repo.undelivered_alerts().await.unwrap() == 0 },
    )
    .await;
    assert_eq!(receiver.bodies().len(), 1);

    app.stop().await;
    let _ = stop_controller.send(());
    controller_task.await.unwrap().unwrap();
}
