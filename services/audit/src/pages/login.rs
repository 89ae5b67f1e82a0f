//! Signing in: a form taking the officer's token, kept in an HttpOnly cookie.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use crate::access::decide;
use crate::auth::{cleared_cookie, forwarded_https, session_cookie};
use crate::error::AppError;
use crate::pages::layout::page;
use crate::state::AppState;

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The officer's access token.
    pub token: String,
}

fn form(error: Option<&str>) -> Markup {
    page(
        "Sign in",
        "",
        None,
        html! {
            @if let Some(error) = error { p.deny id="login-error" { (error) } }
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
pub async fn login_page() -> Markup {
    form(None)
}

/// `POST /login`: checks the token and asks the policy whether its holder may sign in
/// (`SignIn`), then keeps it in the session cookie.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(login): Form<LoginForm>,
) -> Response {
    let token = login.token.trim();
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
    match decide(&state, &principal, "SignIn").await {
        Ok(_) => {
            tracing::info!(officer = %principal.subject, "officer signed in");
            (
                [(
                    header::SET_COOKIE,
                    session_cookie(
                        token,
                        state.secure_cookies || forwarded_https(&headers),
                        principal.time_left(),
                    ),
                )],
                Redirect::to("/"),
            )
                .into_response()
        }
        Err(AppError::Denied { status, message }) if status == StatusCode::FORBIDDEN => {
            form(Some(&format!("Sign-in refused by policy: {message}"))).into_response()
        }
        Err(other) => other.into_response(),
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
