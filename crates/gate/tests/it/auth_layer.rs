//! The authentication layer in front of a tower service, as tonic's server runs it.

use std::convert::Infallible;
use std::time::Duration;

use blindledger_gate::{principal, AuthLayer, Principal, TokenIssuer};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{service_fn, Layer, ServiceExt};

use crate::support::{keys, Keys, AUDIENCE, ISSUER, KID};

const METHOD: &str = "/blindledger.ledger.v1.LedgerService/GetBalance";
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// Sends one request through the layer to a service answering 200 with the subject it saw.
async fn call(keys: &Keys, path: &str, authorization: Option<&str>) -> http::Response<String> {
    let inner = service_fn(|request: http::Request<String>| async move {
        let subject = request
            .extensions()
            .get::<Principal>()
            .map(|p| p.subject.clone());
        Ok::<_, Infallible>(http::Response::new(subject.unwrap_or_default()))
    });
    let layer = AuthLayer::new(keys.verifier.clone()).public_path_prefix("/grpc.health.v1.Health/");
    let mut request = http::Request::builder().uri(format!("http://ledger{path}"));
    if let Some(value) = authorization {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    layer
        .layer(inner)
        .oneshot(request.body(String::new()).unwrap())
        .await
        .unwrap()
}

fn grpc_status(response: &http::Response<String>) -> Option<&str> {
    response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap())
}

fn token(keys: &Keys) -> String {
    let issuer = TokenIssuer::new(&keys.private_pem, KID, ISSUER, AUDIENCE).unwrap();
    issuer
        .issue(
            "alice",
            &["teller".to_string()],
            &[],
            Duration::from_secs(60),
        )
        .unwrap()
}

#[tokio::test]
async fn valid_tokens_pass_with_the_principal() {
    let keys = keys();
    let response = call(&keys, METHOD, Some(&format!("Bearer {}", token(&keys)))).await;
    assert_eq!(grpc_status(&response), None);
    assert_eq!(response.body(), "alice");
}

#[tokio::test]
async fn missing_or_invalid_tokens_are_unauthenticated() {
    let keys = keys();
    let other = crate::support::keys();
    let forged = format!("Bearer {}", token(&other));
    for authorization in [
        None,
        Some("Basic YWxpY2U6cHc="),
        Some("Bearer not.a.jwt"),
        Some(&*forged),
    ] {
        let response = call(&keys, METHOD, authorization).await;
        assert_eq!(grpc_status(&response), Some("16"), "{authorization:?}");
        assert_eq!(response.body(), "", "the inner service must not run");
    }
}

#[tokio::test]
async fn public_paths_need_no_token() {
    let keys = keys();
    let response = call(&keys, HEALTH, None).await;
    assert_eq!(grpc_status(&response), None);
    assert_eq!(response.status(), http::StatusCode::OK);
}

#[test]
fn handlers_find_the_principal_in_tonic_requests() {
    let keys = keys();
    let expected = keys.verifier.verify(&token(&keys)).unwrap();
    let mut http_request = http::Request::new(());
    http_request.extensions_mut().insert(expected.clone());
    let request = tonic::Request::from_http(http_request);
    assert_eq!(principal(&request).unwrap(), expected);
    let status = principal(&tonic::Request::new(())).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
}

/// Serves gRPC health behind the layer on a real socket; health is not public here.
async fn health_server(keys: &Keys) -> (HealthClient<Channel>, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .layer(AuthLayer::new(keys.verifier.clone()))
        .add_service(health)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            stopped.await.ok();
        });
    tokio::spawn(server);
    // The listener is bound already, so connecting cannot race the server's start.
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (HealthClient::new(channel), stop)
}

#[tokio::test]
async fn tonic_servers_behind_the_layer_require_a_token() {
    let keys = keys();
    let (mut client, stop) = health_server(&keys).await;
    let status = client
        .check(HealthCheckRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "missing bearer token");

    let mut request = tonic::Request::new(HealthCheckRequest::default());
    let value = format!("Bearer {}", token(&keys)).parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    let response = client.check(request).await.unwrap();
    assert_eq!(response.into_inner().status, ServingStatus::Serving as i32);
    stop.send(()).unwrap();
}
