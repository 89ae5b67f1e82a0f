//! Integration tests of the ledger service: real gRPC, real TFHE keys, real MariaDB (a
//! fresh database per test) and SQLite. One test binary, modules per capability.

// Test helpers panic on unexpected results, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aggregate;
mod bad_input;
mod cache;
mod chains;
mod concurrency;
mod conservation;
mod errors;
mod fresh;
mod gate;
mod health;
mod helpers;
mod least_privilege;
mod limits;
mod metrics;
mod mtls;
mod object_store;
mod pinning;
mod quotas;
mod reflection;
mod restart;
mod risk_loop;
