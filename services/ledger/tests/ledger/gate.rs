//! The policy gate in front of every RPC: authentication, roles, residency, decision logs,
//! and risk obligations enforced on ciphertexts.

use blindledger_gate::BundleSource;
use blindledger_policy::Bundle;
use blindledger_test_support::{eventually, BundleServer};
use prost::Message as _;
use tonic::Code;

use crate::helpers::*;

/// Every method of LedgerService, from the service's own descriptor.
fn ledger_methods() -> Vec<String> {
    let set = blindledger_proto::prost_types::FileDescriptorSet::decode(
        blindledger_proto::FILE_DESCRIPTOR_SET,
    )
    .expect("descriptor set decodes");
    let methods: Vec<String> = set
        .file
        .iter()
        .filter(|f| f.package() == "blindledger.ledger.v1")
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "LedgerService")
        .flat_map(|s| s.method.iter())
        .map(|m| format!("/blindledger.ledger.v1.LedgerService/{}", m.name()))
        .collect();
    assert!(methods.len() >= 11, "found {methods:?}");
    methods
}

/// Calls `path` with an empty message, as any caller could.
async fn call_empty(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> Code {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = path.parse().unwrap();
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rpc_is_gated() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let nobody = env.token("mallory", &["nobody"], &["acme"]);
    let expired = "eyJhbGciOiJFZERTQSIsImtpZCI6ImRldiJ9.e30.c2ln";
    for method in ledger_methods() {
        assert_eq!(
            call_empty(app.addr, &method, None).await,
            Code::Unauthenticated,
            "{method} without a token"
        );
        assert_eq!(
            call_empty(app.addr, &method, Some(expired)).await,
            Code::Unauthenticated,
            "{method} with a forged token"
        );
        let with_role = call_empty(app.addr, &method, Some(&nobody)).await;
        let expected = if method.ends_with("/GetPolicyStatus") {
            Code::PermissionDenied
        } else {
            // An empty message names no tenant, job or key upload: refused as invalid before
            // the policy is asked (and logged as a denied decision), so nothing is read or
            // done.
            Code::InvalidArgument
        };
        assert_eq!(with_role, expected, "{method} for a role with no rights");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_tenants_and_residency_are_enforced_and_logged() {
    let env = TestEnv::new(Backend::MySql).await;
    let mut config = env.config();
    config.region = "eu-west".into();
    let app = spawn_with(config, &env.admin_token()).await;
    // Residency: a tenant of another region cannot be registered here.
    let refused = app
        .client
        .register_keys("elsewhere", "us-east", WIDTH, &env.keys, |_, _| {})
        .await;
    let status = refused.unwrap_err().status().cloned().unwrap();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status.message().contains("data residency"),
        "{}",
        status.message()
    );
    assert!(status.metadata().get("x-decision-id").is_some());

    app.client
        .register_keys("acme", "eu-west", WIDTH, &env.keys, |_, _| {})
        .await
        .unwrap();
    app.client
        .open_account("acme", "alice", None)
        .await
        .unwrap();
    let teller = app
        .client
        .with_token(&env.token("tom", &["teller"], &["acme"]))
        .unwrap();
    let auditor = app
        .client
        .with_token(&env.token("ann", &["auditor"], &["acme"]))
        .unwrap();
    let other_tenant = app
        .client
        .with_token(&env.token("otto", &["teller"], &["globex"]))
        .unwrap();
    assert_eq!(
        code(
            teller
                .deposit("acme", "alice", encrypt(&env.keys, 5), &key())
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(auditor.balance("acme", "alice").await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(other_tenant.balance("acme", "alice").await),
        Code::PermissionDenied
    );
    teller.balance("acme", "alice").await.unwrap();
    auditor
        .list_transfers("acme", "alice", 10, None)
        .await
        .unwrap();

    // Every decision, allowed or not, is in the log before it took effect.
    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    let logged = db.recent_decisions(100).await.unwrap();
    assert_eq!(logged.len(), 8, "one row per decision");
    assert_eq!(logged.iter().filter(|d| d.allowed).count(), 4);
    assert!(logged
        .iter()
        .all(|d| d.revisions.contains("\"blindledger\":\"test\"")));
    let event: serde_json::Value = serde_json::from_slice(&logged[0].event).unwrap();
    assert_eq!(event["path"], "blindledger/authz/decision");
    assert_eq!(event["input"]["principal"], "ann");
    db.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn risk_obligations_are_enforced_on_ciphertexts() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut risk = Bundle::new("risk");
    risk.insert_file(
        ".manifest",
        br#"{"revision": "1-risk", "roots": ["risk"]}"#.to_vec(),
    )
    .unwrap();
    let data = serde_json::json!({
        "tiers": {"acme/alice": "high", "acme/bob": "blocked"},
        "limits": {"high": {"max_amount": 100, "window_limit": 150, "window_seconds": 3600}}
    });
    risk.insert_file("risk/data.json", data.to_string().into_bytes())
        .unwrap();
    // The risk bundle comes from a bundle server, as the controller serves it.
    let server = BundleServer::start().await.unwrap();
    server.publish("risk", env.credentials.signed(risk).unwrap());
    let mut config = env.config();
    config.risk_bundle = Some(server.url("risk").parse().unwrap());
    let app = spawn_with(config, &env.admin_token()).await;
    // bob is blocked: nothing can be done on his account, not even opening it.
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "carol"]).await;
    let deposit = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 1_000), &key())
        .await
        .unwrap();
    committed(&app, deposit).await;

    // Blocked: refused outright.
    let blocked = app
        .client
        .transfer("acme", "bob", "carol", encrypt(&env.keys, 1), &key())
        .await;
    assert_eq!(code(blocked), Code::PermissionDenied);

    // High tier: 150 is over max_amount and moves nothing; 90 moves; then 70 would pass
    // the 150 window limit and moves nothing. The ledger cannot tell which happened.
    let mut moved = Vec::new();
    for amount in [150, 90, 70] {
        let job = app
            .client
            .transfer("acme", "alice", "carol", encrypt(&env.keys, amount), &key())
            .await
            .unwrap();
        moved.push(movement(&app, &env.keys, job).await);
    }
    assert_eq!(moved, [(0, false), (90, true), (0, false)]);
    assert_eq!(balance(&app, &env.keys, "acme", "alice").await, 910);
    assert_eq!(balance(&app, &env.keys, "acme", "carol").await, 90);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_bundle_is_refused_and_the_last_good_one_stays() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let mut config = env.config();
    config.policy_poll_ms = 100;
    let Some(BundleSource::File(bundle_path)) = config.policy_bundle.clone() else {
        panic!("the test credentials configure a bundle file")
    };
    let app = spawn_with(config, &env.admin_token()).await;
    let status = app.client.policy_status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].name, "blindledger");
    assert_eq!(status[0].active_revision, "test");
    assert!(status[0].last_error.is_empty());

    // Tamper with the signed bundle: one changed policy file, same signature.
    let good = std::fs::read(&bundle_path).unwrap();
    let mut bundle = Bundle::from_tar_gz("blindledger", &good, &Default::default()).unwrap();
    let path = "blindledger/authz/authz.rego";
    let mut rego = bundle.file(path).unwrap().to_vec();
    rego.extend_from_slice(b"\nallow if true\n");
    bundle.insert_file(path, rego).unwrap();
    std::fs::write(&bundle_path, bundle.to_tar_gz().unwrap()).unwrap();

    let refused = eventually(
        "the loader sees the changed bundle",
        std::time::Duration::from_secs(30),
        || async {
            let status = app.client.policy_status().await.unwrap();
            (!status[0].last_error.is_empty()).then_some(status)
        },
    )
    .await;
    assert_eq!(
        refused[0].active_revision, "test",
        "the last good bundle stays"
    );
    assert!(
        refused[0].last_error.contains(path),
        "{}",
        refused[0].last_error
    );
    // Still enforced by the good revision: an auditor may not read balances.
    let auditor = app
        .client
        .with_token(&env.token("ann", &["auditor"], &["acme"]))
        .unwrap();
    assert_eq!(
        code(auditor.balance("acme", "alice").await),
        Code::PermissionDenied
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_that_cannot_be_read_is_not_decided_on_as_unknown() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let job = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 5), &key())
        .await
        .unwrap();
    committed(&app, job.clone()).await;

    // A writer to the database leaves the tenant's row undecodable: the ledger cannot know
    // the tenant's region or key id, so it cannot decide on them.
    let pool = sqlx::SqlitePool::connect(env.db.url()).await.unwrap();
    sqlx::query("UPDATE tenants SET width_bits = 'garbage' WHERE name = 'acme'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let refused = app.client.job(&job.id, false).await;
    assert!(
        matches!(code(refused), Code::Unavailable | Code::Internal),
        "answered on a tenant it could not read"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_tenant_learns_nothing_of_a_job_and_auditors_get_no_results() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let job = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 5), &key())
        .await
        .unwrap();
    let other_tenant = app
        .client
        .with_token(&env.token("otto", &["teller"], &["globex"]))
        .unwrap();
    let missing = uuid::Uuid::now_v7().to_string();
    // The job and a job that never existed are answered alike: no reasons, no decision id.
    for (id, include_results) in [(&job.id, false), (&job.id, true), (&missing, false)] {
        let err = other_tenant.job(id, include_results).await.unwrap_err();
        let status = err.status().unwrap();
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(status.message(), format!("job {id} not found"));
        assert!(status.metadata().get("x-decision-id").is_none());
        let watched = other_tenant.watch_job(id).await.map(drop).unwrap_err();
        assert_eq!(watched.status().map(|s| s.code()), Some(Code::NotFound));
    }

    // An auditor of the tenant sees the job's metadata, never its encrypted results.
    let auditor = app
        .client
        .with_token(&env.token("ann", &["auditor"], &["acme"]))
        .unwrap();
    app.client.wait_finished(&job.id).await.unwrap();
    auditor.job(&job.id, false).await.unwrap();
    assert_eq!(
        code(auditor.job(&job.id, true).await),
        Code::PermissionDenied
    );
    app.stop().await;
}
