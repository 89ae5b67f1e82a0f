//! Policy pushes from CI: refused when unsigned, signed by an unknown key, failing their
//! tests or over the impact threshold, with the active revision unchanged; accepted
//! otherwise; rolled back on request, which services then see. Every instance starts with
//! the shipped policy served as `v0` (`initial_policy_bundle`), which decides who may push.

use blindledger_controller::ControllerConfig;
use blindledger_policy::{Bundle, SigningKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    config, json, policies_dir, signed, TestApp, TestKeys, CI_KID, INITIAL_REVISION,
};
use crate::risk_loop::Service;
use blindledger_test_support::metadata::{insert_decisions, ordinary, Rng};
use blindledger_test_support::{until, TestDatabase};

/// How long a test waits for something the services do in milliseconds.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const FREEZE: &str = "package blindledger.authz\n\n\
    deny contains \"principal frozen for review\" if input.principal == \"teller-18\"\n";
const FAILING_TEST: &str =
    "package blindledger.broken_test\n\ntest_always_fails if {\n\tfalse\n}\n";

/// The shipped policy at `revision`, with extra files.
fn policy(revision: &str, extra: &[(&str, &str)]) -> Bundle {
    let mut bundle = Bundle::from_dir("blindledger", &policies_dir(), revision).unwrap();
    for (path, source) in extra {
        bundle
            .insert_file(path, source.as_bytes().to_vec())
            .unwrap();
    }
    bundle
}

async fn push(app: &TestApp, token: &str, archive: Vec<u8>, query: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(&format!("/v1/policy/push{query}")))
        .bearer_auth(token)
        .body(archive)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, json(response).await)
}

fn active(app: &TestApp) -> String {
    let served = app.controller.bundle("blindledger").unwrap();
    served.revision().to_string()
}

/// How many of the last `n` logged decisions `principal` made.
async fn recent_by(app: &TestApp, principal: &str, n: i64) -> u64 {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT principal FROM decision_log ORDER BY seq DESC LIMIT ?")
            .bind(n)
            .fetch_all(app.controller.repo().pool())
            .await
            .unwrap();
    rows.iter().filter(|(p,)| p == principal).count() as u64
}

/// A controller with logged decisions and the shipped policy pushed as `v1`.
struct Pushed {
    app: TestApp,
    keys: TestKeys,
    ci: String,
    _db: TestDatabase,
}

impl Pushed {
    async fn v1() -> Pushed {
        let db = TestDatabase::sqlite().unwrap();
        let keys = TestKeys::new();
        let app = TestApp::spawn(config(&db, &keys, None)).await;
        let workload = ordinary(&mut Rng::new(3), 40);
        insert_decisions(app.controller.repo().pool(), &workload.decisions).await;
        let ci = keys.token("pipeline", &["ci"]);
        // The shipped policy again: replayed against the initial revision, nothing changes.
        let (status, body) = push(&app, &ci, keys.signed_policy("v1"), "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "activated");
        assert!(body["tests"]["passed"].as_u64().unwrap() > 10, "{body}");
        assert_eq!(body["impact"]["replayed"], 500);
        assert_eq!(body["impact"]["baseline_revision"], INITIAL_REVISION);
        assert_eq!(body["impact"]["changed"], 0, "{body}");
        assert_eq!(active(&app), "v1");
        Pushed {
            app,
            keys,
            ci,
            _db: db,
        }
    }

    /// The shipped policy plus a rule freezing one teller, at `revision`, signed by CI.
    fn freeze(&self, revision: &str) -> Vec<u8> {
        let files = [("blindledger/authz/freeze.rego", FREEZE)];
        signed(policy(revision, &files), &self.keys.ci, CI_KID)
    }

    async fn push(&self, archive: Vec<u8>, query: &str) -> (StatusCode, Value) {
        push(&self.app, &self.ci, archive, query).await
    }
}

#[tokio::test]
async fn pushes_need_a_token_with_a_policy_role() {
    let p = Pushed::v1().await;
    let anonymous = p
        .app
        .http
        .post(p.app.url("/v1/policy/push"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let auditor = p.keys.token("officer", &["auditor"]);
    let refused = p
        .app
        .http
        .post(p.app.url("/v1/policy/push"))
        .bearer_auth(&auditor)
        .body(p.keys.signed_policy("v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The policy decided, and its decision is logged under the id the answer gives.
    let decision_id = refused.headers()["x-decision-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = json(refused).await;
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("may not call /blindledger.controller.v1.Api/Push"),
        "{body}"
    );
    let (principal, allowed): (String, i64) =
        sqlx::query_as("SELECT principal, allowed FROM decision_log WHERE decision_id = ?")
            .bind(&decision_id)
            .fetch_one(p.app.controller.repo().pool())
            .await
            .unwrap();
    assert_eq!((principal.as_str(), allowed), ("officer", 0));
    assert_eq!(active(&p.app), "v1");
    p.app.stop().await;
}

#[tokio::test]
async fn without_a_served_policy_the_api_refuses_everything() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(ControllerConfig {
        initial_policy_bundle: None,
        ..config(&db, &keys, None)
    })
    .await;
    // Fail closed: not even an admin pushes the first policy past a gate with no policy;
    // a fresh installation serves one from `initial_policy_bundle`.
    let admin = keys.token("root", &["admin"]);
    let (status, body) = push(&app, &admin, keys.signed_policy("v1"), "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(app.controller.bundle("blindledger").is_none());
    let reader = keys.token("ledger-1", &["bundle_reader"]);
    let bundle = app
        .http
        .get(app.url("/bundles/blindledger"))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::SERVICE_UNAVAILABLE);
    app.stop().await;
}

#[tokio::test]
async fn bad_bundles_are_refused_and_the_active_revision_stays() {
    let p = Pushed::v1().await;
    let failing = [("blindledger/broken_test.rego", FAILING_TEST)];
    let refusals = [
        ("unsigned", policy("v2", &[]).to_tar_gz().unwrap()),
        (
            "unknown_key",
            signed(policy("v2", &[]), &SigningKey::generate(), "rogue"),
        ),
        (
            "signature",
            signed(policy("v2", &[]), &SigningKey::generate(), CI_KID),
        ),
        (
            "tests_failed",
            signed(policy("v2", &failing), &p.keys.ci, CI_KID),
        ),
    ];
    for (reason, archive) in refusals {
        let (status, body) = p.push(archive, "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reason}: {body}");
        assert_eq!(body["error"], reason, "{body}");
        assert_eq!(body["report"]["outcome"], "refused");
        assert_eq!(active(&p.app), "v1", "{reason}");
    }

    // A rule that freezes one teller: its decisions flip, and nobody else's.
    let frozen = recent_by(&p.app, "teller-18", 500).await;
    assert!(frozen > 0);
    let (status, body) = p.push(p.freeze("v2"), "?max_changed=0").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "impact_over_threshold");
    let impact = &body["report"]["impact"];
    assert_eq!(impact["baseline_revision"], "v1");
    assert_eq!(impact["changed"], frozen);
    assert_eq!(impact["allow_to_deny"], frozen);
    assert_eq!(
        impact["by_principal"],
        serde_json::json!({"teller-18": frozen})
    );
    assert_eq!(active(&p.app), "v1");
    let service = Service::polling(&p.app, &p.keys);
    service.loader.reload().await.unwrap();
    assert_eq!(service.active("blindledger").as_deref(), Some("v1"));
    p.app.stop().await;
}

#[tokio::test]
async fn a_pushers_threshold_only_tightens_the_operators() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(ControllerConfig {
        impact_max_changed: Some(0),
        ..config(&db, &keys, None)
    })
    .await;
    let workload = ordinary(&mut Rng::new(3), 40);
    insert_decisions(app.controller.repo().pool(), &workload.decisions).await;
    let ci = keys.token("pipeline", &["ci"]);
    // Freezing a teller changes that teller's replayed decisions: over the operator's
    // threshold of 0, whatever the pusher asks for.
    let frozen = signed(
        policy("v1", &[("blindledger/authz/freeze.rego", FREEZE)]),
        &keys.ci,
        CI_KID,
    );
    for query in ["", "?max_changed=1000000"] {
        let (status, body) = push(&app, &ci, frozen.clone(), query).await;
        assert_eq!(status, StatusCode::CONFLICT, "{query}: {body}");
        assert_eq!(body["error"], "impact_over_threshold");
        assert_eq!(body["report"]["max_changed"], 0, "{body}");
    }
    assert_eq!(active(&app), INITIAL_REVISION);
    app.stop().await;

    // Without an operator's threshold, the pusher's own applies.
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    let (status, body) = push(&app, &ci, frozen, "?max_changed=0").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["report"]["max_changed"], 0, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn good_bundles_activate_and_roll_back() {
    let p = Pushed::v1().await;
    let service = Service::polling(&p.app, &p.keys);
    let frozen = recent_by(&p.app, "teller-18", 500).await;
    let v3 = p.freeze("v3");
    let (status, body) = p.push(v3.clone(), &format!("?max_changed={frozen}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "activated");
    assert_eq!(body["active_revision"], "v3");
    service.loader.reload().await.unwrap();
    assert_eq!(service.active("blindledger").as_deref(), Some("v3"));

    // The same revision again (re-signed by a CI re-run): unchanged; other contents under
    // it: refused.
    let (status, body) = p.push(p.freeze("v3"), "").await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("unchanged"))
    );
    let (status, body) = p.push(p.keys.signed_policy("v3"), "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "revision_exists");

    // Rollback serves v1's archive again; the service verifies and activates it. Only an
    // administrator may order one: it skips the tests and impact analysis of a push.
    let refused = p
        .app
        .http
        .post(p.app.url("/v1/policy/rollback/v1"))
        .bearer_auth(&p.ci)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(active(&p.app), "v3");
    let admin = p.keys.token("operator", &["admin"]);
    let rollback = |revision: &str| {
        let url = p.app.url(&format!("/v1/policy/rollback/{revision}"));
        p.app.http.post(url).bearer_auth(&admin).send()
    };
    let body = json(rollback("v1").await.unwrap()).await;
    assert_eq!(
        (body["revision"].as_str(), body["previous"].as_str()),
        (Some("v1"), Some("v3"))
    );
    service.loader.reload().await.unwrap();
    assert_eq!(service.active("blindledger").as_deref(), Some("v1"));
    assert_eq!(
        rollback("v9").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let auditor = p.keys.token("officer", &["auditor"]);
    let history = p
        .app
        .http
        .get(p.app.url("/v1/policy/history"))
        .bearer_auth(&auditor);
    let history = json(history.send().await.unwrap()).await;
    assert_eq!(history["active"], "v1");
    let actions: Vec<(&str, &str)> = history["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["revision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("rollback", "v1"),
            ("activate", "v3"),
            ("activate", "v1"),
            ("activate", INITIAL_REVISION)
        ]
    );
    let outcomes: Vec<&str> = history["pushes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["refused", "unchanged", "activated", "activated"]);
    p.app.stop().await;
}

#[tokio::test]
async fn bundles_are_served_with_strong_etags() {
    let db = TestDatabase::sqlite().unwrap();
    let keys = TestKeys::new();
    let app = TestApp::spawn(config(&db, &keys, None)).await;
    let reader = keys.token("ledger-1", &["bundle_reader"]);
    let get = |path: &str, etag: Option<&str>| {
        let mut request = app.http.get(app.url(path)).bearer_auth(&reader);
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    // The initial policy is served from the start; no risk bundle before a cycle.
    assert_eq!(
        get("/bundles/blindledger", None).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/bundles/risk", None).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let ci = keys.token("pipeline", &["ci"]);
    let archive = keys.signed_policy("v1");
    let (status, body) = push(&app, &ci, archive.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let response = get("/bundles/blindledger", None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    assert_eq!(response.bytes().await.unwrap().as_ref(), archive.as_slice());
    let cached = get("/bundles/blindledger", Some(&etag)).await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let stale = get("/bundles/blindledger", Some("\"other\""))
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(
        get("/bundles/nope", None).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

#[tokio::test]
async fn bundles_are_served_only_to_bundle_readers() {
    let p = Pushed::v1().await;
    p.app.controller.sync_admin().await.unwrap();
    let get = |name: &str, token: Option<String>| {
        let mut request = p.app.http.get(p.app.url(&format!("/bundles/{name}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status() }
    };
    for name in ["blindledger", "risk"] {
        assert_eq!(get(name, None).await, StatusCode::UNAUTHORIZED, "{name}");
        for role in ["ci", "auditor", "teller"] {
            let token = p.keys.token("someone", &[role]);
            assert_eq!(
                get(name, Some(token)).await,
                StatusCode::FORBIDDEN,
                "{name} {role}"
            );
        }
        let reader = p.keys.token("ledger-1", &["bundle_reader"]);
        assert_eq!(get(name, Some(reader)).await, StatusCode::OK, "{name}");
    }
    // A long poll is answered by the time its token expires, whatever wait it asked for.
    let reader = p.keys.token_for(
        "ledger-1",
        &["bundle_reader"],
        std::time::Duration::from_secs(2),
    );
    let first = p
        .app
        .http
        .get(p.app.url("/bundles/risk"))
        .bearer_auth(&reader);
    let etag = first.send().await.unwrap().headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    let held = p
        .app
        .http
        .get(p.app.url("/bundles/risk"))
        .bearer_auth(&reader)
        .header("if-none-match", &etag)
        .header("prefer", "wait=60")
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    p.app.stop().await;
}

#[tokio::test]
async fn bundle_polls_are_held_until_a_new_revision() {
    let p = Pushed::v1().await;
    let url = p.app.url("/bundles/blindledger");
    let reader = p.keys.token("ledger-1", &["bundle_reader"]);
    let first = p.app.http.get(&url).bearer_auth(&reader);
    let first = first.send().await.unwrap();
    assert_eq!(
        first.headers()["content-type"],
        "application/vnd.openpolicyagent.bundles",
        "the server says it holds long polls"
    );
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let poll = |wait: u64| {
        p.app
            .http
            .get(&url)
            .bearer_auth(&reader)
            .header("if-none-match", &etag)
            .header("prefer", format!("wait={wait}"))
            .send()
    };
    // Nothing new: held for the wait, then 304.
    let started = std::time::Instant::now();
    assert_eq!(poll(1).await.unwrap().status(), StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));

    // A push answers a held poll at once, with the new revision.
    let held = poll(60);
    let push = async {
        // Pushed only once the server holds the poll.
        let controller = &p.app.controller;
        until("the server holds the poll", WAIT, || async {
            controller.long_polls_held() == 1
        })
        .await;
        let started = std::time::Instant::now();
        let (status, body) = p.push(p.freeze("v2"), "").await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("activated"))
        );
        started
    };
    let (answer, pushed_at) = tokio::join!(held, push);
    let answer = answer.unwrap();
    assert!(pushed_at.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(answer.status(), StatusCode::OK);
    assert_ne!(answer.headers()["etag"].to_str().unwrap(), etag);
    p.app.stop().await;
}

#[tokio::test]
async fn long_polling_loaders_activate_a_push_before_their_interval() {
    let p = Pushed::v1().await;
    let service = Service::polling(&p.app, &p.keys);
    let gate = service.gate.clone();
    let loader = std::sync::Arc::new(
        service
            .loader
            .with_long_polling(std::time::Duration::from_secs(30)),
    );
    let revision = || gate.revisions().and_then(|r| r.get("blindledger").cloned());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // An hour between polls: only a long poll can bring the push in time.
    let task = tokio::spawn(loader.run(std::time::Duration::from_secs(3600), async {
        let _ = stopped.await;
    }));
    until("v1 is active at the loader", WAIT, || async {
        revision().as_deref() == Some("v1")
    })
    .await;
    // The loader's next requests, long polls for what follows each active bundle (the
    // rules and, once the controller published it, the risk bundle), are held at the
    // server. A poll that arrives after the push is answered at once with the new revision.
    let controller = &p.app.controller;
    until("the loader's long polls are held", WAIT, || async {
        controller.long_polls_held() >= 1
    })
    .await;
    let sent = std::time::Instant::now();
    let (status, body) = p.push(p.freeze("v2"), "").await;
    let answered = sent.elapsed();
    assert_eq!(
        (status, body["outcome"].as_str()),
        (StatusCode::OK, Some("activated"))
    );
    until("the long poll brings v2 to the loader", WAIT, || async {
        revision().as_deref() == Some("v2")
    })
    .await;
    println!(
        "push answered after {answered:?}; v2 active at the loader {:?} after sending",
        sent.elapsed()
    );
    let _ = stop.send(());
    task.await.unwrap();
    p.app.stop().await;
}
