//! Storage conformance: the ledger's repository (`blindledger_store::Db`) behaves the same
//! on SQLite and on MariaDB, and as its doc comments promise.
//!
//! Every case is an `async fn(Db)` written once; [`conformance!`] runs it on a fresh,
//! migrated SQLite file (`<case>::on_sqlite`) and on a fresh, migrated MariaDB database
//! (`<case>::on_mariadb`, on the server named by `BLINDLEDGER_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306`). Ciphertexts are arbitrary bytes: the store never reads
//! them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;

use blindledger_store::Db;
use blindledger_test_support::TestDatabase;

/// Which engine a case runs on.
#[derive(Debug, Clone, Copy)]
pub enum On {
    Sqlite,
    MariaDb,
}

/// Opens a fresh database on `on`, migrates it, runs `case` on it and drops it. A panicking
/// case drops its database too (`TestDatabase`'s `Drop`).
pub async fn run<F, Fut>(on: On, case: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let database = match on {
        On::Sqlite => TestDatabase::sqlite().unwrap(),
        On::MariaDb => TestDatabase::mysql().await.unwrap(),
    };
    let db = Db::connect(database.url(), 8).await.unwrap();
    db.migrate().await.unwrap();
    case(db.clone()).await;
    db.close().await;
    database.drop_db().await.unwrap();
}

/// Turns each case `async fn case(db: Db)` of the calling module into a module `case` of
/// two tests, `on_sqlite` and `on_mariadb`. Multi-threaded, so that the cases that race
/// owners or instances race for real.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                $crate::run($crate::On::Sqlite, super::$case).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_mariadb() {
                $crate::run($crate::On::MariaDb, super::$case).await;
            }
        }
    )*};
}

mod accounts;
mod chains;
mod commits;
mod connect;
mod decisions;
mod fixtures;
mod jobs;
mod leases;
mod revisions;
mod tenants;
mod totals;
