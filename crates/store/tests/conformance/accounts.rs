//! Accounts: opened once per name and tenant, read back exactly as written.

use blindledger_store::{now_ms, CommitOutcome, Db, JobCommit, StoreError, WindowWrite};

use crate::fixtures::{balance_write, blob, claim_all, new_job, open_accounts, submit, tenant};

async fn a_new_account_reads_back_as_opened(db: Db) {
    db.register_tenant(&tenant("acme", 'a')).await.unwrap();
    let before = now_ms();
    let opened = db
        .insert_account("acme", "alice", Some(500), Some((10_000, 3_600)))
        .await
        .unwrap();
    let read = db.account("acme", "alice").await.unwrap();
    for row in [&opened, &read] {
        assert_eq!((row.tenant.as_str(), row.name.as_str()), ("acme", "alice"));
        assert_eq!(row.version, 0);
        assert_eq!(row.balance, None, "no balance until the first write");
        assert_eq!(row.max_amount, Some(500));
        assert_eq!(
            (row.window_limit, row.window_seconds),
            (Some(10_000), 3_600)
        );
        assert_eq!(row.window_start, None);
        assert_eq!(row.window_spent, None);
        assert_eq!(row.window_remaining, None);
        assert_eq!(row.window_base, None);
        assert!((before..=now_ms()).contains(&row.created_at));
    }

    let plain = db.insert_account("acme", "bob", None, None).await.unwrap();
    assert_eq!((plain.max_amount, plain.window_limit), (None, None));
    assert_eq!(plain.window_seconds, 86_400, "a day by default");
}

async fn committed_blobs_read_back_byte_exact(db: Db) {
    open_accounts(&db, "acme", &[]).await;
    db.insert_account("acme", "alice", None, Some((10_000, 3_600)))
        .await
        .unwrap();
    let job = submit(&db, &new_job("acme", "withdraw", ("alice", None), "k-1")).await;
    let claimed = claim_all(&db, "worker-1").await;
    assert_eq!(
        claimed[0].payload, job.payload,
        "the payload reads back exact"
    );

    // Larger than a MySQL BLOB (64 KiB): the columns must hold real compressed ciphertexts.
    let balance = blob(7, 100_000);
    let remaining = blob(8, 70_000);
    let alice = db.account("acme", "alice").await.unwrap();
    let mut write = balance_write(&alice, balance.clone());
    write.window = Some(WindowWrite {
        start: 1_700_000_000_000,
        remaining: remaining.clone(),
        base: 10_000,
    });
    let commit = JobCommit {
        writes: vec![write],
        moved: Some(blob(9, 65_536)),
        ok: Some(vec![0, 255, 0, 128]),
        ..JobCommit::default()
    };
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);

    let alice = db.account("acme", "alice").await.unwrap();
    assert_eq!(alice.version, 1);
    assert_eq!(alice.balance.as_deref(), Some(balance.as_slice()));
    assert_eq!(alice.window_start, Some(1_700_000_000_000));
    assert_eq!(
        alice.window_remaining.as_deref(),
        Some(remaining.as_slice())
    );
    assert_eq!(alice.window_base, Some(10_000));
    let job = db.job(&job.id).await.unwrap();
    assert_eq!(job.result_moved, commit.moved);
    assert_eq!(job.result_ok, commit.ok);
}

async fn a_balance_write_without_a_window_keeps_the_window(db: Db) {
    open_accounts(&db, "acme", &[]).await;
    db.insert_account("acme", "alice", None, Some((10_000, 3_600)))
        .await
        .unwrap();
    for (i, window) in [(1, true), (2, false)] {
        let key = format!("k-{i}");
        submit(&db, &new_job("acme", "deposit", ("alice", None), &key)).await;
        let claimed = claim_all(&db, "worker-1").await;
        let alice = db.account("acme", "alice").await.unwrap();
        let mut write = balance_write(&alice, blob(i, 256));
        write.window = window.then(|| WindowWrite {
            start: 1_700_000_000_000,
            remaining: blob(100, 256),
            base: 10_000,
        });
        let commit = JobCommit {
            writes: vec![write],
            ..JobCommit::default()
        };
        let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
        assert_eq!(outcome.unwrap(), CommitOutcome::Committed);
    }
    let alice = db.account("acme", "alice").await.unwrap();
    assert_eq!(alice.version, 2);
    assert_eq!(alice.balance, Some(blob(2, 256)));
    assert_eq!(alice.window_start, Some(1_700_000_000_000));
    assert_eq!(alice.window_remaining, Some(blob(100, 256)));
    assert_eq!(alice.window_base, Some(10_000));
}

async fn a_duplicate_account_is_refused_and_the_first_kept(db: Db) {
    db.register_tenant(&tenant("acme", 'a')).await.unwrap();
    db.insert_account("acme", "alice", Some(500), None)
        .await
        .unwrap();
    let again = db.insert_account("acme", "alice", Some(9), None).await;
    assert!(matches!(again, Err(StoreError::Duplicate(_))), "{again:?}");
    let alice = db.account("acme", "alice").await.unwrap();
    assert_eq!((alice.max_amount, alice.version), (Some(500), 0));
}

async fn a_missing_account_is_not_found(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    assert!(matches!(
        db.account("acme", "bob").await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.account("globex", "alice").await,
        Err(StoreError::NotFound)
    ));
}

async fn account_names_are_scoped_per_tenant(db: Db) {
    open_accounts(&db, "acme", &["alice"]).await;
    db.register_tenant(&tenant("globex", 'b')).await.unwrap();
    db.insert_account("globex", "alice", Some(7), None)
        .await
        .unwrap();

    submit(&db, &new_job("acme", "deposit", ("alice", None), "k-1")).await;
    let claimed = claim_all(&db, "worker-1").await;
    let alice = db.account("acme", "alice").await.unwrap();
    let commit = JobCommit {
        writes: vec![balance_write(&alice, blob(1, 128))],
        ..JobCommit::default()
    };
    let outcome = db.commit_job(&claimed[0], "worker-1", &commit).await;
    assert_eq!(outcome.unwrap(), CommitOutcome::Committed);

    let acme = db.account("acme", "alice").await.unwrap();
    let globex = db.account("globex", "alice").await.unwrap();
    assert_eq!((acme.version, acme.max_amount), (1, None));
    assert_eq!((globex.version, globex.max_amount), (0, Some(7)));
    assert_eq!(
        globex.balance, None,
        "another tenant's namesake is untouched"
    );
}

async fn an_account_of_an_unknown_tenant_is_refused(db: Db) {
    let refused = db.insert_account("nobody", "alice", None, None).await;
    assert!(matches!(refused, Err(StoreError::Other(_))), "{refused:?}");
    assert!(matches!(
        db.account("nobody", "alice").await,
        Err(StoreError::NotFound)
    ));
}

conformance!(
    a_new_account_reads_back_as_opened,
    committed_blobs_read_back_byte_exact,
    a_balance_write_without_a_window_keeps_the_window,
    a_duplicate_account_is_refused_and_the_first_kept,
    a_missing_account_is_not_found,
    account_names_are_scoped_per_tenant,
    an_account_of_an_unknown_tenant_is_refused,
);
