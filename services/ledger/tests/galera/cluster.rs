//! The local three-node cluster, driven through `deploy/galera/cluster.sh`.

use std::path::PathBuf;
use std::process::Command;

use sqlx::{Connection as _, MySqlConnection, Row as _};

/// The cluster script of this repository.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/galera/cluster.sh")
}

/// Runs `cluster.sh args…` and returns its standard output; panics with its error output.
/// The runtime's other threads keep serving the ledger meanwhile.
pub fn run(args: &[&str]) -> String {
    let command = || Command::new("bash").arg(script()).args(args).output();
    let output = tokio::task::block_in_place(command).expect("cluster.sh runs");
    assert!(
        output.status.success(),
        "cluster.sh {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A running cluster with a fresh database for one test.
pub struct Cluster {
    /// `mysql://root@127.0.0.1:PORT` of nodes 1, 2, 3.
    pub nodes: Vec<String>,
    /// The test database.
    pub database: String,
}

impl Cluster {
    /// Starts the cluster (a no-op when it runs) and creates a database on it.
    pub async fn start() -> Self {
        run(&["up"]);
        let nodes: Vec<String> = run(&["urls"]).split(',').map(str::to_owned).collect();
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
        Cluster { nodes, database }
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
