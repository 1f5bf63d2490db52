//! `POST /api/auth/login`, `POST /api/auth/setup-password`, `GET /api/auth/me`,
//! `POST /api/auth/logout`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::Acquire;

use crate::auth::jwt::{Claims, TOKEN_TTL_SECS};
use crate::auth::password;
use crate::auth::setup;
use crate::auth::user::{ME, TOKEN_COOKIE, TenantUser};
use crate::error::{ApiJson, Error, Result};
use crate::http::users::User;
use crate::state::AppState;
use crate::tenancy::guard::{ActiveTenant, check_status};
use crate::tenancy::{ResolvedTenant, TenantId};
use crate::tenant_db::TenantTx;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/setup-password", post(setup_password))
        .route("/auth/me", get(me))
        .route("/auth/logout", post(logout))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub tenant_id: String,
    pub user_id: i64,
    pub role: String,
}

/// Whether the client reached us over https (directly or through the proxy).
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_cookie(token: &str, max_age: i64, secure: bool) -> HeaderValue {
    let mut c =
        format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("token is URL-safe base64")
}

#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    ActiveTenant(tenant): ActiveTenant,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response> {
    state.login_throttle.check(tenant.as_str(), &body.email)?;
    let mut tx = TenantTx::begin_on(state.tenant_db.writes.acquire(&tenant).await?).await?;
    let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, role, password_hash FROM user_mst WHERE lower(email) = lower($1) ORDER BY id LIMIT 1",
    )
    .bind(body.email.trim())
    .fetch_optional(&mut *tx)
    .await?;
    // Release the connection before the deliberately slow hash check.
    tx.commit().await?;
    let stored = row.as_ref().and_then(|(_, _, h)| h.clone());
    let ok = password::verify(body.password, stored).await;
    let Some((user_id, role, _)) = row.filter(|_| ok) else {
        return Err(Error::unauthorized(
            "invalid_credentials",
            "Invalid email or password",
        ));
    };
    let now = chrono::Utc::now().timestamp();
    let token = state
        .jwt
        .issue(&Claims::new(user_id, tenant.as_str(), &role, now));
    let cookie = session_cookie(&token, TOKEN_TTL_SECS, is_https(&headers));
    let body = LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: TOKEN_TTL_SECS,
        tenant_id: tenant.to_string(),
        user_id,
        role,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetupPasswordRequest {
    /// The one-time token from the create response or the user invitation.
    #[schema(max_length = 128)]
    pub token: String,
    #[schema(min_length = 8, max_length = 256)]
    pub password: String,
}

#[utoipa::path(post, path = "/api/auth/setup-password", tag = "auth", request_body = SetupPasswordRequest,
    responses((status = 200), (status = 400), (status = 403), (status = 422)))]
pub async fn setup_password(
    State(state): State<AppState>,
    Extension(resolved): Extension<ResolvedTenant>,
    ApiJson(body): ApiJson<SetupPasswordRequest>,
) -> Result<Json<serde_json::Value>> {
    password::validate_new_password(&body.password)?;
    let invalid = || {
        Error::bad_request(
            "invalid_setup_token",
            "This setup link is invalid, expired or already used",
        )
    };
    if body.token.is_empty() || body.token.len() > 128 {
        return Err(invalid());
    }
    let central = &state.config.central_schema;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let (tenant, user_id) = setup::redeem(&mut tx, central, &body.token)
        .await?
        .ok_or_else(invalid)?;
    let tenant = TenantId::parse(&tenant).map_err(|_| invalid())?;
    if resolved.tenant.as_ref().is_some_and(|r| *r != tenant) {
        return Err(Error::forbidden(
            "tenant_mismatch",
            "This setup link belongs to another tenant",
        ));
    }
    check_status(&state.directory, &tenant).await?;
    // Only a valid token gets this far: the slow hash cannot be used to load the server.
    let hash = password::hash(body.password).await?;
    let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.user_mst SET password_hash = $1, updated_at = now() WHERE id = $2",
        tenant.quoted()
    )))
    .bind(hash)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(invalid());
    }
    tx.commit().await?;
    Ok(Json(
        json!({ "success": true, "tenant_id": tenant.as_str(), "user_id": user_id }),
    ))
}

#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    responses((status = 200, body = User), (status = 401), (status = 403)), security(("bearer" = [])))]
pub async fn me(user: TenantUser) -> Result<Json<User>> {
    let me: Vec<User> = user.read_as(&ME, &[]).await?;
    // `read_as` answers 401 when the user is gone, so the row is there.
    let me = me.into_iter().next().ok_or_else(|| {
        Error::unauthorized("user_not_found", "The user of this token no longer exists")
    })?;
    Ok(Json(me))
}

#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", responses((status = 200)))]
pub async fn logout(headers: HeaderMap) -> Response {
    let cookie = session_cookie("", 0, is_https(&headers));
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "success": true })),
    )
        .into_response()
}
