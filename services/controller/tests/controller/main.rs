//! Integration tests of the controller: real HTTP servers, real signed bundles, the real
//! policy engine and bundle loader, SQLite and MariaDB.

// Test helpers panic on unexpected results, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod helpers;
mod least_privilege;
mod mysql;
mod officers;
mod perf;
mod push;
mod risk_loop;
mod storage_errors;
