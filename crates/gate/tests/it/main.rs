//! Integration tests of the gate: real keys, real signed bundles, no mocks.
// Helpers outside #[test] functions panic on setup failures too, as the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod auth_layer;
mod decisions;
mod download;
mod jwks;
mod loader;
mod risk_bundle;
mod shipping;
mod support;
