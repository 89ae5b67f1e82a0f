//! gRPC reflection answers tools in both versions, without a token: v1, and v1alpha, which
//! Python's grpcio-reflection, grpcurl before 1.9, Postman and Evans speak.

use crate::helpers::*;

/// Lists the services over reflection `$version` and returns their names.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut client = ServerReflectionClient::new($channel);
        let mut answers = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .expect("reflection answers without a token")
            .into_inner();
        let answer = answers.message().await.unwrap().expect("an answer");
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("not a service list: {other:?}"),
        }
    }};
}

#[tokio::test(flavor = "multi_thread")]
async fn both_reflection_versions_list_the_ledger_without_a_token() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let v1 = list_services!(v1, channel.clone());
    let v1alpha = list_services!(v1alpha, channel);
    for services in [&v1, &v1alpha] {
        assert!(
            services.contains(&"blindledger.ledger.v1.LedgerService".to_string()),
            "{services:?}"
        );
    }
    app.stop().await;
}
