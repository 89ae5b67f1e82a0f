//! TLS with client certificates: the certificate's identity is the calling workload. It
//! reaches the policy as `input.peer` beside a token's principal, and a workload granted
//! roles in the configuration may call without a token. A connection without a
//! certificate from the configured CA gets no answer at all.

use std::collections::BTreeMap;

use blindledger_client::{LedgerClient, TlsSettings};
use blindledger_gate::PeerGrant;
use blindledger_ledger::Application;
use blindledger_test_support::Pki;
use tonic::Code;

use crate::helpers::*;

/// A workload granted the admin role by its certificate.
const BATCH: &str = "spiffe://blindledger.test/treasury-batch";
/// A workload with a certificate but no grant: it still needs a token.
const TELLER_APP: &str = "spiffe://blindledger.test/teller-app";

/// The client settings of workload `uri`, with a certificate from `pki`.
fn client(pki: &Pki, name: &str, uri: &str) -> TlsSettings {
    let (cert, key) = pki.client(name, uri);
    TlsSettings {
        ca: pki.ca_pem().into_bytes(),
        identity: Some((std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_identify_workloads() {
    let env = TestEnv::new(Backend::Sqlite).await;
    let pki = Pki::new("BlindLedger test CA");
    let (server_cert, server_key) = pki.server("server");
    let mut config = env.config();
    config.tls_cert = Some(server_cert);
    config.tls_key = Some(server_key);
    config.tls_client_ca = Some(pki.ca_path());
    let admin = PeerGrant {
        roles: vec!["admin".into()],
        tenants: Vec::new(),
    };
    config.peer_grants = BTreeMap::from([(BATCH.to_owned(), admin)]);
    let app = Application::build(config).await.unwrap();

    // The batch workload: its certificate alone authenticates it, with the granted role.
    let batch = spawn_app_over(app, Some(client(&pki, "batch", BATCH)), None).await;
    tenant_with_accounts(&batch, &env.keys, "acme", &["alice"]).await;
    let endpoint = format!("https://{}", batch.addr);

    // Another workload needs a token; with one, the policy sees both.
    let teller_app =
        LedgerClient::connect_with(&endpoint, Some(client(&pki, "teller", TELLER_APP)))
            .await
            .unwrap();
    assert_eq!(
        code(teller_app.balance("acme", "alice").await),
        Code::Unauthenticated
    );
    let teller = teller_app
        .with_token(&env.token("tom", &["teller"], &["acme"]))
        .unwrap();
    teller.balance("acme", "alice").await.unwrap();

    // No client certificate: the handshake fails, nothing is answered. Under TLS 1.3 the
    // client learns it only once the server's alert arrives, usually after the call went
    // out on the closed connection: still `UNAVAILABLE`, never `CANCELLED`.
    let bare = TlsSettings {
        ca: pki.ca_pem().into_bytes(),
        identity: None,
    };
    if let Ok(client) = LedgerClient::connect_with(&endpoint, Some(bare)).await {
        let refused = client
            .with_token(&env.admin_token())
            .unwrap()
            .balance("acme", "alice")
            .await;
        match refused {
            Err(blindledger_client::ClientError::Status(status)) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}")
            }
            other => assert!(other.is_err(), "answered without a client certificate"),
        }
    }

    let db = blindledger_store::Db::connect(env.db.url(), 1)
        .await
        .unwrap();
    let logged = db.recent_decisions(100).await.unwrap();
    let inputs: Vec<serde_json::Value> = logged
        .iter()
        .map(|d| serde_json::from_slice::<serde_json::Value>(&d.event).unwrap()["input"].clone())
        .collect();
    assert!(inputs
        .iter()
        .any(|i| i["principal"] == BATCH && i["peer"] == BATCH && i["roles"][0] == "admin"));
    assert!(inputs
        .iter()
        .any(|i| i["principal"] == "tom" && i["peer"] == TELLER_APP));
    db.close().await;
    batch.stop().await;
}
