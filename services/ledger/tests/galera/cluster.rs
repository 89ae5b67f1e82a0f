//! The local three-node cluster, driven through `deploy/galera/cluster.sh`.

use std::path::PathBuf;
use std::process::Command;

use sqlx::{Connection as _, MySqlConnection, Row as _};

/// The cluster script of this repository.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/galera/cluster.sh")
}

/// Which cluster the script drives: the developer cluster on 127.0.0.1 (its default state
/// directory), or one whose nodes run in their own network namespaces, with its own state
/// directory, so that links can be cut.
#[derive(Debug, Clone, Default)]
pub struct Script {
    netns_dir: Option<PathBuf>,
}

impl Script {
    /// The cluster in network namespaces kept in `dir`.
    pub fn netns(dir: PathBuf) -> Self {
        Script {
            netns_dir: Some(dir),
        }
    }

    /// Runs `cluster.sh args…` and returns its standard output; panics with its error output.
    /// The runtime's other threads keep serving the ledger meanwhile.
    pub fn run(&self, args: &[&str]) -> String {
        self.run_logged(args).0
    }

    /// Runs `cluster.sh args…`; returns its standard output and its log (standard error,
    /// each line stamped with the time it was written).
    pub fn run_logged(&self, args: &[&str]) -> (String, String) {
        let command = || {
            let mut command = Command::new("bash");
            command.arg(script()).args(args);
            if let Some(dir) = &self.netns_dir {
                command
                    .env("BLINDLEDGER_GALERA_DIR", dir)
                    .env("BLINDLEDGER_GALERA_NETNS", "1");
            }
            command.output()
        };
        let output = tokio::task::block_in_place(command).expect("cluster.sh runs");
        assert!(
            output.status.success(),
            "cluster.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        (
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        )
    }
}

/// Runs `cluster.sh args…` on the developer cluster; its standard output.
pub fn run(args: &[&str]) -> String {
    Script::default().run(args)
}

/// Runs `cluster.sh args…` on the developer cluster; its standard output and its log.
pub fn run_logged(args: &[&str]) -> (String, String) {
    Script::default().run_logged(args)
}

/// A running cluster with a fresh database for one test.
pub struct Cluster {
    /// `mysql://root@ADDRESS:PORT` of nodes 1, 2, 3.
    pub nodes: Vec<String>,
    /// The test database.
    pub database: String,
    /// The script driving this cluster.
    pub script: Script,
}

impl Cluster {
    /// Starts the cluster (a no-op when it runs) and creates a database on it.
    pub async fn start() -> Self {
        Self::start_with(Script::default()).await
    }

    /// Starts the cluster `script` drives and creates a database on it.
    pub async fn start_with(script: Script) -> Self {
        script.run(&["up"]);
        let nodes: Vec<String> = script
            .run(&["urls"])
            .split(',')
            .map(str::to_owned)
            .collect();
        assert_eq!(nodes.len(), 3, "three node URLs");
        let database = format!("bl_galera_{}", uuid::Uuid::new_v4().simple());
        let mut conn = MySqlConnection::connect(&nodes[0])
            .await
            .expect("node 1 accepts connections");
        sqlx::raw_sql(&format!("CREATE DATABASE `{database}`"))
            .execute(&mut conn)
            .await
            .expect("test database created");
        let _ = conn.close().await;
        Cluster {
            nodes,
            database,
            script,
        }
    }

    /// The ledger's URL: every node, in order, and the test database.
    pub fn url(&self) -> String {
        let hosts: Vec<&str> = self
            .nodes
            .iter()
            .map(|url| url.trim_start_matches("mysql://root@"))
            .collect();
        format!("mysql://root@{}/{}", hosts.join(","), self.database)
    }

    /// The node number (1-based) listening at `address` (`host:port`).
    pub fn node_at(&self, address: &str) -> usize {
        let position = self.nodes.iter().position(|url| url.ends_with(address));
        position.expect("address of a cluster node") + 1
    }

    /// Every job row's state and attempts, read on node 1.
    pub async fn job_states(&self) -> Vec<(String, i64)> {
        let url = format!("{}/{}", self.nodes[0], self.database);
        let mut conn = MySqlConnection::connect(&url).await.expect("node 1");
        let rows = sqlx::query("SELECT state, attempts FROM jobs ORDER BY seq")
            .fetch_all(&mut conn)
            .await
            .expect("jobs readable");
        let _ = conn.close().await;
        rows.iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect()
    }

    /// Drops the test database; the cluster keeps running for the next test.
    pub async fn drop_database(&self) {
        if let Ok(mut conn) = MySqlConnection::connect(&self.nodes[0]).await {
            let drop = format!("DROP DATABASE IF EXISTS `{}`", self.database);
            let _ = sqlx::raw_sql(&drop).execute(&mut conn).await;
            let _ = conn.close().await;
        }
    }
}
