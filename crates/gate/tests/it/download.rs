//! Polling bundles from an HTTP bundle server: ETags, 304s, a server that is down or has
//! no bundle yet, and archives over the size limit.

use std::sync::Arc;

use blindledger_gate::{
    BundleConfig, BundleLoader, BundleSource, GateError, MemorySink, PolicyGate,
};
use blindledger_policy::BundleLimits;
use blindledger_test_support::{BundleServer, BundleServerStats};

use crate::support::{bundle_keys, bundle_of, policy_bundle, signed_tar_gz, BundleKeys};

struct Setup {
    server: BundleServer,
    keys: BundleKeys,
    gate: PolicyGate,
    loader: BundleLoader,
}

impl Setup {
    async fn new(limits: BundleLimits) -> Self {
        let server = BundleServer::start().await.unwrap();
        let keys = bundle_keys();
        let gate = PolicyGate::new("eu", Arc::new(MemorySink::new()));
        let bundles = ["blindledger", "risk"]
            .into_iter()
            .map(|name| BundleConfig {
                name: name.into(),
                source: server.url(name).parse().unwrap(),
            })
            .collect();
        let loader =
            BundleLoader::new(gate.clone(), bundles, keys.verifier.clone(), limits).unwrap();
        Setup {
            server,
            keys,
            gate,
            loader,
        }
    }

    fn publish_policy(&self, revision: &str) {
        let archive = signed_tar_gz(policy_bundle(revision), &self.keys.key);
        self.server.publish("blindledger", archive);
    }

    fn active(&self, name: &str) -> Option<String> {
        self.gate.revisions().and_then(|r| r.get(name).cloned())
    }

    fn last_error(&self, name: &str) -> Option<String> {
        let status = self.loader.status();
        status.into_iter().find(|s| s.name == name)?.last_error
    }
}

#[test]
fn urls_and_paths_are_told_apart() {
    let url: BundleSource = "https://bundles.example/v1/blindledger".parse().unwrap();
    assert!(matches!(url, BundleSource::Http(_)));
    let path: BundleSource = "/etc/blindledger/policy.tar.gz".parse().unwrap();
    assert!(matches!(path, BundleSource::File(_)));
}

#[tokio::test]
async fn bundles_are_polled_with_etags() {
    let s = Setup::new(BundleLimits::default()).await;
    s.publish_policy("r1");
    s.loader.reload().await.unwrap();
    assert_eq!(s.active("blindledger").as_deref(), Some("r1"));
    // The risk bundle is not on the server yet (404): left out, no error.
    assert_eq!(s.active("risk"), None);
    assert_eq!(s.last_error("risk"), None);

    // Nothing changed: the server answers 304 and the archive is not downloaded again.
    s.loader.reload().await.unwrap();
    let stats = s.server.stats();
    assert_eq!((stats.downloads, stats.not_modified), (1, 1), "{stats:?}");

    s.publish_policy("r2");
    let risk = bundle_of("risk", "k1", &["risk"], &[("risk/data.json", "{}")]);
    s.server.publish("risk", signed_tar_gz(risk, &s.keys.key));
    s.loader.reload().await.unwrap();
    assert_eq!(s.active("blindledger").as_deref(), Some("r2"));
    assert_eq!(s.active("risk").as_deref(), Some("k1"));
}

#[tokio::test]
async fn a_server_that_is_down_leaves_the_last_good_revision() {
    let s = Setup::new(BundleLimits::default()).await;
    s.publish_policy("r1");
    s.loader.reload().await.unwrap();

    s.server.set_failing(true);
    let error = s.loader.reload().await.unwrap_err();
    assert!(matches!(error, GateError::Download { .. }), "{error}");
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(s.active("blindledger").as_deref(), Some("r1"));
    let last_error = s.last_error("blindledger").unwrap();
    assert!(
        last_error.contains(&s.server.url("blindledger")),
        "{last_error}"
    );

    // Back up with the same revision: a 304 clears the error.
    s.server.set_failing(false);
    s.loader.reload().await.unwrap();
    assert_eq!(s.last_error("blindledger"), None);
    assert_eq!(
        s.last_error("risk"),
        None,
        "still unpublished: nothing wrong"
    );
    assert_eq!(s.active("blindledger").as_deref(), Some("r1"));
}

#[tokio::test]
async fn an_unreachable_server_is_reported_before_any_bundle() {
    let url = {
        // Bind and drop a listener: nothing listens on that port any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://{}/bundles/blindledger",
            listener.local_addr().unwrap()
        )
    };
    let keys = bundle_keys();
    let gate = PolicyGate::new("eu", Arc::new(MemorySink::new()));
    let config = BundleConfig {
        name: "blindledger".into(),
        source: url.parse().unwrap(),
    };
    let loader = BundleLoader::new(
        gate.clone(),
        vec![config],
        keys.verifier,
        BundleLimits::default(),
    )
    .unwrap();
    let error = loader.reload().await.unwrap_err();
    assert!(error.to_string().contains(&url), "{error}");
    assert_eq!(gate.revisions(), None);
}

#[tokio::test]
async fn an_archive_over_the_limit_is_not_downloaded_whole() {
    let limits = BundleLimits {
        max_compressed_bytes: 64,
        ..BundleLimits::default()
    };
    let s = Setup::new(limits).await;
    s.publish_policy("r1");
    let error = s.loader.reload().await.unwrap_err();
    assert!(
        error.to_string().contains("larger than 64 bytes"),
        "{error}"
    );
    assert_eq!(
        s.server.stats(),
        BundleServerStats {
            requests: 2,
            not_modified: 0,
            downloads: 1
        }
    );
}
