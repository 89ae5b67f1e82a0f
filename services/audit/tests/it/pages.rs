//! The dashboard's pages, rendered by the server.

use blindledger_audit::now_ms;
use blindledger_test_support::TestDatabase;

use serde_json::json;

use crate::helpers::{
    controller_activation, controller_push, controller_risk, controller_score,
    controller_tier_change, decision_event, impact_report, ledger_decision, ledger_job,
    spawn_app_with, TestApp,
};

/// The service with imports left to the test ([`import`]): the officer's own requests are
/// decisions too, and would otherwise join the trail while the test counts rows.
async fn spawn_app(url: &str) -> TestApp {
    spawn_app_with(url, |config| config.import_interval_ms = 0).await
}

/// The seqs of the decision rows on a page.
fn seqs(page: &str) -> Vec<i64> {
    page.split("<tr id=\"seq-")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_decision_log_filters_and_pages() {
    let db = TestDatabase::mysql().await.unwrap();
    let app = spawn_app(db.url()).await;
    let base = 1_700_000_000_000;
    let events: Vec<_> = (0..300)
        .map(|i| {
            let outcome = if i % 3 == 0 { "deny" } else { "allow" };
            decision_event(
                i,
                if i % 2 == 0 { "alice" } else { "bob" },
                outcome,
                base + i * 1000,
            )
        })
        .collect();
    app.log.append_batch(&events).await.unwrap();

    let (status, first) = app.get("/decisions").await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&first), (251..=300).rev().collect::<Vec<_>>());
    let next = first
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (_, second) = app.get(&next.replace("&amp;", "&")).await;
    assert_eq!(seqs(&second), (201..=250).rev().collect::<Vec<_>>());

    let (_, denied) = app.get("/decisions?result=deny&principal=alice").await;
    let expected: Vec<i64> = (0..300)
        .rev()
        .filter(|i| i % 6 == 0)
        .map(|i| i + 1)
        .take(50)
        .collect();
    assert_eq!(seqs(&denied), expected);
    let from = blindledger_audit::rfc3339_ms(base + 10_000)[..19].to_string();
    let to = blindledger_audit::rfc3339_ms(base + 20_000)[..19].to_string();
    let (_, window) = app
        .get(&format!(
            "/decisions?from={from}&to={to}&method=Transfer&revision=r1"
        ))
        .await;
    assert_eq!(seqs(&window), (11..=20).rev().collect::<Vec<_>>());
    let (_, none) = app.get("/decisions?revision=r2").await;
    assert!(none.contains("no-decisions"));
    let (status, _) = app.get("/decisions?from=yesterday").await;
    assert_eq!(status, 400);
    app.stop().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_transaction_shows_its_workflow_with_ciphertext_sizes_only() {
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let now = now_ms();
    ledger_decision(&app.log, 1, "alice", true, now - 500).await;
    ledger_job(&app.log, "job-1", "PENDING", now - 400, 2048).await;
    import(&app).await;
    assert!(app.get("/transactions").await.1.contains("job-1"));
    assert!(app
        .get("/transactions/job-1")
        .await
        .1
        .contains("2048 bytes"));
    sqlx::query("UPDATE jobs SET state = 'COMMITTED', payload = NULL, result_moved = ?, committed_at = ?, updated_at = ? WHERE id = 'job-1'")
        .bind(vec![1u8; 1500])
        .bind(now)
        .bind(now)
        .execute(app.log.pool())
        .await
        .unwrap();
    import(&app).await;
    let (_, page) = app.get("/transactions/job-1").await;
    for step in ["submitted", "allowed", "computed", "committed"] {
        assert!(
            page.contains(&format!("data-step=\"{step}\"")),
            "{step}: {page}"
        );
    }
    assert!(
        page.contains("2048 bytes of ciphertext") && page.contains("policy revision r1"),
        "{page}"
    );
    for path in [
        "/",
        "/decisions",
        "/transactions",
        "/transactions/job-1",
        "/attention",
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !body.contains("987654321"),
            "{path} shows no amount or limit"
        );
    }
    let (status, _) = app.get("/transactions/nope").await;
    assert_eq!(status, 404);
    let (_, overview) = app.get("/").await;
    assert!(
        overview.contains("id=\"jobs-per-minute\"") && overview.contains("Denials"),
        "{overview}"
    );
    app.stop().await;
}

/// The row of `entity` in the elevated table of the risk page, up to its end.
fn entity_row<'a>(page: &'a str, entity: &str) -> &'a str {
    let start = page
        .find(&format!("<tr data-entity=\"{entity}\">"))
        .unwrap_or_else(|| panic!("{entity} is listed: {page}"));
    let row = &page[start..];
    &row[..row.find("</tr>").unwrap()]
}

/// The entities of the elevated table, in page order.
fn entities(page: &str) -> Vec<String> {
    page.split("<tr data-entity=\"")
        .skip(1)
        .filter_map(|rest| Some(rest.split('"').next()?.to_owned()))
        .collect()
}

/// Pages need a signed-in officer: none is sent to the login form, a token without the
/// auditor or admin role is refused.
async fn assert_officers_only(app: &TestApp, path: &str) {
    let response = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 303, "{path}");
    assert_eq!(response.headers()["location"], "/login");
    let teller = app.token("tom", &["teller"]);
    let response = app
        .http
        .get(app.url(path))
        .bearer_auth(teller)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "{path}");
    let response = app.get_in_session(path, &app.auditor()).await;
    assert_eq!(response.status(), 200, "{path}");
}

async fn risk_page_charts_elevated_entities(db: TestDatabase) {
    let app = spawn_app(db.url()).await;
    assert_officers_only(&app, "/risk").await;
    let (status, empty) = app.get("/risk").await;
    assert_eq!(status, 200);
    assert!(empty.contains("no-elevated"), "{empty}");

    let now = now_ms();
    let mule = ("account", "acme/mule");
    controller_risk(&app.log, mule, "high", 0.74, now - 1_000).await;
    controller_risk(
        &app.log,
        ("principal", "mallory"),
        "medium",
        0.61,
        now - 5_000,
    )
    .await;
    controller_risk(&app.log, ("account", "acme/alice"), "low", 0.42, now - 500).await;
    for (i, score) in [0.55, 0.66, 0.74].into_iter().enumerate() {
        controller_score(&app.log, mule, score, now - 3_000 + i as i64 * 1_000).await;
    }
    controller_tier_change(&app.log, "acme/mule", "low", "high", now - 1_000).await;

    let (status, page) = app.get("/risk").await;
    assert_eq!(status, 200);
    assert_eq!(
        entities(&page),
        ["acme/mule", "mallory"],
        "newest escalation first"
    );
    let row = entity_row(&page, "acme/mule");
    assert!(row.contains("<svg") && row.contains("<polyline"), "{row}");
    assert!(row.contains("data-points=\"3\""), "{row}");
    assert!(
        row.contains("class=\"tier high\"") && row.contains("0.740"),
        "{row}"
    );
    assert!(row.contains("night_share (4.2)"), "{row}");
    assert!(
        entity_row(&page, "mallory").contains("no history yet"),
        "{page}"
    );
    let changes = page.split("id=\"tier-changes\"").nth(1).unwrap();
    assert!(
        changes.contains("acme/mule") && changes.contains("tier low"),
        "{changes}"
    );
    assert!(
        page.contains("href=\"/risk\" class=\"active\""),
        "in the nav"
    );

    // 55 more elevated principals: two pages, newest escalations first, none twice.
    for i in 0..55 {
        let name = format!("p-{i:02}");
        controller_risk(
            &app.log,
            ("principal", &name),
            "medium",
            0.6,
            now - 10_000 - i,
        )
        .await;
    }
    let (_, first) = app.get("/risk").await;
    let first_entities = entities(&first);
    assert_eq!(first_entities.len(), 50);
    assert_eq!(first_entities[..2], ["acme/mule", "mallory"]);
    let next = first
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (status, second) = app.get(&next.replace("&amp;", "&")).await;
    assert_eq!(status, 200);
    let expected: Vec<String> = (48..55).map(|i| format!("p-{i:02}")).collect();
    assert_eq!(entities(&second), expected);
    assert!(!second.contains("next-page"));
    let (status, _) = app.get("/risk?after=nonsense").await;
    assert_eq!(status, 400);
    app.stop().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_risk_page_charts_elevated_entities_on_sqlite() {
    risk_page_charts_elevated_entities(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn the_risk_page_charts_elevated_entities_on_mariadb() {
    risk_page_charts_elevated_entities(TestDatabase::mysql().await.unwrap()).await;
}

async fn bundles_page_shows_revisions_and_impact(db: TestDatabase) {
    let app = spawn_app(db.url()).await;
    assert_officers_only(&app, "/bundles").await;
    let now = now_ms();
    for i in 0..55 {
        controller_activation(
            &app.log,
            "risk",
            &format!("rk-{i:02}"),
            "activate",
            now - 60_000 + i,
        )
        .await;
    }
    controller_activation(&app.log, "blindledger", "r1", "activate", now - 3_000).await;
    controller_activation(&app.log, "blindledger", "r2", "activate", now - 2_000).await;
    controller_activation(&app.log, "blindledger", "r1", "rollback", now - 1_000).await;
    controller_push(
        &app.log,
        "r2",
        ("activated", ""),
        impact_report("r2"),
        now - 2_000,
    )
    .await;
    let refused = json!({"revision": "r3", "outcome": "refused", "reason": "tests_failed",
        "tests": {"passed": 11, "failed": ["authz.test_deny_frozen"], "coverage_percent": 90.0},
        "impact": null});
    controller_push(
        &app.log,
        "r3",
        ("refused", "tests_failed"),
        refused,
        now - 500,
    )
    .await;

    let (status, page) = app.get("/bundles").await;
    assert_eq!(status, 200);
    let active = page.split("id=\"active-bundles\"").nth(1).unwrap();
    let active = &active[..active.find("</table>").unwrap()];
    let blindledger = active.split("data-bundle=\"blindledger\"").nth(1).unwrap();
    assert!(
        blindledger.contains("r1") && blindledger.contains("rollback"),
        "{active}"
    );
    assert!(
        active.contains("rk-54") && !active.contains("rk-53"),
        "{active}"
    );

    let pushes = page.split("id=\"pushes\"").nth(1).unwrap();
    let pushes = &pushes[..pushes.find("</table>").unwrap()];
    assert!(
        pushes.find("r3").unwrap() < pushes.find("r2").unwrap(),
        "newest first"
    );
    for cell in [
        ("replayed", 200),
        ("changed", 7),
        ("allow_to_deny", 5),
        ("deny_to_allow", 1),
        ("obligations_changed", 1),
    ] {
        let html = format!("data-impact=\"{}\">{}</td>", cell.0, cell.1);
        assert!(pushes.contains(&html), "{html}: {pushes}");
    }
    assert!(pushes.contains(">Transfer: 6</li>") && pushes.contains(">Withdraw: 1</li>"));
    assert!(pushes.contains(">erin: 1</li>") && !pushes.contains(">frank: 1</li>"));
    assert!(pushes.contains("and 2 more"), "{pushes}");
    assert!(pushes.contains("12 passed, 0 failed") && pushes.contains("93.5% coverage"));
    assert!(pushes.contains("tests_failed") && pushes.contains("authz.test_deny_frozen"));
    assert!(pushes.contains("not analysed"), "{pushes}");
    assert!(!page.contains("987654321"), "no limit or amount is shown");

    let history = page.split("id=\"activations\"").nth(1).unwrap();
    assert_eq!(history.matches("<tr>").count(), 51, "a header and 50 rows");
    let older = page
        .split("id=\"older-activations\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let (status, second) = app.get(older).await;
    assert_eq!(status, 200);
    let history = second.split("id=\"activations\"").nth(1).unwrap();
    assert_eq!(
        history.matches("<tr>").count(),
        9,
        "a header and the 8 oldest"
    );
    assert!(history.contains("rk-00") && !history.contains("rk-08"));
    app.stop().await;
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_bundles_page_shows_revisions_and_push_impact_on_sqlite() {
    bundles_page_shows_revisions_and_impact(TestDatabase::sqlite().unwrap()).await;
}

#[tokio::test]
async fn the_bundles_page_shows_revisions_and_push_impact_on_mariadb() {
    bundles_page_shows_revisions_and_impact(TestDatabase::mysql().await.unwrap()).await;
}

/// Runs an import round now (the service's own importer may run too: they take turns).
pub async fn import(app: &crate::helpers::TestApp) {
    blindledger_audit::Importer::new(app.log.clone())
        .with_settle_ms(0)
        .run_once()
        .await
        .unwrap();
}
