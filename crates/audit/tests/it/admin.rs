//! Signed admin commands: accepted ones take effect, every refusal is logged.

use std::collections::BTreeMap;

use blindledger_audit::admin::{
    generate_officer_keypair, sign_command, AdminCommands, AdminError, Command, CommandPayload,
    CommandRejection, OfficerKeys, DEFAULT_WINDOW_MS,
};
use blindledger_audit::{AuditLog, VerifyOptions};
use blindledger_test_support::TestDatabase;
use serde_json::json;
use sqlx::Row;

use crate::helpers::{database, open_log, signer, On};

struct Officer {
    private: String,
    kid: &'static str,
}

fn setup(log: &AuditLog) -> (AdminCommands, Officer, Officer) {
    let (private, public) = generate_officer_keypair().unwrap();
    let (other_private, _) = generate_officer_keypair().unwrap();
    let keys =
        OfficerKeys::from_pems(&BTreeMap::from([("officer-1".to_string(), public)])).unwrap();
    let commands = AdminCommands::new(log.clone(), keys, DEFAULT_WINDOW_MS);
    let officer = Officer {
        private,
        kid: "officer-1",
    };
    // Claims officer-1's key id but holds another key.
    let impostor = Officer {
        private: other_private,
        kid: "officer-1",
    };
    (commands, officer, impostor)
}

fn payload(command: Command, target: &str, officer: &Officer) -> CommandPayload {
    CommandPayload::new(command, target, "case 42", officer.kid)
}

fn rejection(result: Result<impl std::fmt::Debug, AdminError>) -> CommandRejection {
    match result {
        Err(AdminError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

async fn outcomes(log: &AuditLog) -> Vec<String> {
    let rows =
        sqlx::query("SELECT outcome FROM audit_events WHERE kind = 'admin_command' ORDER BY seq")
            .fetch_all(log.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).unwrap())
        .collect()
}

async fn commands_are_checked_applied_and_logged(on: On) {
    let db = database(on).await;
    let log = open_log(&db).await;
    let (commands, officer, impostor) = setup(&log);

    let freeze = sign_command(
        &payload(Command::Freeze, "acme/alice", &officer),
        &officer.private,
    )
    .unwrap();
    let accepted = commands.submit(&freeze).await.unwrap();
    assert_eq!(accepted.payload.target, "acme/alice");
    let data = log.policy_data().await.unwrap().to_json();
    assert_eq!(data["frozen"]["acme/alice"]["reason"], json!("case 42"));
    assert_eq!(data["frozen"]["acme/alice"]["officer"], json!("officer-1"));

    // Replayed nonce.
    assert_eq!(
        rejection(commands.submit(&freeze).await),
        CommandRejection::Replayed
    );
    // Wrong key under the officer's key id.
    let forged = sign_command(
        &payload(Command::Unfreeze, "acme/alice", &impostor),
        &impostor.private,
    )
    .unwrap();
    assert_eq!(
        rejection(commands.submit(&forged).await),
        CommandRejection::BadSignature
    );
    // Altered payload: the signature was over another target.
    let mut altered = sign_command(
        &payload(Command::Unfreeze, "acme/bob", &officer),
        &officer.private,
    )
    .unwrap();
    altered.payload = altered.payload.replace("acme/bob", "acme/alice");
    assert_eq!(
        rejection(commands.submit(&altered).await),
        CommandRejection::BadSignature
    );
    // Outside the window, in the past and in the future.
    for skew in [-DEFAULT_WINDOW_MS - 60_000, DEFAULT_WINDOW_MS + 60_000] {
        let mut stale = payload(Command::Unfreeze, "acme/alice", &officer);
        stale.issued_at += skew;
        let signed = sign_command(&stale, &officer.private).unwrap();
        assert!(matches!(
            rejection(commands.submit(&signed).await),
            CommandRejection::Stale { .. }
        ));
    }
    // At the ends of the range: never inside the window (i64::MIN once passed as fresh).
    for issued_at in [i64::MIN, i64::MAX] {
        let mut extreme = payload(Command::Unfreeze, "acme/alice", &officer);
        extreme.issued_at = issued_at;
        let signed = sign_command(&extreme, &officer.private).unwrap();
        assert!(matches!(
            rejection(commands.submit(&signed).await),
            CommandRejection::Stale { .. }
        ));
    }
    // Unknown officer, malformed envelope, bad target.
    let mut unknown = payload(Command::Unfreeze, "acme/alice", &officer);
    unknown.kid = "officer-9".into();
    let signed = sign_command(&unknown, &officer.private).unwrap();
    assert!(matches!(
        rejection(commands.submit(&signed).await),
        CommandRejection::UnknownOfficer { .. }
    ));
    let mut garbage = freeze.clone();
    garbage.payload = "{not json".into();
    assert!(matches!(
        rejection(commands.submit(&garbage).await),
        CommandRejection::Malformed { .. }
    ));
    let bad_target = sign_command(
        &payload(Command::Freeze, "alice", &officer),
        &officer.private,
    )
    .unwrap();
    assert!(matches!(
        rejection(commands.submit(&bad_target).await),
        CommandRejection::InvalidTarget { .. }
    ));

    // Still frozen: no rejected command had an effect.
    assert_eq!(log.frozen_accounts().await.unwrap().len(), 1);
    let mut expected = vec!["accepted".to_string()];
    expected.extend(std::iter::repeat_n("rejected".to_string(), 10));
    assert_eq!(outcomes(&log).await, expected);

    let unfreeze = sign_command(
        &payload(Command::Unfreeze, "acme/alice", &officer),
        &officer.private,
    )
    .unwrap();
    commands.submit(&unfreeze).await.unwrap();
    assert!(log.frozen_accounts().await.unwrap().is_empty());

    let rollback = sign_command(
        &payload(Command::RollbackBundle, "blindledger@v1", &officer),
        &officer.private,
    )
    .unwrap();
    commands.submit(&rollback).await.unwrap();
    let revoke = sign_command(
        &payload(Command::RevokeTenantKey, "acme/key-7", &officer),
        &officer.private,
    )
    .unwrap();
    commands.submit(&revoke).await.unwrap();
    let queued = log.admin_actions("rollback_bundle").await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].target, "blindledger@v1");
    assert!(log
        .admin_actions("freeze_account")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(log.revoked_keys().await.unwrap()[0].key_id, "key-7");

    let (_, keys) = signer("audit-1");
    let report = log.verify(&keys, &VerifyOptions::default()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.rows_checked, 14);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn commands_are_checked_applied_and_logged_on_sqlite() {
    commands_are_checked_applied_and_logged(On::Sqlite).await;
}

#[tokio::test]
async fn commands_are_checked_applied_and_logged_on_mariadb() {
    commands_are_checked_applied_and_logged(On::MariaDb).await;
}

#[tokio::test]
async fn a_nonce_is_accepted_once_under_concurrency() {
    let db = TestDatabase::mysql().await.unwrap();
    let log = open_log(&db).await;
    let (commands, officer, _) = setup(&log);
    let signed = sign_command(
        &payload(Command::Freeze, "acme/carol", &officer),
        &officer.private,
    )
    .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (commands, signed) = (commands.clone(), signed.clone());
            tokio::spawn(async move { commands.submit(&signed).await.is_ok() })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 1);
    db.drop_db().await.unwrap();
}
