//! Loading bundles from files: activation, rejection keeping the last good revision, and
//! hot swaps under load.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use blindledger_gate::{
    BundleConfig, BundleLoader, BundleSource, GateError, MemorySink, PolicyGate, Principal,
    Resource,
};
use blindledger_policy::{BundleLimits, DecisionEvent};
use tempfile::TempDir;

use crate::support::{bundle_keys, bundle_of, policy_bundle, signed_tar_gz, write, BundleKeys};

struct Setup {
    dir: TempDir,
    keys: BundleKeys,
    gate: PolicyGate,
    sink: Arc<MemorySink>,
    loader: Arc<BundleLoader>,
}

impl Setup {
    fn write_policy(&self, bytes: &[u8]) {
        write(self.dir.path(), "policy.tar.gz", bytes);
    }

    fn signed_policy(&self, revision: &str) -> Vec<u8> {
        signed_tar_gz(policy_bundle(revision), &self.keys.key)
    }

    fn revisions(&self) -> BTreeMap<String, String> {
        self.gate.revisions().unwrap_or_default()
    }

    fn status(&self, name: &str) -> blindledger_gate::BundleStatus {
        self.loader
            .status()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }
}

fn setup() -> Setup {
    let dir = TempDir::new().unwrap();
    let keys = bundle_keys();
    let sink = Arc::new(MemorySink::new());
    let gate = PolicyGate::new("eu", sink.clone());
    let bundles = vec![
        BundleConfig {
            name: "blindledger".into(),
            source: BundleSource::File(dir.path().join("policy.tar.gz")),
        },
        BundleConfig {
            name: "risk".into(),
            source: BundleSource::File(dir.path().join("risk.tar.gz")),
        },
    ];
    let loader = BundleLoader::new(
        gate.clone(),
        bundles,
        keys.verifier.clone(),
        BundleLimits::default(),
    )
    .unwrap();
    Setup {
        dir,
        keys,
        gate,
        sink,
        loader: Arc::new(loader),
    }
}

#[tokio::test]
async fn nothing_to_load_is_an_error() {
    let s = setup();
    assert!(matches!(s.loader.reload().await, Err(GateError::NoBundles)));
    assert_eq!(s.gate.revisions(), None);
}

#[tokio::test]
async fn a_good_bundle_is_installed_and_unchanged_files_are_skipped() {
    let s = setup();
    s.write_policy(&s.signed_policy("r1"));
    s.loader.reload().await.unwrap();
    assert_eq!(
        s.revisions(),
        BTreeMap::from([("blindledger".into(), "r1".into())])
    );
    let status = s.status("blindledger");
    assert_eq!(status.active_revision.as_deref(), Some("r1"));
    assert_eq!(status.last_error, None);
    let activated = status.last_successful_activation.unwrap();

    s.loader.reload().await.unwrap();
    assert_eq!(
        s.status("blindledger").last_successful_activation,
        Some(activated)
    );
    // The optional risk bundle has no file: not an error, just not active.
    assert_eq!(s.status("risk").active_revision, None);
    assert_eq!(s.status("risk").last_error, None);
}

#[tokio::test]
async fn the_risk_bundle_joins_when_it_appears() {
    let s = setup();
    s.write_policy(&s.signed_policy("r1"));
    s.loader.reload().await.unwrap();
    let risk = bundle_of(
        "risk",
        "k1",
        &["risk"],
        &[("risk/data.json", r#"{"tiers": {}}"#)],
    );
    write(
        s.dir.path(),
        "risk.tar.gz",
        &signed_tar_gz(risk, &s.keys.key),
    );
    s.loader.reload().await.unwrap();
    let expected = BTreeMap::from([
        ("blindledger".into(), "r1".into()),
        ("risk".into(), "k1".into()),
    ]);
    assert_eq!(s.revisions(), expected);
}

/// Writes `bytes` as the policy file and checks that reload fails with `expected` in the
/// bundle's status while r1 stays active.
async fn assert_rejected(s: &Setup, bytes: &[u8], expected: &str) {
    s.write_policy(bytes);
    let error = s.loader.reload().await.unwrap_err();
    assert!(error.to_string().contains(expected), "{error}");
    assert_eq!(s.revisions()["blindledger"], "r1");
    let status = s.status("blindledger");
    assert_eq!(status.active_revision.as_deref(), Some("r1"));
    let last_error = status.last_error.unwrap();
    assert!(last_error.contains(expected), "{last_error}");
}

#[tokio::test]
async fn bad_bundles_are_rejected_and_the_last_good_one_stays() {
    let s = setup();
    let good = s.signed_policy("r1");
    s.write_policy(&good);
    s.loader.reload().await.unwrap();

    let mut tampered = policy_bundle("r2");
    blindledger_policy::sign_bundle(&mut tampered, &s.keys.key, "ci", None).unwrap();
    tampered
        .insert_file("authz.rego", crate::support::policy("evil").into_bytes())
        .unwrap();
    assert_rejected(&s, &tampered.to_tar_gz().unwrap(), "digest mismatch").await;

    assert_rejected(&s, &policy_bundle("r3").to_tar_gz().unwrap(), "not signed").await;

    let other_key = bundle_keys();
    assert_rejected(
        &s,
        &signed_tar_gz(policy_bundle("r4"), &other_key.key),
        "does not verify",
    )
    .await;

    let broken = bundle_of(
        "blindledger",
        "r5",
        &["blindledger"],
        &[("authz.rego", "package blindledger.authz\n\ndecision := {")],
    );
    assert_rejected(&s, &signed_tar_gz(broken, &s.keys.key), "does not compile").await;

    assert_rejected(&s, b"not a gzip archive", "bundle blindledger").await;

    // Putting the good file back clears the error without re-activating anything.
    s.write_policy(&good);
    s.loader.reload().await.unwrap();
    assert_eq!(s.status("blindledger").last_error, None);
}

#[tokio::test]
async fn run_polls_until_shutdown() {
    let s = setup();
    s.write_policy(&s.signed_policy("r1"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(Arc::clone(&s.loader).run(
        std::time::Duration::from_millis(10),
        async {
            stopped.await.ok();
        },
    ));
    // The first tick reloads at once; wait for it through the status, not a sleep.
    while s.status("blindledger").active_revision.is_none() {
        tokio::task::yield_now().await;
    }
    s.write_policy(&s.signed_policy("r2"));
    while s.status("blindledger").active_revision.as_deref() != Some("r2") {
        tokio::task::yield_now().await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hot_reloads_never_mix_revisions() {
    let s = setup();
    let revisions = [s.signed_policy("r1"), s.signed_policy("r2")];
    s.write_policy(&revisions[0]);
    s.loader.reload().await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (gate, stop) = (s.gate.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let principal = Principal {
                    subject: "bob".into(),
                    roles: vec!["admin".into()],
                    tenants: vec![],
                    ..Principal::default()
                };
                let mut decided = 0_u32;
                while !stop.load(Ordering::Relaxed) {
                    gate.authorize(&principal, "/x.Y/Z", Resource::default())
                        .await
                        .unwrap();
                    decided += 1;
                    tokio::task::yield_now().await;
                }
                decided
            })
        })
        .collect();
    for round in 1..=20 {
        s.write_policy(&revisions[round % 2]);
        s.loader.reload().await.unwrap();
        // Wait until a decision has certainly used this revision: each of the 4 workers has
        // at most one decision in flight that may have read the engine before the swap.
        let logged = s.sink.len();
        while s.sink.len() <= logged + 4 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        assert!(worker.await.unwrap() > 0);
    }

    let events = s.sink.events();
    let mut seen = std::collections::BTreeSet::new();
    for event in &events {
        let logged = &event.bundles["blindledger"].revision;
        assert_eq!(logged, decided_on(event), "event {}", event.decision_id);
        seen.insert(logged.as_str());
    }
    assert_eq!(seen, ["r1", "r2"].into());
    assert_eq!(s.revisions()["blindledger"], "r1");
}

/// The revision the policy itself reported in the decision.
fn decided_on(event: &DecisionEvent) -> &str {
    event
        .result
        .as_ref()
        .and_then(|r| r["revision"].as_str())
        .unwrap_or_default()
}
