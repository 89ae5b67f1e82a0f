//! Every dashboard and API request passes the policy gate, as every ledger RPC does: the
//! officer's token is verified, then the shipped policy decides the request, named
//! `/blindledger.audit.v1.Dashboard/<Name>`, and the decision is logged (and imported into
//! the audit trail) before the handler runs. Its id comes back in `x-decision-id`.

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::MethodRouter;
use blindledger_gate::{Principal, Resource, DECISION_ID_METADATA};

use crate::auth::{request_token, Officer};
use crate::error::AppError;
use crate::state::AppState;

/// The policy's name for the dashboard's requests, before the request's own name.
pub const DASHBOARD_PREFIX: &str = "/blindledger.audit.v1.Dashboard/";

/// Who a route answers: a browser is sent to the sign-in page, an API caller gets 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An HTML page.
    Browser,
    /// JSON, CSV or an event stream.
    Api,
}

/// `route`, answered only when the policy allows `name` to the signed-in officer.
pub fn gated(
    route: MethodRouter<AppState>,
    state: &AppState,
    name: &'static str,
    caller: Caller,
) -> MethodRouter<AppState> {
    route.route_layer(middleware::from_fn_with_state(
        state.clone(),
        move |State(state): State<AppState>, request: Request, next: Next| {
            check(state, name, caller, request, next)
        },
    ))
}

async fn check(
    state: AppState,
    name: &'static str,
    caller: Caller,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match authenticate(&state, request.headers()).await {
        Ok(principal) => principal,
        Err(_) if caller == Caller::Browser => return Redirect::to("/login").into_response(),
        Err(error) => return error.into_response(),
    };
    let decision_id = match decide(&state, &principal, name).await {
        Ok(decision_id) => decision_id,
        Err(error) => return error.into_response(),
    };
    request.extensions_mut().insert(Officer(principal));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&decision_id) {
        response.headers_mut().insert(DECISION_ID_METADATA, value);
    }
    response
}

/// The request's verified token.
async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, AppError> {
    let token = request_token(headers).ok_or(AppError::Unauthenticated)?;
    let verified = match (state.tokens.verify_async(token).await, &state.oidc) {
        // A session made from the identity provider's ID token (its issuer and audience).
        (Err(err), Some(oidc)) if !err.is_unavailable() => oidc.verify(token).await,
        (verified, _) => verified,
    };
    verified.map_err(|err| {
        tracing::debug!(reason = err.reason(), "sign-in token refused");
        if err.is_unavailable() {
            // Whether the token is valid is unknown: retry later, not sign in again.
            AppError::KeysUnavailable
        } else {
            AppError::Unauthenticated
        }
    })
}

/// Asks the gate; the decision id when allowed.
pub async fn decide(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<String, AppError> {
    let method = format!("{DASHBOARD_PREFIX}{name}");
    // The dashboard reads across tenants: the request names no tenant or account.
    match state
        .gate
        .authorize(principal, &method, Resource::default())
        .await
    {
        Ok(authorized) => Ok(authorized.decision_id),
        Err(refusal) => Err(AppError::Refused(refusal)),
    }
}
