//! `GET /api/users` (any user of the tenant), `POST /api/users` and
//! `DELETE /api/users/{id}` (admins): the tenant's `user_mst`.

use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::user::{TenantUser, UserTx, read_row};
use crate::auth::{password, setup};
use crate::error::{ApiJson, ApiPath, Error, Result, ResultExt};
use crate::http::tenants::valid_email;
use crate::state::AppState;
use postgres_types::Type;

use crate::tenant_db::PreparedRead;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", delete(remove))
}

read_row! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct User {
        pub id: i64,
        pub email: String,
        pub name: String,
        pub role: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    pub tenant_id: String,
    pub users: Vec<User>,
}

/// The tenant's users, lowest ids first. `$1` (the signed-in user) only keeps the
/// shape of a user read: the handler finds the user among the rows instead.
const LIST: PreparedRead = PreparedRead {
    name: "users",
    params: &[Type::INT8],
    sql: "SELECT id, email, name, role, created_at FROM user_mst \
          WHERE $1 IS NOT NULL ORDER BY id LIMIT 1000",
};
const LIST_LIMIT: usize = 1000;

#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = UserList), (status = 401), (status = 403), (status = 404), (status = 410)),
    security(("bearer" = [])))]
pub async fn list(user: TenantUser) -> Result<Json<UserList>> {
    let users: Vec<User> = user.read_unchecked_as(&LIST, &[]).await?;
    // The user must still exist: found among the rows, or (past the first
    // `LIST_LIMIT`) checked on their own.
    if !users.iter().any(|u| u.id == user.user_id) {
        if users.len() < LIST_LIMIT {
            return Err(Error::unauthorized(
                "user_not_found",
                "The user of this token no longer exists",
            ));
        }
        user.ensure_exists().await?;
    }
    Ok(Json(UserList {
        tenant_id: user.tenant.to_string(),
        users,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    #[schema(format = Email, max_length = 200)]
    pub email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: String,
    /// `member` (default) or `admin`.
    #[schema(pattern = "^(member|admin)$")]
    pub role: Option<String>,
    /// Without one, the response carries a one-time setup token for the user.
    #[schema(min_length = 8, max_length = 256)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedUser {
    pub user: User,
    pub setup_token: Option<String>,
    pub setup_url: Option<String>,
}

fn require_admin(user: &UserTx) -> Result<()> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "admin_required",
            "Only an admin of this tenant may do this",
        ))
    }
}

#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = CreatedUser), (status = 401), (status = 403), (status = 409), (status = 422)),
    security(("bearer" = [])))]
pub async fn create(
    axum::extract::State(state): axum::extract::State<AppState>,
    user: TenantUser,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>)> {
    let mut user = user.begin().await?;
    require_admin(&user)?;
    let email = body.email.trim().to_lowercase();
    if email.chars().count() > 200 || !valid_email(&email) {
        return Err(Error::unprocessable(
            "invalid_field",
            "email is not an email address",
        ));
    }
    let name = body.name.trim().to_owned();
    if name.chars().count() > 100 {
        return Err(Error::unprocessable(
            "invalid_field",
            "name is longer than 100 characters",
        ));
    }
    let role = body.role.unwrap_or_else(|| "member".into());
    if role != "member" && role != "admin" {
        return Err(Error::unprocessable(
            "invalid_field",
            "role must be 'member' or 'admin'",
        ));
    }
    let hash = match body.password {
        Some(p) => {
            password::validate_new_password(&p)?;
            Some(password::hash(p).await?)
        }
        None => None,
    };
    let created: User = sqlx::query_as(
        "INSERT INTO user_mst (email, name, role, password_hash) VALUES ($1, $2, $3, $4) \
         RETURNING id, email, name, role, created_at",
    )
    .bind(&email)
    .bind(&name)
    .bind(&role)
    .bind(&hash)
    .fetch_one(&mut *user.db)
    .await
    .on_constraint("user_mst_email_key", |_| {
        Error::conflict("user_exists", "A user with this email already exists")
    })?;
    let tenant = user.db.tenant().clone();
    let setup_token = match hash {
        Some(_) => None,
        None => Some(
            setup::issue(
                &mut user.db,
                &state.config.central_schema,
                &tenant,
                created.id,
            )
            .await?,
        ),
    };
    user.db.commit().await?;
    let setup_url = setup_token
        .as_deref()
        .map(|t| setup::setup_url(&state.config.public_base_url, &tenant, t));
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            user: created,
            setup_token,
            setup_url,
        }),
    ))
}

#[utoipa::path(delete, path = "/api/users/{id}", tag = "users",
    params(("id" = i64, Path)),
    responses((status = 200), (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn remove(
    user: TenantUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<serde_json::Value>> {
    let mut user = user.begin().await?;
    require_admin(&user)?;
    if id == user.user_id {
        return Err(Error::bad_request(
            "cannot_delete_self",
            "An admin cannot delete their own account",
        ));
    }
    let deleted = sqlx::query("DELETE FROM user_mst WHERE id = $1")
        .bind(id)
        .execute(&mut *user.db)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::not_found("user_not_found", "No such user"));
    }
    user.db.commit().await?;
    Ok(Json(
        serde_json::json!({ "success": true, "deleted_user_id": id }),
    ))
}
