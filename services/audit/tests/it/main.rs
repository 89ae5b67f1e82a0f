//! Integration tests of the audit service: a real HTTP server over SQLite or MariaDB,
//! real tokens and officer keys, and a real headless Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod browser;
mod helpers;
mod least_privilege;
mod oidc;
mod pages;
mod perf;
