//! The risk bundle cannot be used to open the gate: without it money movements fail closed,
//! an older revision is never re-activated, and its signing key cannot sign rules.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use blindledger_gate::{
    BundleSource, GateError, MemorySink, PolicyGate, PolicySettings, Principal, Resource,
};
use blindledger_policy::{sign_bundle, Bundle, SigningKey};
use blindledger_store::Db;
use blindledger_test_support::TestDatabase;
use tempfile::TempDir;
use tonic::Code;

use crate::support::{bundle_of, policy_bundle, write};

const DEPOSIT: &str = "/svc/Deposit";
const BALANCE: &str = "/svc/GetBalance";

/// A service configured like the ledger: rules signed by CI's key, risk data by the
/// controller's, deposits requiring the risk bundle.
struct Service {
    dir: TempDir,
    ci: SigningKey,
    controller: SigningKey,
    gate: PolicyGate,
    sink: Arc<MemorySink>,
    loader: Arc<blindledger_gate::BundleLoader>,
}

fn signed(mut bundle: Bundle, key: &SigningKey, kid: &str) -> Vec<u8> {
    sign_bundle(&mut bundle, key, kid, None).unwrap();
    bundle.to_tar_gz().unwrap()
}

fn risk(revision: &str) -> Bundle {
    bundle_of(
        "risk",
        revision,
        &["risk"],
        &[("risk/data.json", r#"{"frozen": {}}"#)],
    )
}

fn key_file(dir: &Path, name: &str, key: &SigningKey) -> BTreeMap<String, std::path::PathBuf> {
    let path = write(
        dir,
        &format!("{name}.pub"),
        key.public_key_pem().unwrap().as_bytes(),
    );
    BTreeMap::from([(name.to_owned(), path)])
}

impl Service {
    fn new() -> Self {
        Self::with_floor(TempDir::new().unwrap(), None)
    }

    /// A service reading its bundles from `dir`, keeping the risk revision floor in `db`.
    fn with_floor(dir: TempDir, floor: Option<Db>) -> Self {
        let (ci, controller) = (SigningKey::generate(), SigningKey::generate());
        let rule_keys = key_file(dir.path(), "ci", &ci);
        let risk_keys = key_file(dir.path(), "controller", &controller);
        let (policy, risk) = (
            BundleSource::File(dir.path().join("policy.tar.gz")),
            BundleSource::File(dir.path().join("risk.tar.gz")),
        );
        let sink = Arc::new(MemorySink::new());
        let (gate, loader) = PolicySettings {
            region: "eu",
            policy_bundle: Some(&policy),
            risk_bundle: Some(&risk),
            bundle_keys: &rule_keys,
            risk_bundle_keys: &risk_keys,
            risk_required_for: &[DEPOSIT],
            require_signed_bundles: true,
            bundle_scope: None,
            long_poll: std::time::Duration::ZERO,
            bundle_token_file: None,
            bundle_tls: None,
            revision_floor: floor.as_ref().map(|db| (db, "ledger")),
            decision_log: None,
            instance_id: None,
        }
        .build(sink.clone())
        .unwrap();
        Service {
            dir,
            ci,
            controller,
            gate,
            sink,
            loader,
        }
    }

    fn publish(&self, file: &str, bytes: &[u8]) {
        write(self.dir.path(), file, bytes);
    }

    async fn ask(&self, method: &str) -> Result<(), tonic::Status> {
        let admin = Principal {
            subject: "root".into(),
            roles: vec!["admin".into()],
            ..Principal::default()
        };
        self.gate
            .authorize(&admin, method, Resource::default())
            .await
            .map(drop)
            .map_err(tonic::Status::from)
    }

    fn revisions(&self) -> BTreeMap<String, String> {
        self.gate.revisions().unwrap_or_default()
    }
}

#[tokio::test]
async fn money_movements_fail_closed_until_the_risk_bundle_is_active() {
    let s = Service::new();
    s.publish("policy.tar.gz", &signed(policy_bundle("r1"), &s.ci, "ci"));
    // The controller has not published (a 404, or no file): the rules are active...
    s.loader.reload().await.unwrap();
    assert_eq!(
        s.revisions().get("blindledger").map(String::as_str),
        Some("r1")
    );
    s.ask(BALANCE)
        .await
        .expect("reads are decided by the rules");

    // ...but a deposit is not decided as if nobody were frozen, and the refusal is logged.
    let logged = s.sink.len();
    let refused = s.ask(DEPOSIT).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("risk bundle is not active"),
        "{refused:?}"
    );
    assert!(refused.metadata().get("x-decision-id").is_some());
    assert_eq!(s.sink.len(), logged + 1);
    let event = s.sink.events().pop().unwrap();
    let error = event.error.as_ref().expect("OPA's top-level error");
    assert_eq!(error["code"], "request_refused");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("risk bundle is not active"));

    s.publish(
        "risk.tar.gz",
        &signed(risk("1-a"), &s.controller, "controller"),
    );
    s.loader.reload().await.unwrap();
    s.ask(DEPOSIT)
        .await
        .expect("decided once the risk data is there");
}

#[tokio::test]
async fn an_older_signed_risk_revision_is_not_reactivated() {
    let s = Service::new();
    s.publish("policy.tar.gz", &signed(policy_bundle("r1"), &s.ci, "ci"));
    s.publish(
        "risk.tar.gz",
        &signed(risk("5-new"), &s.controller, "controller"),
    );
    s.loader.reload().await.unwrap();
    assert_eq!(s.revisions()["risk"], "5-new");

    // A replay of an earlier revision, validly signed by the controller, and the same
    // counter with other data: both refused, revision 5 stays.
    for stale in ["4-old", "5-other", "no-counter"] {
        s.publish(
            "risk.tar.gz",
            &signed(risk(stale), &s.controller, "controller"),
        );
        let error = s.loader.reload().await.unwrap_err();
        assert!(matches!(error, GateError::StaleRevision { .. }), "{error}");
        assert_eq!(s.revisions()["risk"], "5-new");
        let status = s
            .loader
            .status()
            .into_iter()
            .find(|b| b.name == "risk")
            .unwrap();
        assert!(status.last_error.unwrap().contains("does not follow"));
    }

    s.publish(
        "risk.tar.gz",
        &signed(risk("6-next"), &s.controller, "controller"),
    );
    s.loader.reload().await.unwrap();
    assert_eq!(s.revisions()["risk"], "6-next");
}

#[tokio::test]
async fn a_restarted_service_does_not_go_back_to_an_older_risk_revision() {
    let database = TestDatabase::sqlite().unwrap();
    let db = Db::connect(database.url(), 2).await.unwrap();
    db.migrate().await.unwrap();
    let s = Service::with_floor(TempDir::new().unwrap(), Some(db.clone()));
    s.publish("policy.tar.gz", &signed(policy_bundle("r1"), &s.ci, "ci"));
    let risk_at = |s: &Service, revision: &str| {
        s.publish(
            "risk.tar.gz",
            &signed(risk(revision), &s.controller, "controller"),
        );
    };
    risk_at(&s, "5-new");
    s.loader.reload().await.unwrap();
    assert_eq!(db.revision_floor("ledger", "risk").await.unwrap(), Some(5));

    // Restarted: an older, validly signed revision is refused even with none active; the
    // one it enforced before, or a later one, is activated.
    let Service { dir, .. } = s;
    let s = Service::with_floor(dir, Some(db.clone()));
    s.publish("policy.tar.gz", &signed(policy_bundle("r1"), &s.ci, "ci"));
    risk_at(&s, "4-old");
    let error = s.loader.reload().await.unwrap_err();
    assert!(matches!(error, GateError::StaleRevision { .. }), "{error}");
    assert!(s.gate.revisions().is_none_or(|r| !r.contains_key("risk")));
    assert_eq!(s.ask(DEPOSIT).await.unwrap_err().code(), Code::Unavailable);
    risk_at(&s, "5-new");
    s.loader.reload().await.unwrap();
    assert_eq!(s.revisions()["risk"], "5-new");
    risk_at(&s, "7-later");
    s.loader.reload().await.unwrap();
    assert_eq!(db.revision_floor("ledger", "risk").await.unwrap(), Some(7));
    // Another service's floor is its own.
    assert_eq!(db.revision_floor("audit", "risk").await.unwrap(), None);

    // A floor that cannot be raised (storage failing) keeps the revision from activating.
    db.close().await;
    risk_at(&s, "8-next");
    let error = s.loader.reload().await.unwrap_err();
    assert!(matches!(error, GateError::RevisionFloor { .. }), "{error}");
    assert_eq!(s.revisions()["risk"], "7-later");
}

#[tokio::test]
async fn the_controller_key_cannot_sign_rules_nor_the_rules_key_risk_data() {
    let s = Service::new();
    // Rules signed with the controller's online key (whose id the rules' verifier does
    // not even know) are refused; nothing is active.
    s.publish(
        "policy.tar.gz",
        &signed(policy_bundle("evil"), &s.controller, "controller"),
    );
    assert!(s.loader.reload().await.is_err());
    assert_eq!(s.gate.revisions(), None);
    // Nor under the rules key's id.
    s.publish(
        "policy.tar.gz",
        &signed(policy_bundle("evil"), &s.controller, "ci"),
    );
    assert!(s.loader.reload().await.is_err());
    assert_eq!(s.gate.revisions(), None);

    s.publish("policy.tar.gz", &signed(policy_bundle("r1"), &s.ci, "ci"));
    s.publish("risk.tar.gz", &signed(risk("1-ci"), &s.ci, "ci"));
    assert!(s.loader.reload().await.is_err(), "risk data signed by CI");
    assert_eq!(
        s.revisions(),
        BTreeMap::from([("blindledger".into(), "r1".into())])
    );
}

#[test]
fn one_key_cannot_be_configured_for_both() {
    let dir = TempDir::new().unwrap();
    let key = SigningKey::generate();
    let rules = key_file(dir.path(), "ci", &key);
    let risk = key_file(dir.path(), "controller", &key);
    let source = BundleSource::File(dir.path().join("x.tar.gz"));
    let error = PolicySettings {
        region: "eu",
        policy_bundle: Some(&source),
        risk_bundle: Some(&source),
        bundle_keys: &rules,
        risk_bundle_keys: &risk,
        risk_required_for: &[],
        require_signed_bundles: true,
        bundle_scope: None,
        long_poll: std::time::Duration::ZERO,
        bundle_token_file: None,
        bundle_tls: None,
        revision_floor: None,
        decision_log: None,
        instance_id: None,
    }
    .build(Arc::new(MemorySink::new()))
    .unwrap_err();
    assert!(matches!(error, GateError::SharedBundleKey(_)), "{error}");
}
