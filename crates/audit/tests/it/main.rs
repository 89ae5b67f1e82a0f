//! Integration tests of the audit trail against real databases: a SQLite file and a fresh
//! MariaDB database per test (`BLINDLEDGER_TEST_MYSQL_URL`, default
//! `mysql://root@127.0.0.1:3306`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod append;
mod helpers;
mod import;
mod perf;
mod retention;
mod tamper;
