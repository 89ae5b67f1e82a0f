//! One module per group of verbs; each exposes its clap arguments and a `run` function.

pub mod account;
pub mod aggregate;
pub mod balance;
pub mod dev;
pub mod jobs;
pub mod keys;
pub mod money;
pub mod transfers;

use std::path::PathBuf;

use anyhow::Context as _;
use blindledger_client::LedgerClient;

use crate::home::Home;

/// What every client verb needs: where the ledger is and where local keys live.
#[derive(Debug, Clone)]
pub struct Context {
    /// The ledger's gRPC endpoint.
    pub endpoint: String,
    /// `--home`, when given.
    pub home: Option<PathBuf>,
}

impl Context {
    /// Connects to the ledger.
    pub async fn connect(&self) -> anyhow::Result<LedgerClient> {
        LedgerClient::connect(&self.endpoint)
            .await
            .with_context(|| format!("connecting to {}", self.endpoint))
    }

    /// Resolves the home directory.
    pub fn home(&self) -> anyhow::Result<Home> {
        Home::resolve(self.home.as_deref())
    }
}
