//! The request gate of blindledger services.
//!
//! - [`AuthLayer`] authenticates every gRPC request with an EdDSA JWT ([`TokenVerifier`])
//!   and hands the [`Principal`] to handlers through the request's extensions.
//! - [`PolicyGate`] decides each request with the installed [`blindledger_policy`] engine,
//!   failing closed, and records every decision through a [`DecisionSink`] before answering.
//! - [`BundleLoader`] keeps the engine up to date from signed bundle files, swapping it
//!   atomically and keeping the last good one on any failure.
//! - [`PolicySettings`] builds both from a service's configuration, logging decisions
//!   durably through [`DbDecisionSink`].

mod auth;
mod auth_layer;
mod client_tls;
mod error;
mod gate;
mod loader;
mod refusal;
mod setup;
mod ship;
mod sink;
pub mod status;

/// The token audience (`aud`) each service accepts by default: a token is for the services
/// it names, so one stolen from a dashboard session cannot move money, and one for the
/// ledger cannot read the audit trail.
pub mod audiences {
    /// The ledger's gRPC API.
    pub const LEDGER: &str = "blindledger-ledger";
    /// The audit service: dashboard and audit API.
    pub const AUDIT: &str = "blindledger-audit";
    /// The controller's API and bundle routes.
    pub const CONTROLLER: &str = "blindledger-controller";
    /// Every service, as the development stack's administrator token names them.
    pub const ALL: [&str; 3] = [LEDGER, AUDIT, CONTROLLER];
}

pub use auth::jwks::{Jwks, JwksTiming};
pub use auth::{generate_keypair, AuthError, ClaimNames, Principal, TokenIssuer, TokenVerifier};
pub use auth_layer::{AuthLayer, AuthService, CalledMethod, PeerGrant};
pub use client_tls::ClientTls;
pub use error::GateError;
pub use gate::{
    excerpt, principal, with_decision_id, Authorized, PolicyGate, Resource, MAX_RESOURCE_BYTES,
};
pub use loader::{BundleConfig, BundleLoader, BundleSource, BundleStatus};
pub use refusal::{Refusal, RefusalKind};
pub use setup::{read_key_files, PolicySettings, TokenSettings};
pub use ship::{ShipLimits, ShipTarget, ShippingSink};
pub use sink::{DbDecisionSink, DecisionSink, MemorySink};
pub use status::DECISION_ID_METADATA;
