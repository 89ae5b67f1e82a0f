//! The audit service of BlindLedger: the compliance dashboard (server-rendered HTML with
//! live updates over Server-Sent Events), CSV export, chain verification and signed admin
//! commands over HTTP, plus the background importer and checkpoint signer.
//!
//! Routes are listed in [`routes::router`]. Nothing served reveals an amount or a
//! balance: the audit trail holds metadata only, and jobs are shown with the sizes of
//! their ciphertexts.

pub mod access;
mod api;
mod app;
pub mod auth;
mod config;
mod error;
pub mod live;
pub mod oidc;
mod pages;
pub mod queries;
pub mod routes;
mod state;

pub use app::Application;
pub use config::AuditConfig;
pub use error::AppError;
pub use state::AppState;
