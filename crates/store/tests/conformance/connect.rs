//! Connecting: a database that cannot be used is an error the caller can act on, never a
//! panic or a hang.

use std::time::Duration;

use blindledger_store::{Db, PoolSettings, StoreError};
use blindledger_test_support::{mysql_socket_addr, mysql_url_via, TcpProxy, TestDatabase};

/// Pool settings that give up on a dead server quickly.
fn impatient() -> PoolSettings {
    PoolSettings {
        acquire_timeout: Duration::from_millis(500),
        ..PoolSettings::new(2)
    }
}

/// The error and every cause under it, one line.
fn chain(err: &StoreError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

mod a_database_that_cannot_be_opened_is_refused {
    use super::*;

    #[tokio::test]
    async fn on_sqlite() {
        // Without `mode=rwc` a missing file is not created.
        let database = TestDatabase::sqlite().unwrap();
        let url = database.url().replace("?mode=rwc", "");
        let err = Db::connect_with(&url, &impatient()).await.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert!(
            chain(&err).contains("unable to open database file"),
            "{}",
            chain(&err)
        );
        assert!(!database.sqlite_path().unwrap().exists());
    }

    #[tokio::test]
    async fn on_mariadb() {
        // A URL naming a database that is not (or no longer) there.
        let database = TestDatabase::mysql().await.unwrap();
        let url = database.url().to_owned();
        let name = database.database_name().unwrap().to_owned();
        database.drop_db().await.unwrap();
        let err = Db::connect_with(&url, &impatient()).await.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert!(
            chain(&err).contains(&format!("Unknown database '{name}'")),
            "{}",
            chain(&err)
        );
    }
}

mod an_unreachable_server_is_unavailable {
    use super::*;

    #[tokio::test]
    async fn on_mariadb() {
        let database = TestDatabase::mysql().await.unwrap();
        let proxy = TcpProxy::start(mysql_socket_addr(database.url()).unwrap())
            .await
            .unwrap();
        proxy.cut().await;
        let url = mysql_url_via(&proxy, database.url());
        let started = std::time::Instant::now();
        let err = Db::connect_with(&url, &impatient()).await.unwrap_err();
        assert!(err.is_transient(), "retrying later may succeed: {err:?}");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "no hang");
        database.drop_db().await.unwrap();
    }
}

#[tokio::test]
async fn an_unsupported_url_scheme_is_refused() {
    for url in ["postgres://root@127.0.0.1/ledger", "ledger.db", ""] {
        let err = Db::connect(url, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{url}: {err:?}");
        assert!(
            chain(&err).contains("unsupported database url scheme"),
            "{url}: {}",
            chain(&err)
        );
    }
}
