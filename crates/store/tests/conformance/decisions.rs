//! The decision log: append-only, newest first.

use blindledger_store::{Db, DecisionRecord, StoreError};

fn decision(i: i64) -> DecisionRecord {
    DecisionRecord {
        decision_id: format!("00000000-0000-4000-8000-{i:012}"),
        // Logged out of order: the log's order is the order of the appends.
        logged_at: 1_700_000_000_000 - i,
        principal: format!("spiffe://blindledger/user-{i}"),
        method: "/blindledger.ledger.v1.LedgerService/Transfer".into(),
        allowed: i % 2 == 0,
        revisions: format!(r#"{{"blindledger":"rev-{i}"}}"#),
        event: [
            b"{\"masked\":true}".as_slice(),
            [0, 159, 255, i as u8].as_slice(),
        ]
        .concat(),
    }
}

fn fields(d: &DecisionRecord) -> (&str, i64, &str, &str, bool, &str, &[u8]) {
    (
        &d.decision_id,
        d.logged_at,
        &d.principal,
        &d.method,
        d.allowed,
        &d.revisions,
        &d.event,
    )
}

async fn decisions_read_back_newest_first(db: Db) {
    assert!(db.recent_decisions(10).await.unwrap().is_empty());
    for i in 1..=5 {
        db.record_decision(&decision(i)).await.unwrap();
    }
    let recent = db.recent_decisions(3).await.unwrap();
    let expected = [decision(5), decision(4), decision(3)];
    assert_eq!(
        recent.iter().map(fields).collect::<Vec<_>>(),
        expected.iter().map(fields).collect::<Vec<_>>()
    );
    assert_eq!(db.recent_decisions(100).await.unwrap().len(), 5);
}

async fn a_repeated_decision_id_is_refused_never_overwritten(db: Db) {
    db.record_decision(&decision(1)).await.unwrap();
    let mut forged = decision(2);
    forged.decision_id = decision(1).decision_id;
    let refused = db.record_decision(&forged).await;
    assert!(
        matches!(refused, Err(StoreError::Duplicate(_))),
        "{refused:?}"
    );
    let log = db.recent_decisions(10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(fields(&log[0]), fields(&decision(1)));
}

conformance!(
    decisions_read_back_newest_first,
    a_repeated_decision_id_is_refused_never_overwritten,
);
