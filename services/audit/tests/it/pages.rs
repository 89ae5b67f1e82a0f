//! The dashboard's pages, rendered by the server.

use blindledger_audit::now_ms;

use crate::helpers::{decision_event, ledger_decision, ledger_job, spawn_app, TestDb};

/// The seqs of the decision rows on a page.
fn seqs(page: &str) -> Vec<i64> {
    page.split("<tr id=\"seq-")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_decision_log_filters_and_pages() {
    let db = TestDb::mysql().await;
    let app = spawn_app(&db.url).await;
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
    db.cleanup().await;
}

#[tokio::test]
async fn a_transaction_shows_its_workflow_with_ciphertext_sizes_only() {
    let db = TestDb::sqlite();
    let app = spawn_app(&db.url).await;
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

/// Runs an import round now (the service's own importer may run too: they take turns).
pub async fn import(app: &crate::helpers::TestApp) {
    blindledger_audit::Importer::new(app.log.clone())
        .with_settle_ms(0)
        .run_once()
        .await
        .unwrap();
}
