//! The BlindLedger controller: it learns who behaves unusually from operational metadata
//! and turns that into the `risk` bundle the services enforce; it also serves the
//! CI-pushed `blindledger` policy bundle, after checking it.
//!
//! - [`features`]: per account and per principal, from the decision log and job metadata
//!   over a window ending now and a baseline before it; never an amount.
//! - [`model`] and [`tier`]: an isolation forest per entity kind, scores mapped to tiers
//!   with hysteresis; models are kept in a registry table.
//! - [`risk_bundle`]: tiers and per-tier limits as a signed, revisioned OPA data bundle.
//! - [`push`], [`impact`], [`history`]: pushed policy is verified, tested and replayed
//!   against recent decisions before activation; revisions can be rolled back.
//! - [`alerts`]: Slack-compatible webhooks on escalations and refused bundles, through a
//!   persisted outbox delivered in the background.
//! - [`http`]: bundles (ETag, 304) and the JSON API; [`Application`] wires it all.

#![warn(missing_docs)]

pub mod admin;
pub mod alerts;
mod app;
pub mod bundles;
pub mod config;
mod controller;
pub mod cycle;
pub mod error;
pub mod features;
pub mod history;
pub mod http;
pub mod impact;
mod metrics;
pub mod model;
pub mod push;
mod push_report;
pub mod repo;
pub mod risk_bundle;
pub mod scores;
pub mod tier;

pub use app::Application;
pub use config::ControllerConfig;
pub use controller::Controller;
pub use cycle::CycleReport;
pub use error::ControllerError;
pub use features::{EntityKind, FeatureWindow, FEATURE_NAMES};
pub use tier::{RiskTier, TierLimits, TierThresholds};
