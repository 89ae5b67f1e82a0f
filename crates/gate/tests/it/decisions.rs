//! Decisions of the policy gate, and the decision log written for each.

use std::sync::Arc;

use blindledger_gate::{
    with_decision_id, DecisionSink, MemorySink, PolicyGate, Principal, Resource,
    DECISION_ID_METADATA,
};
use blindledger_policy::{Bundle, DecisionEvent, PolicyEngine};
use futures::future::BoxFuture;
use serde_json::json;
use tonic::Code;

use crate::support::{bundle_of, policy_bundle};

const METHOD: &str = "/blindledger.ledger.v1.LedgerService/Transfer";

fn principal(roles: &[&str]) -> Principal {
    Principal {
        subject: "alice".to_string(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        tenants: vec!["acme".to_string()],
        ..Principal::default()
    }
}

fn engine(bundles: &[Bundle]) -> PolicyEngine {
    let warm = json!({"principal": "warm", "roles": [], "context": {"service_region": "eu"}});
    PolicyEngine::build(bundles, &warm).unwrap()
}

fn gate_with(sink: Arc<dyn DecisionSink>, bundles: &[Bundle]) -> PolicyGate {
    let gate = PolicyGate::new("eu", sink);
    gate.install(engine(bundles));
    gate
}

fn resource() -> Resource {
    Resource {
        tenant: Some("acme".into()),
        account: Some("limited".into()),
        ..Resource::default()
    }
}

#[tokio::test]
async fn without_an_engine_every_request_is_unavailable() {
    let sink = Arc::new(MemorySink::new());
    let gate = PolicyGate::new("eu", sink.clone());
    assert_eq!(gate.revisions(), None);
    let status = gate
        .authorize(&principal(&["admin"]), METHOD, resource())
        .await
        .map_err(tonic::Status::from)
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "no policy loaded");
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn allowed_decisions_are_logged_with_their_revision() {
    let sink = Arc::new(MemorySink::new());
    let gate = gate_with(sink.clone(), &[policy_bundle("r1")]);
    let authorized = gate
        .authorize(&principal(&["admin"]), METHOD, resource())
        .await
        .unwrap();
    assert_eq!(authorized.obligations.max_amount, Some(100));

    let events = sink.events();
    let [event] = events.as_slice() else {
        panic!("expected one event, got {events:?}")
    };
    assert_eq!(event.decision_id, authorized.decision_id);
    assert_eq!(
        uuid::Uuid::parse_str(&event.decision_id)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(event.path, "blindledger/authz/decision");
    assert_eq!(event.bundles["blindledger"].revision, "r1");
    assert_eq!(event.result.as_ref().unwrap()["allow"], json!(true));
    assert_eq!(event.requested_by.as_deref(), Some("alice"));
    assert!(event.metrics.contains_key("timer_rego_query_eval_ns"));
    assert_eq!(event.input["method"], json!(METHOD));
    assert_eq!(
        event.input["resource"],
        json!({"tenant": "acme", "account": "limited"})
    );
    assert_eq!(event.input["context"]["service_region"], json!("eu"));
    assert!(humantime::parse_rfc3339(event.input["context"]["time"].as_str().unwrap()).is_ok());
    // The bundle's mask erases the token's tenants from the log.
    assert!(event.input.get("tenant_claims").is_none());
    assert_eq!(event.erased, ["/input/tenant_claims"]);

    let response = with_decision_id(tonic::Response::new(()), &authorized.decision_id);
    assert_eq!(
        response.metadata().get(DECISION_ID_METADATA).unwrap(),
        &*authorized.decision_id
    );
}

#[tokio::test]
async fn denials_carry_the_reasons_and_the_decision_id() {
    let sink = Arc::new(MemorySink::new());
    let gate = gate_with(sink.clone(), &[policy_bundle("r1")]);
    let status = gate
        .authorize(&principal(&["teller"]), METHOD, resource())
        .await
        .map_err(tonic::Status::from)
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "denied: not an admin; service region eu");
    let decision_id = status
        .metadata()
        .get(DECISION_ID_METADATA)
        .unwrap()
        .to_str()
        .unwrap();
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].decision_id, decision_id);
    assert_eq!(events[0].result.as_ref().unwrap()["allow"], json!(false));
}

#[tokio::test]
async fn undefined_decisions_fail_closed_and_are_logged() {
    let rego = r#"package blindledger.authz

decision := {"allow": true} if input.principal == "warm"
"#;
    let bundle = bundle_of(
        "blindledger",
        "u1",
        &["blindledger"],
        &[("authz.rego", rego)],
    );
    let sink = Arc::new(MemorySink::new());
    let gate = gate_with(sink.clone(), &[bundle]);
    let status = gate
        .authorize(&principal(&["admin"]), METHOD, resource())
        .await
        .map_err(tonic::Status::from)
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "denied: policy evaluation failed");
    let events = sink.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].result, None);
    let error = events[0].error.as_ref().expect("OPA's top-level error");
    assert_eq!(error["code"], "eval_error");
    assert!(
        error["message"].as_str().unwrap().contains("undefined"),
        "{error}"
    );
    // Labelled as OPA labels its events: instance id and version.
    assert!(!events[0].labels["id"].is_empty());
    assert_eq!(events[0].labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status
            .metadata()
            .get(DECISION_ID_METADATA)
            .unwrap()
            .to_str()
            .unwrap(),
        events[0].decision_id
    );
}

/// A sink whose database is down.
struct DownSink;

impl DecisionSink for DownSink {
    fn record<'a>(&'a self, _event: &'a DecisionEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("connection refused".to_string()) })
    }
}

#[tokio::test]
async fn no_decision_without_an_audit_record() {
    let gate = gate_with(Arc::new(DownSink), &[policy_bundle("r1")]);
    let status = gate
        .authorize(&principal(&["admin"]), METHOD, resource())
        .await
        .map_err(tonic::Status::from)
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "decision log unavailable");
}

#[tokio::test]
async fn clones_share_installed_engines() {
    let gate = PolicyGate::new("eu", Arc::new(MemorySink::new()));
    let clone = gate.clone();
    gate.install(engine(&[policy_bundle("r7")]));
    let revisions = clone.revisions().unwrap();
    assert_eq!(revisions.get("blindledger").map(String::as_str), Some("r7"));
}
