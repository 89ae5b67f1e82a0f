//! Revision floors: they only rise.

use blindledger_store::Db;

async fn a_revision_floor_only_rises(db: Db) {
    assert_eq!(db.revision_floor("ledger", "risk").await.unwrap(), None);
    let mut floors = Vec::new();
    for counter in [5, 3, 5, 9, 0] {
        db.raise_revision_floor("ledger", "risk", counter)
            .await
            .unwrap();
        floors.push(db.revision_floor("ledger", "risk").await.unwrap());
    }
    assert_eq!(floors, [Some(5), Some(5), Some(5), Some(9), Some(9)]);

    // Each service and bundle has its own floor.
    db.raise_revision_floor("controller", "risk", 2)
        .await
        .unwrap();
    db.raise_revision_floor("ledger", "limits", 4)
        .await
        .unwrap();
    assert_eq!(
        db.revision_floor("controller", "risk").await.unwrap(),
        Some(2)
    );
    assert_eq!(
        db.revision_floor("ledger", "limits").await.unwrap(),
        Some(4)
    );
    assert_eq!(db.revision_floor("ledger", "risk").await.unwrap(), Some(9));
    assert_eq!(db.revision_floor("audit", "risk").await.unwrap(), None);
}

async fn racing_raises_leave_the_highest(db: Db) {
    let raises: Vec<_> = (1..=20u64)
        .map(|counter| {
            let db = db.clone();
            tokio::spawn(async move { db.raise_revision_floor("ledger", "risk", counter).await })
        })
        .collect();
    for raise in raises {
        raise.await.unwrap().unwrap();
    }
    assert_eq!(db.revision_floor("ledger", "risk").await.unwrap(), Some(20));
}

conformance!(a_revision_floor_only_rises, racing_raises_leave_the_highest);
