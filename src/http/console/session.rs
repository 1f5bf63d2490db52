//! Signing in to and out of the console (`/api/console/session`); the session itself
//! is `auth::console_session`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::console_session::{self, Session};
use crate::auth::superadmin::verify_credential;
use crate::error::{ApiJson, Error, Result};
use crate::state::AppState;

/// `POST /api/console/session`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignIn {
    /// `SUPERADMIN_TOKEN`, or a JWT with role `superadmin` signed with `JWT_SECRET`.
    pub token: String,
}

/// The signed-in session as the page sees it (the cookie itself is `HttpOnly`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// Who signed in: `token` for the static token, else the JWT's subject.
    pub subject: String,
    pub expires_at: DateTime<Utc>,
    /// Send it as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: String,
}

impl From<&Session> for SessionInfo {
    fn from(s: &Session) -> Self {
        Self {
            subject: s.subject.clone(),
            expires_at: s.expires_at,
            csrf_token: s.csrf.clone(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedOut {
    pub signed_out: bool,
}

/// Signs in: checks the credential as the `SuperAdmin` guard does, then sets the
/// session cookie. The credential is never stored or logged.
#[utoipa::path(post, path = "/api/console/session", tag = "console",
    request_body = SignIn,
    responses((status = 200, body = SessionInfo, description = "Signed in; the session cookie is set"),
              (status = 401, description = "Not the superadmin token or a superadmin JWT"),
              (status = 403, description = "Sent from another site")))]
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response> {
    console_session::check_same_origin(&state.config, &headers)?;
    let Some(op) = verify_credential(&state.config, &state.jwt, &body.token) else {
        tracing::warn!("console sign-in refused: not a superadmin credential");
        return Err(Error::unauthorized(
            "invalid_superadmin_credentials",
            "This is not the superadmin token (or a superadmin JWT)",
        ));
    };
    // A session this browser still had ends: one sign-in, one session.
    if let Ok(Some(old)) = console_session::current(&state.config, &state.db, &headers).await {
        console_session::end(&state.config, &state.db, &old).await?;
    }
    let (session, token) = console_session::start(&state.config, &state.db, &op.subject).await?;
    tracing::info!(subject = %session.subject, session = %short(&session),
        "console session started");
    let https = console_session::is_https(&state.config, &headers);
    let max_age = (session.expires_at - Utc::now()).num_seconds().max(1);
    Ok((
        [(
            header::SET_COOKIE,
            console_session::set_cookie(&token, max_age, https),
        )],
        Json(SessionInfo::from(&session)),
    )
        .into_response())
}

/// The first characters of a session id, for logs.
fn short(s: &Session) -> String {
    s.id.simple().to_string()[..8].to_owned()
}

/// The current session (the page asks after a reload, for its CSRF token).
#[utoipa::path(get, path = "/api/console/session", tag = "console",
    responses((status = 200, body = SessionInfo),
              (status = 401, description = "Not signed in, or the session expired or was ended")))]
pub async fn current_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response> {
    let https = console_session::is_https(&state.config, &headers);
    match console_session::current(&state.config, &state.db, &headers).await {
        Ok(Some(s)) => Ok(Json(SessionInfo::from(&s)).into_response()),
        Ok(None) => Err(Error::unauthorized(
            "not_signed_in",
            "Not signed in to the console",
        )),
        // A cookie that no longer works is removed.
        Err(e @ Error::Unauthorized { .. }) => Ok((
            [(header::SET_COOKIE, console_session::clear_cookie(https))],
            e,
        )
            .into_response()),
        Err(e) => Err(e),
    }
}

/// Signs out: the session ends (on every replica) and the cookie is removed.
#[utoipa::path(delete, path = "/api/console/session", tag = "console",
    params(("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (required with a live session)")),
    responses((status = 200, body = SignedOut),
              (status = 403, description = "Missing or wrong X-CSRF-Token, or sent from another site")))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let https = console_session::is_https(&state.config, &headers);
    match console_session::current(&state.config, &state.db, &headers).await {
        Ok(Some(s)) => {
            console_session::check_same_origin(&state.config, &headers)?;
            console_session::check_csrf(&s, &headers)?;
            console_session::end(&state.config, &state.db, &s).await?;
            tracing::info!(subject = %s.subject, session = %short(&s), "console session ended");
        }
        // No session, or one that already ended: nothing to end; the cookie goes.
        Ok(None) | Err(Error::Unauthorized { .. }) => {}
        Err(e) => return Err(e),
    }
    Ok((
        [(header::SET_COOKIE, console_session::clear_cookie(https))],
        Json(SignedOut { signed_out: true }),
    )
        .into_response())
}
