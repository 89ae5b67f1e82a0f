//! The connection pool and migrations.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult};
use sqlx::{Any, AnyPool, ConnectOptions, Transaction};
use tokio::sync::watch;

use crate::cluster::{prepare_mysql, spawn_monitor, still_ready, Node, Nodes, NODE_NOT_READY};
use crate::error::StoreError;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// MariaDB or MySQL (a Galera cluster in production).
    MySql,
    /// SQLite, the embedded single-node default.
    Sqlite,
}

/// How a [`Db`]'s pools are sized and what they log.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections per server.
    pub max_connections: u32,
    /// How long a statement waits for a free connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Statements slower than this are logged as warnings (sqlx's default is 1 s; a
    /// service whose scans take seconds by design sets more).
    pub slow_statement: Option<Duration>,
}

impl PoolSettings {
    /// At most `max_connections` per server, a 5 s acquire timeout, sqlx's slow-statement
    /// warning.
    pub fn new(max_connections: u32) -> Self {
        Self {
            max_connections: max_connections.max(1),
            acquire_timeout: Duration::from_secs(5),
            slow_statement: None,
        }
    }
}

/// Connections to a BlindLedger database: one SQLite file, one MariaDB server, or the nodes
/// of a MariaDB Galera cluster (see [`Db::connect`]). Every service opens its storage
/// through this type, so all share the pool settings, the Galera failover and the error
/// classification; write transactions that lose a race run again through
/// [`crate::retry_transaction`].
#[derive(Debug, Clone)]
pub struct Db {
    nodes: Arc<Nodes>,
    backend: Backend,
}

impl Db {
    /// Connects to `url` (`mysql://…` or `sqlite://…`) with at most `max_connections` per
    /// server.
    ///
    /// A MySQL URL may name several Galera nodes, comma-separated, in the order they are
    /// used: `mysql://user:pass@db1:3306,db2:3306,db3:3306/ledger`. Statements go to the
    /// first healthy node; the others take over when it fails.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, &PoolSettings::new(max_connections)).await
    }

    /// Connects as [`Db::connect`] does, with explicit pool settings.
    pub async fn connect_with(url: &str, settings: &PoolSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Backend::MySql
        } else {
            return Err(StoreError::Other(sqlx::Error::Configuration(
                "unsupported database url scheme (expected mysql:// or sqlite://)".into(),
            )));
        };
        let url = url.replacen("mariadb:", "mysql:", 1);
        let targets = match backend {
            Backend::Sqlite => vec![(String::from("sqlite"), url)],
            Backend::MySql => split_hosts(&url)?,
        };
        let mut nodes = Vec::with_capacity(targets.len());
        for (address, url) in targets {
            let mut options: AnyConnectOptions = url.parse()?;
            if let Some(slow) = settings.slow_statement {
                options = options.log_slow_statements(log::LevelFilter::Warn, slow);
            }
            let pool = pool_options(backend, settings).connect_lazy_with(options);
            nodes.push(Node { address, pool });
        }
        let db = Self {
            nodes: Nodes::new(nodes, backend == Backend::MySql),
            backend,
        };
        // Connect now so a wrong URL or a dead single server fails at start-up; a cluster
        // only needs one healthy node.
        if !db.nodes.check().await {
            let first = db.nodes.all().next().map(|n| n.pool.clone());
            if let Some(pool) = first {
                pool.acquire().await?;
            }
            return Err(StoreError::Unavailable(sqlx::Error::Protocol(
                NODE_NOT_READY.to_owned(),
            )));
        }
        if backend == Backend::MySql {
            spawn_monitor(&db.nodes);
        }
        Ok(db)
    }

    /// The pool of the node statements go to now. Take it again for each statement or
    /// transaction: after a failover it is another node's.
    pub fn pool(&self) -> &AnyPool {
        self.nodes.current()
    }

    /// Which node (0-based, in the order of the URL) statements go to now; always 0 for
    /// SQLite and a single server.
    pub fn current_index(&self) -> usize {
        self.nodes.current_index()
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and writes later would fail
    /// outright ("database is locked") when another connection committed in between,
    /// while one that asks for the lock up front waits for it (busy timeout).
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool().begin_with("BEGIN IMMEDIATE").await?,
            Backend::MySql => self.pool().begin().await?,
        })
    }

    /// ` FOR UPDATE` on MariaDB (row locks until commit); nothing on SQLite, whose write
    /// transaction already excludes every other writer.
    pub fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::MySql => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Connections of the current node's pool: open now, of which idle, and the most
    /// allowed.
    pub fn pool_stats(&self) -> (u32, usize, u32) {
        let pool = self.pool();
        (
            pool.size(),
            pool.num_idle(),
            pool.options().get_max_connections(),
        )
    }

    /// How long taking a connection from the current node's pool takes now (a probe, as a
    /// statement would wait for one); the connection goes back at once.
    pub async fn probe_acquire(&self) -> Result<std::time::Duration, StoreError> {
        let started = std::time::Instant::now();
        let connection = self.pool().acquire().await?;
        let waited = started.elapsed();
        drop(connection);
        Ok(waited)
    }

    /// The `host:port` of the node statements go to now (`sqlite` for SQLite).
    pub fn current_node(&self) -> &str {
        self.nodes.current_address()
    }

    /// Whether a healthy node takes statements now; the receiver sees every change. Always
    /// true for SQLite.
    pub fn serving(&self) -> watch::Receiver<bool> {
        self.nodes.serving()
    }

    /// The engine behind this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        for node in self.nodes.all() {
            node.pool.close().await;
        }
    }
}

/// Pool settings; each connection is prepared for its backend.
fn pool_options(backend: Backend, settings: &PoolSettings) -> sqlx::pool::PoolOptions<Any> {
    AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                match backend {
                    Backend::MySql => prepare_mysql(conn).await,
                    Backend::Sqlite => prepare_sqlite(conn).await,
                }
            })
        })
        .before_acquire(move |conn, _| {
            Box::pin(async move {
                match backend {
                    Backend::MySql => still_ready(conn).await,
                    Backend::Sqlite => Ok(true),
                }
            })
        })
}

async fn prepare_sqlite(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    // WAL lets readers run beside the single writer; the busy timeout turns short write
    // contention into waiting instead of errors.
    for pragma in [
        "PRAGMA journal_mode = WAL",
        "PRAGMA busy_timeout = 10000",
        "PRAGMA foreign_keys = ON",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

/// The URL of each server a database URL names, in order: one for SQLite or a single
/// server, one per node for a Galera host list (`mysql://u:p@h1,h2,h3/db`). For clients
/// that need their own driver beside a [`Db`] (index them with [`Db::current_index`]).
pub fn node_urls(url: &str) -> Result<Vec<String>, StoreError> {
    let url = url.replacen("mariadb:", "mysql:", 1);
    if url.starts_with("mysql:") {
        Ok(split_hosts(&url)?.into_iter().map(|(_, url)| url).collect())
    } else {
        Ok(vec![url])
    }
}

/// Splits `mysql://user:pass@h1:p1,h2:p2/db?opts` into one URL per host, each with its
/// `host:port` for logs.
fn split_hosts(url: &str) -> Result<Vec<(String, String)>, StoreError> {
    let invalid = |why: &str| {
        StoreError::Other(sqlx::Error::Configuration(
            format!("invalid database url: {why}").into(),
        ))
    };
    let rest = url
        .strip_prefix("mysql://")
        .ok_or_else(|| invalid("expected mysql://"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    let hosts: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if hosts.iter().any(|h| h.is_empty()) {
        return Err(invalid("empty host in the host list"));
    }
    Ok(hosts
        .into_iter()
        .map(|host| (host.to_owned(), format!("mysql://{userinfo}{host}{path}")))
        .collect())
}

/// Returns an error unless exactly one row changed.
pub(crate) fn expect_one(result: AnyQueryResult) -> Result<bool, StoreError> {
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::split_hosts;

    #[test]
    fn host_lists_split_into_one_url_per_node() {
        let nodes = split_hosts("mysql://u:p@db1:3306, db2:3307,db3/ledger?ssl-mode=required")
            .expect("valid url");
        let urls: Vec<&str> = nodes.iter().map(|(_, url)| url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "mysql://u:p@db1:3306/ledger?ssl-mode=required",
                "mysql://u:p@db2:3307/ledger?ssl-mode=required",
                "mysql://u:p@db3/ledger?ssl-mode=required",
            ]
        );
        assert_eq!(nodes[1].0, "db2:3307");
        assert_eq!(split_hosts("mysql://h1").expect("valid")[0].1, "mysql://h1");
        assert!(split_hosts("mysql://u@h1,,h2/db").is_err());
    }
}
