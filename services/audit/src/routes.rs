//! The HTTP routes, in one place, each with the name the policy decides it under
//! (`/blindledger.audit.v1.Dashboard/<Name>`, see [`crate::access`]).

use axum::routing::{get, post};
use axum::Router;

use crate::access::{gated, Caller};
use crate::api;
use crate::pages::{attention, bundles, decisions, login, overview, risk, transactions};
use crate::state::AppState;

/// Every route of the audit service.
pub fn router(state: AppState) -> Router {
    let page = |route, name| gated(route, &state, name, Caller::Browser);
    let api = |route, name| gated(route, &state, name, Caller::Api);
    Router::new()
        // Dashboard pages: without a session the browser is sent to /login.
        .route("/", page(get(overview::overview_page), "Overview"))
        .route("/decisions", page(get(decisions::decisions), "Decisions"))
        .route(
            "/transactions",
            page(get(transactions::transactions), "Transactions"),
        )
        .route(
            "/transactions/{id}",
            page(get(transactions::transaction), "Transaction"),
        )
        .route(
            "/attention",
            page(get(attention::attention_page), "Attention"),
        )
        .route("/risk", page(get(risk::risk_page), "Risk"))
        .route("/bundles", page(get(bundles::bundles_page), "Bundles"))
        // Signing in asks the policy itself (`SignIn`) with the offered token.
        .route("/login", get(login::login_page).post(login::login))
        // OpenID Connect, when configured: off to the provider, and back.
        .route("/login/oidc", get(login::oidc_start))
        .route("/login/callback", get(login::oidc_callback))
        .route("/logout", post(login::logout))
        // Data, by bearer token or session cookie.
        .route("/export.csv", api(get(api::export_csv), "Export"))
        .route("/events", api(get(api::events), "Events"))
        .route("/api/audit/verify", api(get(api::verify), "Verify"))
        .route(
            "/api/audit/checkpoints",
            api(get(api::checkpoints), "Checkpoints"),
        )
        .route("/api/policy-data", api(get(api::policy_data), "PolicyData"))
        // Signed admin commands: the policy's permission, and the officer's signature inside.
        .route(
            "/api/admin/command",
            api(post(api::admin_command), "AdminCommand"),
        )
        // Probes.
        .route("/healthz", get(api::health))
        .route("/metrics", get(api::metrics))
        // Each request's span, in its caller's trace, named by its route.
        .route_layer(axum::middleware::from_fn(
            blindledger_telemetry::traces::trace_http,
        ))
        .with_state(state)
}
