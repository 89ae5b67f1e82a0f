//! The policy gate of blindledger: OPA-format bundles, their signatures, and decisions by
//! the embedded Rego engine [regorus].
//!
//! - [`Bundle`] reads and writes OPA bundles (`.tar.gz` or a directory), with size limits
//!   and path sanitising for archives from the network.
//! - [`sign_bundle`] and [`BundleVerifier`] produce and check `.signatures.json` exactly as
//!   `opa build --signing-key` and OPA's bundle plugin do (EdDSA only).
//! - [`PolicyEngine`] compiles bundles, checks their roots, and decides each request from
//!   `data.blindledger.authz.decision`, failing closed.
//! - [`DecisionEvent`] is OPA's decision-log event; [`PolicyEngine::mask`] applies
//!   `system.log.mask` to it.
//! - [`run_tests`] runs `test_*` rules with coverage, like `opa test --coverage`.
//!
//! regorus has no bundle loader, signatures, decision logs or test runner: those are the
//! parts written here, each following OPA's documented behaviour.

#![warn(missing_docs)]

pub mod bundle;
mod canonical;
pub mod decision_log;
pub mod engine;
mod error;
pub mod jose;
mod mask;
mod roots;
mod rules;
pub mod signing;
pub mod testing;
pub mod vm;

pub use bundle::{Bundle, BundleLimits, Manifest, SignaturesFile};
pub use decision_log::{BundleRevision, DecisionEvent};
pub use engine::{Decision, Evaluator, Obligations, PolicyEngine};
pub use error::{BundleError, PolicyError};
pub use signing::{sign_bundle, BundleVerifier, SigningKey};
pub use testing::{run_tests, Coverage, FileCoverage, TestReport, TestResult};
