//! The gRPC health service, as load balancers and Kubernetes probes ask it: the server as a
//! whole (`""`) and the ledger service are SERVING only with a database and an active
//! policy, NOT_SERVING otherwise.

use std::time::Duration;

use blindledger_gate::BundleSource;
use blindledger_test_support::eventually;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::helpers::*;

async fn status(app: &TestApp, service: &str) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = HealthCheckRequest {
        service: service.into(),
    };
    HealthClient::new(channel)
        .check(request)
        .await
        .unwrap()
        .into_inner()
        .status()
}

async fn until_status(app: &TestApp, wanted: ServingStatus) {
    for service in ["", "blindledger.ledger.v1.LedgerService"] {
        eventually(
            &format!("health {service:?} is {wanted:?}"),
            Duration::from_secs(10),
            || async move { (status(app, service).await == wanted).then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_the_database_and_the_policy() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    until_status(&app, ServingStatus::Serving).await;
    app.stop().await;

    // No policy can be loaded: nothing could be decided, so nothing is served.
    let mut config = env.config();
    config.policy_bundle = Some(BundleSource::Http(
        "http://127.0.0.1:1/bundles/blindledger".into(),
    ));
    let app = spawn_with(config, &env.admin_token()).await;
    until_status(&app, ServingStatus::NotServing).await;
    app.stop().await;
}
