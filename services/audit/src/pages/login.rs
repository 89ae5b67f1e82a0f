//! Signing in: a form taking the officer's token, kept in an HttpOnly cookie.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use blindledger_gate::{Principal, RefusalKind};
use maud::{html, Markup};
use serde::Deserialize;

use crate::access::decide;
use crate::auth::{cleared_cookie, forwarded_https, session_cookie};
use crate::error::AppError;
use crate::oidc::OidcError;
use crate::pages::layout::page;
use crate::state::AppState;

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The officer's access token.
    pub token: String,
}

fn form(error: Option<&str>, oidc: bool) -> Markup {
    page(
        "Sign in",
        "",
        None,
        html! {
            @if let Some(error) = error { p.deny id="login-error" { (error) } }
            @if oidc {
                p { a href="/login/oidc" id="sign-in-oidc" { "Sign in with your identity provider" } }
                p { "Or paste a token:" }
            }
            form method="post" action="/login" {
                label { "Access token " input type="password" name="token" id="token" autocomplete="off" size="60"; }
                " "
                button type="submit" id="sign-in" { "Sign in" }
            }
            p { "Use a token for the audit service with the auditor or admin role (blindledger token issue --audience audit)." }
        },
    )
}

/// `GET /login`.
pub async fn login_page(State(state): State<AppState>) -> Markup {
    form(None, state.oidc.is_some())
}

/// `POST /login`: checks the token and asks the policy whether its holder may sign in
/// (`SignIn`), then keeps it in the session cookie.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Response {
    let token = login.token.trim();
    let oidc = state.oidc.is_some();
    let form = |error: Option<&str>| form(error, oidc);
    let principal = match state.tokens.verify_async(token).await {
        Ok(principal) => principal,
        Err(err) if err.is_unavailable() => {
            tracing::warn!(
                reason = err.reason(),
                "sign-in not decided: signing keys unavailable"
            );
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                form(Some("Sign-in is unavailable for a moment; try again.")),
            )
                .into_response();
        }
        Err(err) => {
            tracing::info!(reason = err.reason(), "sign-in refused");
            return form(Some("This token is not valid.")).into_response();
        }
    };
    sign_in(&state, &headers, token, &principal, false).await
}

/// Asks the policy whether `principal` may sign in (`SignIn`) and, if so, keeps `token`
/// in the session cookie.
async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    principal: &Principal,
    from_provider: bool,
) -> Response {
    let secure = state.secure_cookies || forwarded_https(headers);
    match decide(state, principal, "SignIn").await {
        Ok(_) => {
            tracing::info!(officer = %principal.subject, "officer signed in");
            let session = session_cookie(token, secure, principal.time_left());
            if from_provider {
                // Back from the provider's site: the SameSite=Strict session cookie is only
                // sent once the browser navigates from a page of ours, so continue from one.
                // Appended: an array of header pairs would keep only the last cookie.
                let cookies = AppendHeaders([
                    (header::SET_COOKIE, session),
                    (header::SET_COOKIE, oidc_cookie("", secure, 0)),
                ]);
                let body = page(
                    "Signed in",
                    "",
                    None,
                    html! {
                        meta http-equiv="refresh" content="0;url=/";
                        p { "Signed in. " a href="/" id="continue" { "Continue to the dashboard" } }
                    },
                );
                return (cookies, body).into_response();
            }
            ([(header::SET_COOKIE, session)], Redirect::to("/")).into_response()
        }
        Err(AppError::Refused(refusal)) if refusal.kind() == RefusalKind::Denied => form(
            Some(&format!("Sign-in refused by policy: {}", refusal.message())),
            state.oidc.is_some(),
        )
        .into_response(),
        Err(other) => other.into_response(),
    }
}

/// The cookie carrying a sign-in's `state`, PKCE verifier and nonce to the callback: sent
/// back on the provider's top-level redirect (SameSite=Lax), only to `/login/`.
const OIDC_COOKIE: &str = "bl_audit_oidc";

fn oidc_cookie(value: &str, secure: bool, max_age: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{OIDC_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/login/; Max-Age={max_age}{secure}"
    )
}

/// `GET /login/oidc`: off to the identity provider.
pub async fn oidc_start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(oidc) = &state.oidc else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match oidc.start().await {
        Ok(started) => {
            let secure = state.secure_cookies || forwarded_https(&headers);
            (
                [(
                    header::SET_COOKIE,
                    oidc_cookie(&started.cookie, secure, crate::oidc::SIGN_IN_SECONDS),
                )],
                Redirect::to(&started.redirect),
            )
                .into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in through the identity provider not started");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                form(
                    Some("The identity provider is unavailable; try again."),
                    true,
                ),
            )
                .into_response()
        }
    }
}

/// The provider's redirect back: `code` and `state`, or `error`.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/callback`: finishes the sign-in started by [`oidc_start`].
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let Some(oidc) = &state.oidc else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let refused =
        |message: &str, status: StatusCode| (status, form(Some(message), true)).into_response();
    if callback.error.is_some() {
        return refused(
            "The identity provider did not sign you in.",
            StatusCode::UNAUTHORIZED,
        );
    }
    let cookie = crate::auth::cookie(&headers, OIDC_COOKIE);
    let finished = oidc
        .finish(
            callback.code.as_deref().unwrap_or_default(),
            callback.state.as_deref().unwrap_or_default(),
            cookie,
        )
        .await;
    match finished {
        Ok((token, principal)) => sign_in(&state, &headers, &token, &principal, true).await,
        Err(OidcError::Unavailable(error)) => {
            tracing::warn!(%error, "sign-in through the identity provider not finished");
            refused(
                "The identity provider is unavailable; try again.",
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
        Err(error) => {
            tracing::info!(%error, "sign-in through the identity provider refused");
            refused(&error.to_string(), StatusCode::UNAUTHORIZED)
        }
    }
}

/// `POST /logout`.
pub async fn logout() -> Response {
    (
        [(header::SET_COOKIE, cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}
