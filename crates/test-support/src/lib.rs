//! Helpers shared by BlindLedger's integration tests (use it as a dev-dependency).
//!
//! * [`TestDatabase`]: a fresh, isolated MariaDB database or SQLite file per test;
//! * [`TestUser`]: a MariaDB user with a random password, holding only the privileges a test
//!   grants it;
//! * [`TestKeys`]: one TFHE key set per `target/` directory, generated once and cached on disk;
//! * [`BundleServer`]: an HTTP bundle server with ETags, for bundle polling;
//! * [`webhook::Receiver`]: an incoming-webhook receiver recording what alerts it gets;
//! * [`metadata`]: synthetic operational metadata (decision-log and job rows) for the
//!   controller's risk engine;
//! * [`eventually`], [`until`] and [`until_blocking`]: the one polling loop, with a deadline, for states a test
//!   cannot be notified of;
//! * [`Pki`]: a throwaway certificate authority issuing server and client certificates;
//! * [`SpanCollector`]: an OTLP/gRPC trace collector keeping every span it is sent;
//! * [`TcpProxy`]: a loopback TCP proxy whose traffic a test can cut and restore, to make a
//!   dependency "go down" and "come back" without touching the shared server.
//!
//! MariaDB tests read the server URL from [`MYSQL_URL_ENV`]; `scripts/test.sh` starts a
//! private server when none is reachable and exports it. Tests fail loudly when it is missing.

mod bundle_server;
mod db;
mod keys;
pub mod log_collector;
pub mod metadata;
mod pki;
mod proxy;
mod serve;
mod span_collector;
mod users;
mod wait;
pub mod webhook;

pub use bundle_server::{BundleServer, BundleServerStats};
pub use db::{TestDatabase, DEFAULT_MYSQL_URL, MYSQL_URL_ENV};
pub use keys::TestKeys;
pub use log_collector::LogCollector;
pub use pki::Pki;
pub use proxy::{mysql_socket_addr, mysql_url_via, TcpProxy};
pub use rcgen::{ExtendedKeyUsagePurpose, SanType};
pub use span_collector::{ExportedSpan, SpanCollector};
pub use users::TestUser;
pub use wait::{eventually, holds_within, until, until_blocking};
