//! Who calls the JSON API and the bundle server, and whether the policy lets them.
//!
//! Every route but health and metrics passes the policy gate, as every ledger RPC and
//! every dashboard request does: the caller's EdDSA bearer token is verified, then the
//! policy decides the request, named `/blindledger.controller.v1.Api/<Name>`, and the
//! decision is logged (and imported into the audit trail) before the handler runs. Its id
//! comes back in `x-decision-id`, on refusals too. The controller's own engine is built
//! from the `blindledger` bundle it serves, and rebuilt whenever another revision becomes
//! active (a push, a rollback): it enforces the rules every service enforces.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use blindledger_gate::{DbDecisionSink, PolicyGate, Principal, Resource, DECISION_ID_METADATA};
use blindledger_store::Db;

use super::AppState;
use crate::bundles::{build_engine, POLICY_BUNDLE};
use crate::controller::Controller;
use crate::error::ControllerError;

/// The policy's name for the controller's requests, before the request's own name.
pub const API_PREFIX: &str = "/blindledger.controller.v1.Api/";

/// The region the controller's decisions are labelled with: it serves every region.
const SERVICE_REGION: &str = "controller";

/// The authenticated caller of a request the policy allowed.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// How long the caller's token stays valid (unbounded for a caller without expiry).
    pub fn time_left(&self) -> std::time::Duration {
        self.0.time_left().unwrap_or(std::time::Duration::MAX)
    }

    /// Who is calling.
    pub fn subject(&self) -> &str {
        &self.0.subject
    }
}

/// Handlers take the caller the gate let through; a route without [`gated`] has none.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ControllerError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ControllerError::Unauthenticated("missing bearer token".into()))
    }
}

/// `route`, answered only when the policy allows request `name` to the caller.
pub fn gated(
    route: MethodRouter<AppState>,
    state: &AppState,
    name: &'static str,
) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn_with_state(
        state.clone(),
        move |State(state): State<AppState>, request: Request, next: Next| {
            check(state, name, request, next)
        },
    ))
}

async fn check(state: AppState, name: &'static str, mut request: Request, next: Next) -> Response {
    let principal = match authenticate(&state, request.headers()).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    let method = format!("{API_PREFIX}{name}");
    // The controller's data spans tenants: the request names no tenant or account.
    let authorized = match state
        .gate
        .authorize(&principal, &method, Resource::default())
        .await
    {
        Ok(authorized) => authorized,
        Err(refusal) => return ControllerError::Refused(refusal).into_response(),
    };
    request.extensions_mut().insert(Caller(principal));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&authorized.decision_id) {
        response.headers_mut().insert(DECISION_ID_METADATA, value);
    }
    response
}

/// The request's verified bearer token.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ControllerError> {
    let unauthenticated = |m: &str| ControllerError::Unauthenticated(m.to_string());
    let header = headers
        .get(AUTHORIZATION)
        .ok_or_else(|| unauthenticated("missing bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthenticated("malformed authorization header"))?;
    state.tokens.verify_async(token.trim()).await.map_err(|e| {
        if e.is_unavailable() {
            ControllerError::Unavailable(e.to_string())
        } else {
            unauthenticated(&e.to_string())
        }
    })
}

/// The controller's gate: decisions logged to `decision_log` through `db`, its engine
/// built from the served `blindledger` bundle now and again on every activation. Until a
/// `blindledger` bundle is served (none pushed, no `initial_policy_bundle`) every request
/// is refused with 503.
pub async fn policy_gate(controller: &Arc<Controller>, db: Db) -> PolicyGate {
    let gate = PolicyGate::new(SERVICE_REGION, Arc::new(DbDecisionSink::new(db)));
    let mut changes = controller.served().changes();
    follow(controller, &gate, None).await;
    let (controller, follower) = (Arc::clone(controller), gate.clone());
    tokio::spawn(async move {
        let mut installed = follower
            .revisions()
            .and_then(|r| r.get(POLICY_BUNDLE).cloned());
        while changes.changed().await.is_ok() {
            installed = follow(&controller, &follower, installed).await;
        }
    });
    gate
}

/// Installs an engine built from the served `blindledger` bundle unless its revision is
/// `installed`; returns the revision installed now. A bundle that does not build (it was
/// built and tested before it was activated, so this is not expected) keeps the previous
/// engine.
async fn follow(
    controller: &Controller,
    gate: &PolicyGate,
    installed: Option<String>,
) -> Option<String> {
    let Some(served) = controller.bundle(POLICY_BUNDLE) else {
        return installed;
    };
    let revision = served.revision().to_owned();
    if installed.as_deref() == Some(revision.as_str()) {
        return installed;
    }
    let bundle = served.bundle.clone();
    match tokio::task::spawn_blocking(move || build_engine(&[bundle])).await {
        Ok(Ok(engine)) => {
            gate.install(engine);
            tracing::info!(revision = %revision, "controller policy installed");
            Some(revision)
        }
        Ok(Err(error)) => {
            tracing::error!(revision = %revision, %error, "controller policy does not build; keeping the previous one");
            installed
        }
        Err(error) => {
            tracing::error!(%error, "controller policy build failed");
            installed
        }
    }
}
