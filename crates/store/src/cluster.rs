//! Several MariaDB Galera nodes behind one [`crate::Db`].
//!
//! Galera accepts writes on every node, but two read-modify-write transactions on different
//! nodes can both commit and lose an update (see the Galera notes in `deploy/galera`). So
//! all statements go to one node at a time, the *current* node; a monitor moves to the next
//! healthy node in the configured order when the current one leaves the primary component,
//! stops answering, or refuses connections. A connection is checked for `wsrep_ready`
//! before it is handed out again, so a node that just lost quorum fails fast with
//! UNAVAILABLE (MariaDB's 1047) instead of answering with stale data.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::watch;

/// The error [`crate::Db::connect`] reports when no node is ready.
pub(crate) const NODE_NOT_READY: &str =
    "no database node is ready (none answers, or none is in a Galera primary component)";

/// How often the monitor checks the current node.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// How long a node may take to answer a health check; a paused node never answers.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// One database server.
#[derive(Debug)]
pub(crate) struct Node {
    /// `host:port`, for logs (never the credentials).
    pub(crate) address: String,
    pub(crate) pool: AnyPool,
}

/// The nodes of a cluster and which one takes the statements.
#[derive(Debug)]
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    /// MySQL/MariaDB (checked for Galera state) rather than SQLite.
    mysql: bool,
    current: AtomicUsize,
    serving: watch::Sender<bool>,
}

impl Nodes {
    pub(crate) fn new(nodes: Vec<Node>, mysql: bool) -> Arc<Self> {
        let (serving, _) = watch::channel(true);
        Arc::new(Nodes {
            nodes,
            mysql,
            current: AtomicUsize::new(0),
            serving,
        })
    }

    /// The pool of the node statements go to now.
    pub(crate) fn current(&self) -> &AnyPool {
        &self.nodes[self.current.load(Ordering::Acquire) % self.nodes.len()].pool
    }

    /// The index of the node statements go to now.
    pub(crate) fn current_index(&self) -> usize {
        self.current.load(Ordering::Acquire) % self.nodes.len()
    }

    /// The address of the node statements go to now.
    pub(crate) fn current_address(&self) -> &str {
        &self.nodes[self.current.load(Ordering::Acquire) % self.nodes.len()].address
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// Whether the current node is healthy, and updates as that changes.
    pub(crate) fn serving(&self) -> watch::Receiver<bool> {
        self.serving.subscribe()
    }

    /// Checks the current node and, when it is unhealthy, moves to the first healthy node
    /// after it. Returns whether a healthy node is current.
    pub(crate) async fn check(&self) -> bool {
        let start = self.current.load(Ordering::Acquire);
        for step in 0..self.nodes.len() {
            let index = (start + step) % self.nodes.len();
            let node = &self.nodes[index];
            match health(&node.pool, self.mysql).await {
                Ok(()) => {
                    if step > 0 {
                        self.current.store(index, Ordering::Release);
                        metrics::counter!("blindledger_db_failovers_total").increment(1);
                        tracing::warn!(node = %node.address, "database failover: writes go to another node");
                    }
                    self.set_serving(true);
                    return true;
                }
                Err(reason) => {
                    tracing::debug!(node = %node.address, reason, "database node unhealthy")
                }
            }
        }
        self.set_serving(false);
        false
    }

    fn set_serving(&self, serving: bool) {
        self.serving.send_if_modified(|current| {
            if *current == serving {
                return false;
            }
            if serving {
                tracing::info!("database available again");
            } else {
                tracing::error!("no healthy database node: refusing work until one returns");
            }
            *current = serving;
            true
        });
    }
}

/// Checks the nodes every [`CHECK_INTERVAL`] until the last [`crate::Db`] is dropped.
pub(crate) fn spawn_monitor(nodes: &Arc<Nodes>) {
    let weak: Weak<Nodes> = Arc::downgrade(nodes);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(nodes) = weak.upgrade() else { break };
            if nodes.all().all(|n| n.pool.is_closed()) {
                break;
            }
            nodes.check().await;
        }
    });
}

/// Whether `pool`'s node accepts work: it answers within [`CHECK_TIMEOUT`] and, on Galera,
/// is ready and in the primary component.
async fn health(pool: &AnyPool, mysql: bool) -> Result<(), String> {
    let query = async {
        let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
        if !mysql {
            sqlx::query("SELECT 1")
                .execute(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(None);
        }
        galera_state(&mut conn).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(CHECK_TIMEOUT, query).await {
        Err(_) => Err("no answer".to_owned()),
        Ok(Err(e)) => Err(e),
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(state))) if state.ready && state.primary => Ok(()),
        Ok(Ok(Some(state))) => Err(format!("{state:?}")),
    }
}

/// A Galera node's view of itself.
#[derive(Debug)]
pub(crate) struct GaleraState {
    ready: bool,
    primary: bool,
}

/// Reads `wsrep_ready` and `wsrep_cluster_status`; `None` on a server without Galera.
pub(crate) async fn galera_state(
    conn: &mut AnyConnection,
) -> Result<Option<GaleraState>, sqlx::Error> {
    let rows = sqlx::query(
        "SHOW STATUS WHERE Variable_name IN \
         ('wsrep_provider_name', 'wsrep_ready', 'wsrep_cluster_status')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let (mut provider, mut ready, mut primary) = (String::new(), false, false);
    for row in rows {
        let name: String = row.try_get(0)?;
        let value: String = row.try_get(1)?;
        match name.to_ascii_lowercase().as_str() {
            "wsrep_provider_name" => provider = value,
            "wsrep_ready" => ready = value.eq_ignore_ascii_case("ON"),
            "wsrep_cluster_status" => primary = value == "Primary",
            _ => {}
        }
    }
    // Debian's MariaDB always has the wsrep variables; without a provider loaded (or on
    // MySQL, where they are absent) it is a plain server.
    Ok((!provider.is_empty()).then_some(GaleraState { ready, primary }))
}

/// Prepares a new MySQL connection: on a Galera node, makes its reads causal, so they see
/// every write committed anywhere in the cluster.
///
/// A node outside the primary component is not refused here: sqlx would retry the
/// connection until the acquire timeout. Its first statement fails at once with 1047
/// (UNAVAILABLE) instead, and [`still_ready`] drops the connection when it is next handed out.
pub(crate) async fn prepare_mysql(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if galera_state(conn).await?.is_some() {
        sqlx::query("SET SESSION wsrep_sync_wait = 1")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Checks a pooled MySQL connection before it is handed out: `false` (drop it) on a Galera
/// node that is no longer ready.
pub(crate) async fn still_ready(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    Ok(match galera_state(conn).await? {
        None => true,
        Some(state) => state.ready && state.primary,
    })
}
