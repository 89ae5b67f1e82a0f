//! Bad input gets a clear gRPC status and changes nothing.

use blindledger_fhe::wire::encrypt_amount;
use blindledger_fhe::LedgerWidth;
use blindledger_proto::ledger::v1 as pb;
use blindledger_test_support::{mysql_url_via, TcpProxy};
use tonic::Code;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_amounts_are_refused() {
    let env = TestEnv::new(Backend::MySql).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "bob"]).await;
    let valid = encrypt(&env.keys, 5);
    let wrong_width = encrypt_amount(&env.keys.public_key, LedgerWidth::U64, 5).unwrap();
    let other_params = {
        // A public key made with tfhe's non-dedicated parameters: same tfhe, wrong params.
        let ck = tfhe::ClientKey::generate(tfhe::ConfigBuilder::default().build());
        let pk = tfhe::CompactPublicKey::new(&ck);
        let list = tfhe::CompactCiphertextList::builder(&pk)
            .push(5u32)
            .build_packed();
        blindledger_fhe::wire::encode_amount(&list)
    };
    let cases: [(&str, Vec<u8>); 5] = [
        ("wrong width", wrong_width),
        ("other parameters", other_params),
        ("garbage", b"definitely not a ciphertext".to_vec()),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("over the amount size limit", vec![7u8; 100 * 1024]),
    ];
    for (case, bytes) in cases {
        let result = app
            .client
            .transfer("acme", "alice", "bob", bytes, &key())
            .await;
        assert_eq!(code(result), Code::InvalidArgument, "{case}");
    }
    let oversized = app
        .client
        .deposit("acme", "alice", vec![0u8; 9 * 1024 * 1024], &key())
        .await;
    assert!(
        matches!(code(oversized), Code::OutOfRange | Code::ResourceExhausted),
        "oversized message"
    );
    assert_nothing_queued(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_names_and_misuse_are_refused() {
    let env = TestEnv::new(Backend::MySql).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "bob"]).await;
    let amount = encrypt(&env.keys, 5);
    let c = &app.client;
    assert_eq!(
        code(c.deposit("nobody", "alice", amount.clone(), &key()).await),
        Code::NotFound
    );
    assert_eq!(
        code(c.deposit("acme", "zed", amount.clone(), &key()).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.transfer("acme", "alice", "zed", amount.clone(), &key())
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            c.transfer("acme", "alice", "alice", amount.clone(), &key())
                .await
        ),
        Code::InvalidArgument
    );
    assert_eq!(
        code(c.deposit("acme", "Bad Name", amount.clone(), &key()).await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(c.deposit("acme", "alice", amount.clone(), "").await),
        Code::InvalidArgument
    );
    assert_eq!(
        code(c.open_account("acme", "alice", None).await),
        Code::AlreadyExists
    );
    assert_eq!(
        code(c.job("0190a0a0-0000-7000-8000-000000000000", false).await),
        Code::NotFound
    );
    assert_nothing_queued(&app).await;

    // Idempotency: same key and payload → the original job; another payload → refused.
    let idem = key();
    let first = c
        .deposit("acme", "alice", amount.clone(), &idem)
        .await
        .unwrap();
    let again = c
        .deposit("acme", "alice", amount.clone(), &idem)
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    let other = encrypt(&env.keys, 6);
    assert_eq!(
        code(c.deposit("acme", "alice", other, &idem).await),
        Code::InvalidArgument
    );
    committed(&app, first).await;
    assert_eq!(
        balance(&app, &env.keys, "acme", "alice").await,
        5,
        "applied once"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_upload_with_the_wrong_digest_is_refused() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    let mut raw = app.client.raw();
    let key_bytes = blindledger_fhe::wire::encode_compressed_server_key(&env.keys.server_key);
    let header = pb::TenantKeysHeader {
        tenant: "acme".into(),
        region: "local".into(),
        width: pb::LedgerWidth::U32.into(),
        public_key: blindledger_fhe::wire::encode_public_key(&env.keys.public_key),
        server_key_size: key_bytes.len() as u64,
        server_key_sha256: vec![0u8; 32],
    };
    let messages = std::iter::once(pb::register_tenant_keys_request::Part::Header(header))
        .chain(
            key_bytes
                .chunks(2 << 20)
                .map(|c| pb::register_tenant_keys_request::Part::ServerKeyChunk(c.to_vec())),
        )
        .map(|part| pb::RegisterTenantKeysRequest { part: Some(part) })
        .collect::<Vec<_>>();
    let status = raw
        .register_tenant_keys(futures::stream::iter(messages))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("SHA-256"), "{}", status.message());
    assert_eq!(
        code(app.client.tenant("acme").await),
        Code::NotFound,
        "nothing registered"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_database_answers_unavailable_and_loses_no_job() {
    let env = TestEnv::new(Backend::MySql).await;
    let upstream = mysql_upstream(env.db.url());
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let mut config = env.config();
    config.database_url = mysql_url_via(&proxy, env.db.url()).into();
    let app = spawn_with(config, &env.admin_token()).await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;

    let accepted = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 42), &key())
        .await
        .unwrap();
    proxy.cut().await;
    let refused = app
        .client
        .deposit("acme", "alice", encrypt(&env.keys, 1), &key())
        .await;
    assert_eq!(code(refused), Code::Unavailable);
    assert_eq!(
        code(app.client.job(&accepted.id, false).await),
        Code::Unavailable
    );
    proxy.restore();
    committed(&app, accepted).await;
    assert_eq!(balance(&app, &env.keys, "acme", "alice").await, 42);
    app.stop().await;
}

fn mysql_upstream(url: &str) -> std::net::SocketAddr {
    let host_port = url
        .split('@')
        .next_back()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:3306")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&host_port)
        .unwrap()
        .next()
        .unwrap()
}

/// No job was queued for the test accounts.
async fn assert_nothing_queued(app: &TestApp) {
    for account in ["alice", "bob"] {
        let transfers = app
            .client
            .list_transfers("acme", account, 10, None)
            .await
            .unwrap();
        assert!(
            transfers.transfers.is_empty(),
            "a refused request queued a transfer"
        );
        let (_, _, version) = app.client.balance("acme", account).await.unwrap();
        assert_eq!(version, 0, "a refused request changed a balance");
    }
}

/// A name no ledger would accept, as long as a gRPC message allows.
fn huge_name() -> String {
    "x".repeat(100_000)
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_names_are_refused_bounded_and_do_not_stop_the_audit_trail() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice", "bob"]).await;
    let huge = huge_name();
    let stranger = app
        .client
        .with_token(&env.token("eve", &["teller"], &["globex"]))
        .unwrap();
    let amount = encrypt(&env.keys, 5);
    // The administrator and a caller the policy would deny, on every name of every shape.
    for client in [&app.client, &stranger] {
        let refusals = [
            client.open_account("acme", &huge, None).await.map(drop),
            client.open_account(&huge, "alice", None).await.map(drop),
            client.balance("acme", &huge).await.map(drop),
            client
                .transfer("acme", "alice", &huge, amount.clone(), &key())
                .await
                .map(drop),
            client
                .deposit("acme", "Bad\u{7}Name", amount.clone(), &key())
                .await
                .map(drop),
        ];
        for refused in refusals {
            let Err(blindledger_client::ClientError::Status(status)) = refused else {
                panic!("not refused: {refused:?}")
            };
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(
                status.message().len() <= 256,
                "the answer echoes the input: {} bytes",
                status.message().len()
            );
            assert!(!status.message().contains('\u{7}'), "{status:?}");
            assert!(
                status.metadata().get("x-decision-id").is_some(),
                "refusals are logged decisions"
            );
        }
    }
    assert_nothing_queued(&app).await;

    // Each refusal is a denied decision naming the request in a bounded, escaped form.
    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    let logged = db.recent_decisions(100).await.unwrap();
    let refused = logged.iter().filter(|d| !d.allowed).count();
    assert_eq!(refused, 10, "one denied decision per refusal");
    assert!(
        logged.iter().all(|d| d.event.len() < 8 * 1024),
        "a decision-log row holds the unbounded name"
    );
    db.close().await;

    // The audit trail imports all of them, and what follows them.
    app.client
        .open_account("acme", "carol", None)
        .await
        .unwrap();
    let log = blindledger_audit::AuditLog::connect(env.db.url(), 2, true)
        .await
        .unwrap();
    let importer = blindledger_audit::Importer::new(log.clone());
    importer.run_once().await.unwrap();
    let last = log.import_position("decision_log").await.unwrap();
    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    assert_eq!(
        last as usize,
        db.recent_decisions(1000).await.unwrap().len()
    );
    db.close().await;
    app.stop().await;
}
