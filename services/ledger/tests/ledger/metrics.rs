//! `/metrics` as Prometheus scrapes it: gRPC metrics named and labelled exactly as
//! go-grpc-prometheus does (so stock dashboards read them), streaming calls counted with
//! the status in their trailers, and HELP text on every family.

use std::collections::BTreeSet;

use futures::StreamExt as _;
use tonic::Code;

use crate::helpers::*;

const SERVICE: &str = "blindledger.ledger.v1.LedgerService";

/// The value of the sample with exactly these labels, if exported.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeSet<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        let got: BTreeSet<String> = labels.split(',').map(str::to_owned).collect();
        (got == wanted).then(|| value.trim().parse().ok()).flatten()
    })
}

/// `GET /metrics` over HTTP/1.1, as Prometheus scrapes it; the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_metrics_are_labelled_as_go_grpc_prometheus_labels_them() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = blindledger_ledger::Application::build(config)
        .await
        .unwrap();
    let metrics_addr = app.metrics_addr().unwrap();
    let app = spawn_app_from(app, &env.admin_token()).await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;

    // A unary call that succeeds, one the policy refuses, one with a bad token.
    app.client.tenant("acme").await.unwrap();
    let teller = env.token("tom", &["teller"], &["acme"]);
    let refused = app.client.with_token(&teller).unwrap();
    let denied = refused
        .deposit("acme", "alice", encrypt(&env.keys, 1), &key())
        .await;
    assert_eq!(
        denied.unwrap_err().status().map(|s| s.code()),
        Some(Code::PermissionDenied)
    );
    let forged = app.client.with_token("not-a-token").unwrap();
    assert!(forged.tenant("acme").await.is_err());
    // A server stream that ends OK (its status is in the trailers) with two messages.
    let job = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 5), &key())
        .await
        .unwrap();
    let states: Vec<_> = app.client.watch_job(&job.id).await.unwrap().collect().await;
    assert!(
        states.len() >= 2 && states.iter().all(Result::is_ok),
        "{states:?}"
    );

    let text = scrape(metrics_addr).await;
    let labels = |method: &'static str, grpc_type: &'static str| {
        vec![
            ("grpc_type", grpc_type),
            ("grpc_service", SERVICE),
            ("grpc_method", method),
        ]
    };
    let with_code = |method, grpc_type, code| {
        let mut l = labels(method, grpc_type);
        l.push(("grpc_code", code));
        l
    };
    let handled = |method, grpc_type, code| {
        sample(
            &text,
            "grpc_server_handled_total",
            &with_code(method, grpc_type, code),
        )
    };
    assert!(
        handled("GetTenant", "unary", "OK").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(handled("GetTenant", "unary", "Unauthenticated").is_some_and(|n| n >= 1.0));
    assert!(handled("Deposit", "unary", "PermissionDenied").is_some_and(|n| n >= 1.0));
    assert!(
        handled("WatchJob", "server_stream", "OK").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(sample(
        &text,
        "grpc_server_started_total",
        &labels("WatchJob", "server_stream")
    )
    .is_some_and(|n| n >= 1.0));
    let sent = sample(
        &text,
        "grpc_server_msg_sent_total",
        &labels("WatchJob", "server_stream"),
    );
    assert!(sent.is_some_and(|n| n >= 2.0), "{sent:?}");
    let received = sample(
        &text,
        "grpc_server_msg_received_total",
        &labels("RegisterTenantKeys", "client_stream"),
    );
    assert!(received.is_some_and(|n| n >= 2.0), "{received:?}");
    assert!(sample(
        &text,
        "grpc_server_handling_seconds_count",
        &labels("GetTenant", "unary")
    )
    .is_some_and(|n| n >= 1.0));
    // The job pipeline: bootstraps counted per operation, queue wait and submit-to-commit
    // times, open jobs by state, the database pool.
    let deposit = [("op", "deposit")];
    let bootstraps = sample(&text, "blindledger_fhe_bootstraps_total", &deposit);
    assert!(bootstraps.is_some_and(|n| n > 0.0), "{bootstraps:?}");
    let kind = [("kind", "deposit")];
    for histogram in [
        "blindledger_job_queue_wait_seconds_count",
        "blindledger_job_latency_seconds_count",
    ] {
        assert!(
            sample(&text, histogram, &kind).is_some_and(|n| n >= 1.0),
            "{histogram}"
        );
    }
    for state in ["pending", "running"] {
        assert!(sample(&text, "blindledger_jobs_open", &[("state", state)]).is_some());
    }
    assert!(sample(
        &text,
        "blindledger_db_pool_connections",
        &[("state", "idle")]
    )
    .is_some());
    assert!(
        text.contains("blindledger_db_pool_acquire_seconds_count"),
        "{text}"
    );
    // No Rust spelling of a code, no status counted OK by default.
    assert!(!text.contains("grpc_code=\"Ok\""), "{text}");

    // Every family has its HELP text.
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let described: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let undescribed: Vec<_> = families.difference(&described).collect();
    assert!(undescribed.is_empty(), "no HELP text: {undescribed:?}");
    app.stop().await;
}
