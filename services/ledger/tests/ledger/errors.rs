//! Errors a client can act on without parsing English: each carries `google.rpc` details
//! (`ErrorInfo` with a stable reason, `BadRequest` naming the field, `RetryInfo` on what to
//! retry), read here with `tonic-types` as any gRPC client library reads them.

use std::time::Duration;

use blindledger_client::ClientError;
use blindledger_gate::BundleSource;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

fn status<T: std::fmt::Debug>(result: Result<T, ClientError>) -> tonic::Status {
    match result.expect_err("the call fails") {
        ClientError::Status(status) => status,
        other => panic!("not a status: {other}"),
    }
}

fn reason(status: &tonic::Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    assert_eq!(info.domain, "blindledger");
    info.reason
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_carries_google_rpc_details() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "bob"]).await;
    let amount = encrypt(&env.keys, 5);

    // A malformed name: INVALID_ARGUMENT naming the field, logged with a decision id.
    let bad = status(
        app.client
            .transfer("acme", "alice", "Bob!", amount.clone(), &key())
            .await,
    );
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(reason(&bad), "INVALID_REQUEST");
    let violations = bad
        .get_details_bad_request()
        .expect("a BadRequest")
        .field_violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "to_account");
    let decision_id = bad.get_details_error_info().unwrap().metadata["decision_id"].clone();
    assert_eq!(
        bad.metadata()
            .get("x-decision-id")
            .unwrap()
            .to_str()
            .unwrap(),
        decision_id
    );
    assert!(bad.get_details_retry_info().is_none());

    // Denied by the policy: the reason and the decision id.
    let teller = app
        .client
        .with_token(&env.token("tom", &["teller"], &["acme"]))
        .unwrap();
    let denied = status(
        teller
            .deposit("acme", "alice", amount.clone(), &key())
            .await,
    );
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(reason(&denied), "POLICY_DENIED");
    assert_eq!(
        denied.get_details_error_info().unwrap().metadata["decision_id"].len(),
        36
    );

    // No token, an unknown account.
    let anonymous =
        blindledger_client::LedgerClient::connect_plaintext(&format!("http://{}", app.addr))
            .await
            .unwrap();
    let unauthenticated = status(anonymous.balance("acme", "alice").await);
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_eq!(reason(&unauthenticated), "TOKEN_MISSING");
    let missing = status(app.client.balance("acme", "nobody").await);
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(reason(&missing), "NOT_FOUND");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unavailable_says_when_to_retry() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    // A risk bundle that never arrives: money calls wait for it, as UNAVAILABLE.
    config.risk_bundle = Some(BundleSource::Http(
        "http://127.0.0.1:1/bundles/risk".to_string(),
    ));
    let app = spawn_with(config, &env.admin_token()).await;
    let unavailable = status(
        app.client
            .deposit("acme", "alice", encrypt(&env.keys, 5), &key())
            .await,
    );
    assert_eq!(unavailable.code(), Code::Unavailable);
    assert_eq!(reason(&unavailable), "BUNDLE_NOT_ACTIVE");
    let retry = unavailable.get_details_retry_info().expect("a RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    app.stop().await;
}
