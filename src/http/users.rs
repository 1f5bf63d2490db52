//! `GET /api/users`, `POST /api/users`: the tenant's `user_mst`.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::FromRow;

use crate::auth::user::TenantUser;
use crate::error::Result;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/users", get(list))
}

#[derive(Debug, Serialize, FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub tenant_id: String,
    pub users: Vec<User>,
}

#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401), (status = 403), (status = 404), (status = 410)),
    security(("bearer" = [])))]
pub async fn list(mut user: TenantUser) -> Result<Json<UserList>> {
    let users: Vec<User> = sqlx::query_as(
        "SELECT id, email, name, role, created_at FROM user_mst ORDER BY id LIMIT 1000",
    )
    .fetch_all(&mut *user.db)
    .await?;
    let tenant_id = user.db.tenant().to_string();
    user.db.commit().await?;
    Ok(Json(UserList { tenant_id, users }))
}
