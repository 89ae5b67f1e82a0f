//! One trace covers a deposit end to end: the client's span, the ledger's request span,
//! the policy decision, the job run by a worker, its FHE computation (with its bootstrap
//! count) and its commit; the decision-log event names the same trace. Spans are exported
//! over OTLP to a collector in this test, as to any OTLP backend, and none of their
//! attributes holds the amount.
//!
//! Its own test binary: the exporter is installed once per process, from
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, before anything else logs.

// Tests panic on unexpected results.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../ledger/helpers.rs"]
mod helpers;

use blindledger_test_support::{ExportedSpan as Exported, SpanCollector};
use tracing::Instrument as _;

use crate::helpers::*;

/// The distinctive amount deposited, in minor units: found nowhere in the spans.
const AMOUNT: u64 = 4_242_417;

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_covers_a_deposit_from_client_to_commit() {
    let collector = SpanCollector::start().await;
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint);
    blindledger_telemetry::init_tracing(false, "blindledger-ledger");

    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let root = tracing::info_span!("cli.command", verb = "deposit");
    let root_trace = {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        root.context().span().span_context().trace_id().to_string()
    };
    let job = async {
        let job = app
            .client
            .deposit("acme", "alice", encrypt(&env.keys, AMOUNT), &key())
            .await
            .unwrap();
        committed(&app, job).await
    }
    .instrument(root)
    .await;
    assert_eq!(balance(&app, &env.keys, "acme", "alice").await, AMOUNT);
    app.stop().await;
    blindledger_telemetry::shutdown_tracing();

    let spans = collector.spans();
    let in_trace: Vec<&Exported> = spans.iter().filter(|s| s.trace_id == root_trace).collect();
    let named = |name: &str| in_trace.iter().find(|s| s.name == name).copied();
    let names: Vec<&str> = in_trace.iter().map(|s| s.name.as_str()).collect();
    let request = in_trace
        .iter()
        .find(|s| s.attributes.get("rpc.method").map(String::as_str) == Some("Deposit"))
        .unwrap_or_else(|| panic!("no Deposit request span in the trace: {names:?}"));
    assert_eq!(request.attributes["rpc.system"], "grpc");
    let decision = named("policy.authorize").expect("the policy decision");
    let job_span = named("job").expect("the worker's job span");
    assert_eq!(job_span.attributes["job_id"], job.id);
    let compute = named("fhe.compute").expect("the FHE computation");
    assert_eq!(compute.attributes["op"], "deposit");
    let bootstraps: u64 = compute.attributes["bootstraps"].parse().unwrap();
    assert!(bootstraps > 0, "{compute:?}");
    assert_eq!(compute.parent_span_id, job_span.span_id);
    named("job.commit").expect("the commit");

    // The decision-log event names the same trace and the decision's span.
    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    let decisions = db.recent_decisions(100).await.unwrap();
    let logged = decisions
        .iter()
        .find(|d| d.method.ends_with("/Deposit"))
        .expect("the deposit's decision");
    let event: serde_json::Value = serde_json::from_slice(&logged.event).unwrap();
    assert_eq!(event["trace_id"], root_trace.as_str());
    assert_eq!(event["span_id"], decision.span_id.as_str());
    db.close().await;

    // No span carries the amount, in any form a bug would print it.
    let forms = [
        AMOUNT.to_string(),
        format!("{}.{:02}", AMOUNT / 100, AMOUNT % 100),
        format!("{AMOUNT:x}"),
        format!("{AMOUNT:X}"),
    ];
    for span in &spans {
        for (key, value) in &span.attributes {
            for form in &forms {
                assert!(
                    !value.contains(form.as_str()),
                    "{}: {key} = {value} holds the amount",
                    span.name
                );
            }
        }
    }
}
