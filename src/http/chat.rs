//! `GET /api/chat` (the user's own history) and `POST /api/chat` (a message and its
//! reply from the AI backend, stored in `chat_his`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::ai;
use crate::auth::user::{TenantUser, UserTx, read_row};
use crate::error::{ApiJson, ApiQuery, Error, Result, ResultExt};
use crate::state::AppState;
use crate::tenant_db::TenantTx;
use postgres_types::Type;

use crate::tenant_db::PreparedRead;

pub fn router() -> Router<AppState> {
    Router::new().route("/chat", get(history).post(send))
}

read_row! {
    #[derive(Debug, Serialize, utoipa::ToSchema)]
    pub struct ChatMessage {
        pub id: i64,
        pub message: String,
        pub reply: String,
        pub reg_dtm: chrono::DateTime<chrono::Utc>,
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// At most this many messages (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Only messages older than this id (for paging back).
    pub before_id: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatHistory {
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
}

/// The user's own messages, newest first (`chat_his.user_id` references `user_mst` with
/// `ON DELETE CASCADE`: a deleted user has none).
const HISTORY: PreparedRead = PreparedRead {
    name: "chat_history",
    params: &[Type::INT8, Type::INT8, Type::INT4],
    sql: "SELECT id, message, reply, reg_dtm FROM chat_his \
          WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
};

#[utoipa::path(get, path = "/api/chat", tag = "chat", params(HistoryQuery),
    responses((status = 200, body = ChatHistory), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn history(
    user: TenantUser,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<ChatHistory>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be between 1 and 200",
        ));
    }
    let mut messages: Vec<ChatMessage> =
        user.read_as(&HISTORY, &[q.before_id, Some(limit)]).await?;
    messages.reverse();
    Ok(Json(ChatHistory { messages }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SendMessage {
    #[schema(pattern = "\\S", max_length = 10000)]
    pub message: String,
}

#[utoipa::path(post, path = "/api/chat", tag = "chat", request_body = SendMessage,
    responses((status = 201, body = ChatMessage), (status = 401), (status = 403), (status = 422), (status = 502)),
    security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    user: TenantUser,
    ApiJson(body): ApiJson<SendMessage>,
) -> Result<(StatusCode, Json<ChatMessage>)> {
    let message = body.message.trim().to_owned();
    let n = message.chars().count();
    if n == 0 || n > 10_000 {
        return Err(Error::unprocessable(
            "invalid_field",
            "message must be 1 to 10000 characters",
        ));
    }
    let tenant = user.tenant.clone();
    let UserTx { user_id, db, .. } = user.begin().await?;
    // No pooled connection is held while the model thinks.
    db.commit().await?;
    let reply = ai::reply(&state.config, &state.http, &message).await?;
    let mut db = TenantTx::begin_on(state.tenant_db.writes.acquire(&tenant).await?).await?;
    let saved: ChatMessage = sqlx::query_as(
        "INSERT INTO chat_his (user_id, message, reply) VALUES ($1, $2, $3) \
         RETURNING id, message, reply, reg_dtm",
    )
    .bind(user_id)
    .bind(&message)
    .bind(&reply)
    .fetch_one(&mut *db)
    .await
    .on_constraint("chat_his_user_id_fkey", |_| {
        Error::unauthorized("user_not_found", "The user of this token no longer exists")
    })?;
    db.commit().await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
