//! The BlindLedger ledger service: tenants and keys, accounts, and asynchronous FHE jobs
//! (deposits, withdrawals, confidential transfers, aggregates) over encrypted balances.
//!
//! [`Application`] wires storage, the FHE executor, job workers and the gRPC server;
//! [`Ledger`] is the transport-agnostic core the gRPC adapter calls.

mod app;
mod cache;
mod compute;
mod config;
mod convert;
pub mod dev;
mod error;
mod feed;
mod grpc;
mod jobs;
mod keys;
mod ledger;
mod names;
mod policy;
mod queue;
mod totals;
mod worker;

pub use app::Application;
pub use cache::CacheStats;
pub use config::LedgerConfig;
pub use error::LedgerError;
pub use jobs::{JobKind, JobParams, JobRequest, PolicyLimits};
pub use keys::KeyUpload;
pub use ledger::{AccountLimits, JobResults, Ledger};
pub use names::AccountRef;
