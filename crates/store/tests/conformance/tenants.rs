//! Tenants: registration keeps the first row under a name, an upsert rotates keys.

use blindledger_store::{Db, StoreError, TenantRow};

use crate::fixtures::tenant;

/// Every field of a tenant row, to compare rows whole.
fn fields(t: &TenantRow) -> (&str, &str, i64, &[u8], &str, &str, i64) {
    (
        &t.name,
        &t.region,
        t.width_bits,
        &t.public_key,
        &t.key_id,
        &t.server_key_path,
        t.server_key_size,
    )
}

async fn registering_a_tenant_again_returns_the_first_row(db: Db) {
    let first = tenant("acme", 'a');
    let stored = db.register_tenant(&first).await.unwrap();
    assert_eq!(fields(&stored), fields(&first));

    // The same registration again (a retry): the same row, no error.
    let again = db.register_tenant(&first).await.unwrap();
    assert_eq!(fields(&again), fields(&first));

    // Another registration under the name: the first row wins, and the caller can tell by
    // the key id.
    let mut rival = tenant("acme", 'b');
    rival.region = "us-east-1".into();
    rival.width_bits = 64;
    let answer = db.register_tenant(&rival).await.unwrap();
    assert_eq!(fields(&answer), fields(&first));
    assert_ne!(answer.key_id, rival.key_id);
    assert_eq!(
        fields(&db.tenant("acme").await.unwrap()),
        fields(&first),
        "the stored row is unchanged"
    );
}

async fn racing_registrations_store_exactly_one(db: Db) {
    let keys = ['1', '2', '3', '4', '5', '6', '7', '8'];
    let tasks: Vec<_> = keys
        .iter()
        .map(|&key| {
            let db = db.clone();
            tokio::spawn(async move { db.register_tenant(&tenant("acme", key)).await.unwrap() })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().key_id);
    }
    let stored = db.tenant("acme").await.unwrap().key_id;
    assert!(
        answers.iter().all(|key| *key == stored),
        "every registration answers with the stored row: {answers:?} vs {stored}"
    );
}

async fn an_upsert_registers_then_rotates_the_keys(db: Db) {
    db.upsert_tenant(&tenant("acme", 'a')).await.unwrap();
    db.upsert_tenant(&tenant("globex", 'c')).await.unwrap();
    assert_eq!(
        fields(&db.tenant("acme").await.unwrap()),
        fields(&tenant("acme", 'a'))
    );

    let mut rotated = tenant("acme", 'b');
    rotated.server_key_size = 61_000_000;
    db.upsert_tenant(&rotated).await.unwrap();
    assert_eq!(fields(&db.tenant("acme").await.unwrap()), fields(&rotated));
    assert_eq!(
        fields(&db.tenant("globex").await.unwrap()),
        fields(&tenant("globex", 'c')),
        "another tenant's keys are untouched"
    );
}

async fn an_unknown_tenant_is_not_found(db: Db) {
    assert!(matches!(db.tenant("acme").await, Err(StoreError::NotFound)));
    db.register_tenant(&tenant("acme", 'a')).await.unwrap();
    assert!(matches!(
        db.tenant("acme-2").await,
        Err(StoreError::NotFound)
    ));
    assert!(db.tenant("acme").await.is_ok());
}

conformance!(
    registering_a_tenant_again_returns_the_first_row,
    racing_registrations_store_exactly_one,
    an_upsert_registers_then_rotates_the_keys,
    an_unknown_tenant_is_not_found,
);
