//! The HTTP routes, in one place.

use axum::routing::{get, post};
use axum::Router;

use crate::api;
use crate::pages::{attention, bundles, decisions, login, overview, risk, transactions};
use crate::state::AppState;

/// Every route of the audit service.
pub fn router(state: AppState) -> Router {
    Router::new()
        // Dashboard pages: signed-in officers (auditor or admin), else to /login.
        .route("/", get(overview::overview_page))
        .route("/decisions", get(decisions::decisions))
        .route("/transactions", get(transactions::transactions))
        .route("/transactions/{id}", get(transactions::transaction))
        .route("/attention", get(attention::attention_page))
        .route("/risk", get(risk::risk_page))
        .route("/bundles", get(bundles::bundles_page))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        // Data: the same officers, by bearer token or session cookie.
        .route("/export.csv", get(api::export_csv))
        .route("/events", get(api::events))
        .route("/api/audit/verify", get(api::verify))
        .route("/api/audit/checkpoints", get(api::checkpoints))
        .route("/api/policy-data", get(api::policy_data))
        // Signed admin commands: the admin role, and the officer's signature inside.
        .route("/api/admin/command", post(api::admin_command))
        // Probes.
        .route("/healthz", get(api::health))
        .route("/metrics", get(api::metrics))
        .with_state(state)
}
