//! Throwaway databases: one fresh MariaDB database or SQLite file per test.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::{Connection as _, MySqlConnection};
use tempfile::TempDir;

/// The environment variable naming the MariaDB server tests use, as a `mysql://` URL without a
/// database (a database in it is ignored). `scripts/test.sh` sets it.
pub const MYSQL_URL_ENV: &str = "BLINDLEDGER_TEST_MYSQL_URL";

/// The server used when [`MYSQL_URL_ENV`] is unset or empty.
pub const DEFAULT_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306";

/// Prefix of every database [`TestDatabase::mysql`] creates.
const DB_PREFIX: &str = "bl_test_";

/// How long a clean-up from `Drop` (`DROP DATABASE`, `DROP USER`) waits before giving up.
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh, isolated database for one test.
///
/// * [`TestDatabase::mysql`] creates a database `bl_test_<uuid>` on the MariaDB server named by
///   [`MYSQL_URL_ENV`]; dropping the value drops the database (best effort, never panics), and
///   [`TestDatabase::drop_db`] does it explicitly, reporting errors.
/// * [`TestDatabase::sqlite`] points at `ledger.db` in a temporary directory that lives as long
///   as the value.
///
/// Either way, [`TestDatabase::url`] is what the code under test connects to. Nothing is
/// migrated: that is the job of the code under test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    /// `None` once dropped by [`TestDatabase::drop_db`].
    MySql(Option<MySqlDb>),
    Sqlite {
        _dir: TempDir,
        path: PathBuf,
    },
}

#[derive(Debug)]
struct MySqlDb {
    /// The server URL without a database.
    server_url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a new, empty database on the MariaDB server named by [`MYSQL_URL_ENV`]
    /// (default [`DEFAULT_MYSQL_URL`]).
    ///
    /// Fails, with a message saying how to get a server, when MariaDB cannot be reached: tests
    /// that need MariaDB must not silently pass without it.
    pub async fn mysql() -> anyhow::Result<Self> {
        let configured = std::env::var(MYSQL_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_MYSQL_URL.to_owned());
        let parts = UrlParts::parse(configured.trim())?;
        let server_url = parts.with_database(None);
        let name = format!("{DB_PREFIX}{}", uuid::Uuid::new_v4().simple());

        let mut conn = MySqlConnection::connect(&server_url)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to MariaDB at {} (from {MYSQL_URL_ENV}, default \
                 {DEFAULT_MYSQL_URL}); run the tests with scripts/test.sh, which starts a \
                 private server when none is reachable",
                    parts.redacted()
                )
            })?;
        sqlx::raw_sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating database {name}"))?;
        // The database exists; a failed close is no reason to fail the test.
        let _ = conn.close().await;

        Ok(Self {
            url: parts.with_database(Some(&name)),
            backend: Backend::MySql(Some(MySqlDb { server_url, name })),
        })
    }

    /// Creates a temporary directory holding a (not yet created) `ledger.db`; the URL has
    /// `mode=rwc` so the first connection creates the file.
    pub fn sqlite() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("bl_test_sqlite_")
            .tempdir()
            .context("creating a temporary directory for SQLite")?;
        let path = dir.path().join("ledger.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Ok(Self {
            url,
            backend: Backend::Sqlite { _dir: dir, path },
        })
    }

    /// The URL of this database: `mysql://user@host:port/bl_test_…` or
    /// `sqlite:///tmp/…/ledger.db?mode=rwc`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The MariaDB database name (`bl_test_…`), or `None` for SQLite.
    pub fn database_name(&self) -> Option<&str> {
        match &self.backend {
            Backend::MySql(db) => db.as_ref().map(|db| db.name.as_str()),
            Backend::Sqlite { .. } => None,
        }
    }

    /// The URL of the MariaDB server without a database (with the test's administrator
    /// credentials), or `None` for SQLite.
    pub(crate) fn server_url(&self) -> Option<&str> {
        match &self.backend {
            Backend::MySql(db) => db.as_ref().map(|db| db.server_url.as_str()),
            Backend::Sqlite { .. } => None,
        }
    }

    /// The SQLite file, or `None` for MariaDB.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::MySql(_) => None,
            Backend::Sqlite { path, .. } => Some(path),
        }
    }

    /// Drops the database now, reporting failure (dropping the value does the same, silently
    /// and blocking). For SQLite, removes the temporary directory.
    pub async fn drop_db(mut self) -> anyhow::Result<()> {
        match &mut self.backend {
            Backend::MySql(db) => match db.take() {
                Some(db) => drop_database(&db.server_url, &db.name).await,
                None => Ok(()),
            },
            // Dropping `self` removes the directory.
            Backend::Sqlite { .. } => Ok(()),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Backend::MySql(db) = &mut self.backend else {
            return;
        };
        let Some(MySqlDb { server_url, name }) = db.take() else {
            return;
        };
        let statement = format!("DROP DATABASE IF EXISTS `{name}`");
        execute_detached(server_url, statement, format!("dropping database {name}"));
    }
}

async fn drop_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    let statement = format!("DROP DATABASE IF EXISTS `{name}`");
    execute(server_url, &statement)
        .await
        .with_context(|| format!("dropping database {name}"))
}

/// Runs one statement on its own connection to `server_url`.
pub(crate) async fn execute(server_url: &str, statement: &str) -> anyhow::Result<()> {
    let mut conn = MySqlConnection::connect(server_url)
        .await
        .context("connecting to MariaDB")?;
    sqlx::raw_sql(statement).execute(&mut conn).await?;
    let _ = conn.close().await;
    Ok(())
}

/// [`execute`] from `Drop`, best effort: reports failure on stderr (as `what`), never panics.
///
/// `Drop` may run inside a runtime (where blocking on one is forbidden) or outside any: the
/// statement runs on a thread with its own small runtime, and this waits a bounded time so
/// that the process does not exit before it is done.
pub(crate) fn execute_detached(server_url: String, statement: String, what: String) {
    let (done_tx, done_rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("bl-test-db-cleanup".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(execute(&server_url, &statement)));
            let _ = done_tx.send(result);
        });
    if let Err(e) = spawned {
        eprintln!("blindledger-test-support: not {what}: {e}");
        return;
    }
    match done_rx.recv_timeout(DROP_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("blindledger-test-support: {what}: {e:#}"),
        Err(_) => eprintln!("blindledger-test-support: {what}: no answer in {DROP_TIMEOUT:?}"),
    }
}

/// A `scheme://[userinfo@]host[:port][/path][?query]` URL cut into pieces, without decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    /// `mysql://`
    pub(crate) scheme: &'a str,
    /// `user:password@`, or empty.
    pub(crate) userinfo: &'a str,
    /// `host:port`, `host` or `[::1]:port`.
    pub(crate) host_port: &'a str,
    /// `/path`, or empty.
    pub(crate) path: &'a str,
    /// `?query`, or empty (a `#fragment` stays in it).
    pub(crate) query: &'a str,
}

impl<'a> UrlParts<'a> {
    pub(crate) fn parse(url: &'a str) -> anyhow::Result<Self> {
        let scheme_end = url
            .find("://")
            .map(|i| i + 3)
            .with_context(|| format!("not a URL (no `://`): {url:?}"))?;
        let (scheme, rest) = url.split_at(scheme_end);
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        anyhow::ensure!(!host_port.is_empty(), "no host in URL {url:?}");
        let query_start = tail.find(['?', '#']).unwrap_or(tail.len());
        let (path, query) = tail.split_at(query_start);
        Ok(Self {
            scheme,
            userinfo,
            host_port,
            path,
            query,
        })
    }

    /// The URL with its path replaced by `/database`, or removed.
    pub(crate) fn with_database(&self, database: Option<&str>) -> String {
        let Self {
            scheme,
            userinfo,
            host_port,
            query,
            ..
        } = self;
        match database {
            Some(db) => format!("{scheme}{userinfo}{host_port}/{db}{query}"),
            None => format!("{scheme}{userinfo}{host_port}{query}"),
        }
    }

    /// The URL with its user and password replaced (neither is encoded: both must be
    /// URL-safe).
    pub(crate) fn with_credentials(&self, user: &str, password: &str) -> String {
        let Self {
            scheme,
            host_port,
            path,
            query,
            ..
        } = self;
        format!("{scheme}{user}:{password}@{host_port}{path}{query}")
    }

    /// The URL with `host:port` replaced.
    pub(crate) fn with_host_port(&self, host_port: &str) -> String {
        let Self {
            scheme,
            userinfo,
            path,
            query,
            ..
        } = self;
        format!("{scheme}{userinfo}{host_port}{path}{query}")
    }

    /// The URL with any password hidden, for messages.
    pub(crate) fn redacted(&self) -> String {
        let userinfo = match self.userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => self.userinfo.to_owned(),
        };
        format!("{}{userinfo}{}{}", self.scheme, self.host_port, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row as _;

    #[test]
    fn url_parts() -> anyhow::Result<()> {
        let p = UrlParts::parse("mysql://root:p@ss@127.0.0.1:3307/db?ssl-mode=disabled")?;
        assert_eq!(p.scheme, "mysql://");
        assert_eq!(p.userinfo, "root:p@ss@");
        assert_eq!(p.host_port, "127.0.0.1:3307");
        assert_eq!(p.path, "/db");
        assert_eq!(p.query, "?ssl-mode=disabled");
        assert_eq!(
            p.with_database(Some("x")),
            "mysql://root:p@ss@127.0.0.1:3307/x?ssl-mode=disabled"
        );
        assert_eq!(
            p.with_database(None),
            "mysql://root:p@ss@127.0.0.1:3307?ssl-mode=disabled"
        );
        assert_eq!(p.redacted(), "mysql://root:***@127.0.0.1:3307/db");
        assert_eq!(
            p.with_credentials("bl_x", "pw"),
            "mysql://bl_x:pw@127.0.0.1:3307/db?ssl-mode=disabled"
        );

        let p = UrlParts::parse("mysql://localhost")?;
        assert_eq!(
            (p.userinfo, p.host_port, p.path, p.query),
            ("", "localhost", "", "")
        );
        assert_eq!(p.with_host_port("127.0.0.1:1"), "mysql://127.0.0.1:1");
        assert!(UrlParts::parse("localhost:3306").is_err());
        assert!(UrlParts::parse("mysql:///db").is_err());
        Ok(())
    }

    #[test]
    fn sqlite_file_lives_as_long_as_the_value() -> anyhow::Result<()> {
        let db = TestDatabase::sqlite()?;
        let path = db.sqlite_path().context("a path")?.to_owned();
        assert!(db.url().starts_with("sqlite://"), "{}", db.url());
        assert!(db.url().ends_with("/ledger.db?mode=rwc"), "{}", db.url());
        assert!(path.parent().context("a parent")?.is_dir());
        assert_eq!(db.database_name(), None);
        drop(db);
        assert!(!path.parent().context("a parent")?.exists());
        Ok(())
    }

    #[tokio::test]
    async fn sqlite_url_connects() -> anyhow::Result<()> {
        let db = TestDatabase::sqlite()?;
        let mut conn = sqlx::SqliteConnection::connect(db.url()).await?;
        sqlx::raw_sql("CREATE TABLE t (x INTEGER)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        assert!(db.sqlite_path().context("a path")?.is_file());
        Ok(())
    }

    async fn database_exists(server_url: &str, name: &str) -> anyhow::Result<bool> {
        let mut conn = MySqlConnection::connect(server_url).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = ?",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(row.try_get::<i64, _>("n")? == 1)
    }

    /// Needs MariaDB (`scripts/test.sh` provides one); fails loudly without.
    #[tokio::test]
    async fn mysql_database_is_created_isolated_and_dropped() -> anyhow::Result<()> {
        let a = TestDatabase::mysql().await?;
        let b = TestDatabase::mysql().await?;
        let name_a = a.database_name().context("a name")?.to_owned();
        let name_b = b.database_name().context("a name")?.to_owned();
        assert_ne!(name_a, name_b);
        assert!(name_a.starts_with(DB_PREFIX));
        assert!(a.url().ends_with(&format!("/{name_a}")), "{}", a.url());

        // The URL selects the database.
        let mut conn = MySqlConnection::connect(a.url()).await?;
        let current: String = sqlx::query("SELECT DATABASE()")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        assert_eq!(current, name_a);
        sqlx::raw_sql("CREATE TABLE t (x INT)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;

        let server = match &a.backend {
            Backend::MySql(Some(db)) => db.server_url.clone(),
            other => anyhow::bail!("unexpected backend {other:?}"),
        };
        assert!(database_exists(&server, &name_a).await?);

        // Drop runs inside this runtime without panicking, and the database goes.
        drop(a);
        assert!(!database_exists(&server, &name_a).await?);

        b.drop_db().await?;
        assert!(!database_exists(&server, &name_b).await?);
        Ok(())
    }
}
