//! A client encrypts amounts only to the public key it holds or pinned, never to whatever
//! key the ledger returns; a key id names both of a tenant's keys.

use blindledger_client::{ClientError, KeyPin};
use blindledger_fhe::wire;
use blindledger_keyholder::decrypt_value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_substituted_public_key_is_refused_and_a_pinned_one_is_used() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let app = env.spawn().await;
    tenant_with_accounts(&app, &env.keys, "acme", &["alice"]).await;
    let held = KeyPin::PublicKey(wire::encode_public_key(&env.keys.public_key));

    // The fingerprint the key holder gives out pins acme's key (in any letter case), and
    // an amount encrypted to it reaches the key holder.
    let fingerprint = KeyPin::Fingerprint(env.keys.public_key_fingerprint().to_uppercase());
    let pinned = app
        .client
        .pinned_tenant("acme", &fingerprint)
        .await
        .unwrap();
    assert_eq!(pinned.info().key_id, env.keys.key_id());
    let job = app
        .client
        .deposit("acme", "alice", pinned.encrypt(7).unwrap(), &key())
        .await
        .unwrap();
    app.client.wait_finished(&job.id).await.unwrap();
    let (width, balance, _) = app.client.balance("acme", "alice").await.unwrap();
    assert_eq!(
        decrypt_value(&env.keys.client_key, width, &balance).unwrap(),
        7
    );

    // Someone who can write the ledger's tables (or answer in its place) hands out a key
    // whose client key it holds. Neither the key holder nor a payer that pinned acme's
    // fingerprint encrypts to it.
    let mallory = tfhe::ClientKey::generate(blindledger_fhe::tfhe_config());
    let substitute = wire::encode_public_key(&tfhe::CompactPublicKey::new(&mallory));
    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    let mut row = db.tenant("acme").await.unwrap();
    row.public_key = substitute.clone();
    db.upsert_tenant(&row).await.unwrap();
    db.close().await;

    let info = app.client.tenant("acme").await.unwrap();
    assert_eq!(
        info.public_key_fingerprint,
        wire::public_key_fingerprint(&substitute),
        "the ledger now returns the substitute"
    );
    for pin in [&held, &fingerprint] {
        let err = app
            .client
            .pinned_tenant("acme", pin)
            .await
            .expect_err("a substituted key is refused");
        assert!(matches!(err, ClientError::KeyMismatch { .. }), "{err}");
        assert!(err.to_string().contains("refusing to use it"), "{err}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_racing_registrations_for_a_new_tenant_one_is_refused() {
    let env = TestEnv::new(Backend::MySql).await;
    let app = env.spawn().await;
    // The same server key under two public keys: two key generations as far as the ledger
    // can tell (the key id names both).
    let other =
        tfhe::CompactPublicKey::new(&tfhe::ClientKey::generate(blindledger_fhe::tfhe_config()));
    let server_key = wire::encode_compressed_server_key(&env.keys.server_key);
    let publics = [
        wire::encode_public_key(&env.keys.public_key),
        wire::encode_public_key(&other),
    ];
    let register = |public_key: Vec<u8>| {
        let client = app.client.clone();
        let server_key = server_key.clone();
        async move {
            client
                .register_key_bytes("acme", "local", WIDTH, public_key, &server_key, |_, _| {})
                .await
        }
    };
    let (first, second) = tokio::join!(register(publics[0].clone()), register(publics[1].clone()));
    let outcomes = [&first, &second];
    let won: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one registration stands: {first:?} / {second:?}"
    );
    let lost = outcomes.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(
        lost.status().map(tonic::Status::code),
        Some(tonic::Code::AlreadyExists),
        "{lost}"
    );
    assert_eq!(&app.client.tenant("acme").await.unwrap().key_id, won[0]);
    app.stop().await;
}
