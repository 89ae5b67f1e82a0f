//! The dashboard in a real headless Chromium, driven over WebDriver: sign in, load each
//! page, filter the decision log, watch a decision arrive live, and download the CSV with
//! the browser's session cookie. A PNG screenshot of each page is written under
//! `<target>/tmp/audit-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
//! chromium-driver`); the test fails, naming them, when they are missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use blindledger_audit::now_ms;
use blindledger_test_support::TestDatabase;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{
    controller_activation, controller_push, controller_risk, controller_score,
    controller_tier_change, decision_event, impact_report, ledger_decision, ledger_job, spawn_app,
    TestApp,
};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest wait for anything the browser shows.
const WAIT: Duration = Duration::from_secs(20);

/// Starts chromedriver on a free port; ready once it says so on stdout.
async fn chromedriver() -> (Child, u16) {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser test needs Chromium and its WebDriver: apt-get install -y chromium chromium-driver"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting chromedriver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("started successfully") {
                return true;
            }
        }
        false
    });
    assert!(started.await.unwrap_or(false), "chromedriver did not start");
    (child, port)
}

async fn browser(port: u16) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), json!({
        "binary": CHROMIUM,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"],
    }));
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Opens `path` and waits for `ready` (a CSS selector) on it.
async fn open(client: &Client, app: &TestApp, path: &str, ready: &str) {
    client.goto(&app.url(path)).await.unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(ready))
        .await
        .unwrap();
}

/// Seeds risk tiers with their score history, bundle activations and a policy push, as
/// the controller would.
async fn seed_controller(app: &TestApp) {
    let now = now_ms();
    let mule = ("account", "acme/mule");
    controller_risk(&app.log, mule, "high", 0.74, now - 120_000).await;
    controller_risk(
        &app.log,
        ("principal", "mallory"),
        "medium",
        0.62,
        now - 600_000,
    )
    .await;
    for minute in 0..30 {
        let wave = ((minute * 7) % 11) as f64 / 100.0;
        let score = 0.48 + wave + if minute >= 26 { 0.2 } else { 0.0 };
        controller_score(&app.log, mule, score, now - (30 - minute) * 60_000).await;
        let principal = ("principal", "mallory");
        controller_score(
            &app.log,
            principal,
            0.55 + wave / 2.0,
            now - (30 - minute) * 60_000,
        )
        .await;
    }
    controller_tier_change(&app.log, "acme/mule", "low", "high", now - 120_000).await;
    controller_activation(&app.log, "blindledger", "r1", "activate", now - 3_600_000).await;
    controller_activation(&app.log, "risk", "risk-17", "activate", now - 120_000).await;
    controller_activation(&app.log, "blindledger", "r2", "activate", now - 60_000).await;
    controller_push(
        &app.log,
        "r2",
        ("activated", ""),
        impact_report("r2"),
        now - 60_000,
    )
    .await;
}

/// Seeds decisions, a job and a frozen account, as the ledger and an officer would.
async fn seed(app: &TestApp) {
    let now = now_ms();
    let events: Vec<_> = (0..120)
        .map(|i| {
            decision_event(
                i,
                ["alice", "bob", "carol"][i as usize % 3],
                if i % 4 == 0 { "deny" } else { "allow" },
                now - 60_000 + i,
            )
        })
        .collect();
    app.log.append_batch(&events).await.unwrap();
    ledger_decision(&app.log, 1, "alice", true, now - 1_000).await;
    ledger_job(&app.log, "job-1", "PENDING", now - 900, 2048).await;
    let freeze = app.signed(blindledger_audit::admin::Command::Freeze, "acme/mallory");
    let admin = app.token("ada", &["admin"]);
    let response = app
        .http
        .post(app.url("/api/admin/command"))
        .bearer_auth(admin)
        .json(&freeze)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    crate::pages::import(app).await;
    seed_controller(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let (_driver, port) = chromedriver().await;
    let db = TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    seed(&app).await;
    let client = browser(port).await;

    // Sign in through the form.
    open(&client, &app, "/", "#token").await;
    shoot(&client, "login").await;
    client
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(&app.auditor())
        .await
        .unwrap();
    client
        .find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("jobs-per-minute"))
        .await
        .unwrap();
    shoot(&client, "overview").await;

    // Filter the decision log.
    open(&client, &app, "/decisions", "#decisions").await;
    shoot(&client, "decisions").await;
    client
        .find(Locator::Id("f-principal"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    client
        .find(Locator::Css("#f-result option[value='deny']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Id("apply-filters"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The re-rendered page carries the filter in its inputs' value attributes.
    let filtered = "#f-principal[value='alice']";
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(filtered))
        .await
        .unwrap();
    let results = client
        .find_all(Locator::Css("#decisions td.deny, #decisions td.allow"))
        .await
        .unwrap();
    assert!(!results.is_empty());
    for cell in &results {
        assert_eq!(cell.text().await.unwrap(), "deny");
    }
    let principals = client
        .find_all(Locator::Css("#decisions tr[id^='seq-'] td:nth-child(3)"))
        .await
        .unwrap();
    for cell in &principals {
        assert_eq!(cell.text().await.unwrap(), "alice");
    }
    shoot(&client, "decisions-filtered").await;

    // A decision made now appears live, through SSE, without a reload.
    open(&client, &app, "/decisions", "body[data-live='connected']").await;
    ledger_decision(&app.log, 2, "zoe", false, now_ms()).await;
    // The officer's own page and stream decisions arrive live too; zoe's is the one.
    let zoe = "//*[@id='decisions']//tr[contains(@class, 'new') and contains(., 'zoe')]";
    let live = client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath(zoe))
        .await
        .unwrap();
    assert!(live.text().await.unwrap().contains("deny"));
    shoot(&client, "decisions-live").await;

    for (path, ready, name) in [
        ("/transactions", "#transactions", "transactions"),
        ("/transactions/job-1", "#workflow", "workflow"),
        ("/risk", "#elevated svg.spark", "risk"),
        ("/bundles", "#pushes td[data-impact='changed']", "bundles"),
        ("/attention", "#attention", "attention"),
    ] {
        open(&client, &app, path, ready).await;
        shoot(&client, name).await;
    }
    let attention = client
        .find(Locator::Id("attention"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(attention.contains("acme/mallory"), "{attention}");
    open(&client, &app, "/risk", "#elevated svg.spark").await;
    let elevated = client
        .find(Locator::Id("elevated"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        elevated.contains("acme/mule") && elevated.contains("mallory"),
        "{elevated}"
    );

    // The CSV, fetched with the browser's own session cookie.
    let cookie = client.get_named_cookie("bl_audit_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    let csv = app.get_in_session("/export.csv", cookie.value()).await;
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(
        csv.starts_with(blindledger_audit::CSV_HEADER) && csv.contains("zoe"),
        "{csv}"
    );
    assert!(!csv.contains("987654321"));

    client.close().await.unwrap();
    app.stop().await;
}
