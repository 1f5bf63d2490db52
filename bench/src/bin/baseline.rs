//! The baseline server: `GET /api/users` answers the same 20 rows as mtpaas from one
//! fixed schema, with a prepared query over a pool of 20, no tenancy and no auth.
//! It is what axum + sqlx + Postgres cost on this machine without mtpaas's work.

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;
use sqlx::{FromRow, PgPool};

#[derive(Serialize, FromRow)]
struct User {
    id: i64,
    email: String,
    name: String,
    role: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct UserList {
    tenant_id: &'static str,
    users: Vec<User>,
}

#[derive(Clone)]
struct AppState {
    pool: PgPool,
    query: &'static str,
}

async fn users(State(s): State<AppState>) -> Result<Json<UserList>, (axum::http::StatusCode, String)> {
    let users: Vec<User> = sqlx::query_as(s.query)
        .fetch_all(&s.pool)
        .await
        .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(UserList {
        tenant_id: "bench_base",
        users,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let port: u16 = std::env::var("PORT").unwrap_or_else(|_| "18090".into()).parse()?;
    let schema = std::env::var("BASE_SCHEMA").unwrap_or_else(|_| "bench_base".into());
    anyhow::ensure!(
        schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "BASE_SCHEMA must be a plain lower-case identifier"
    );
    let query: &'static str = Box::leak(
        format!("SELECT id, email, name, role, created_at FROM {schema}.user_mst ORDER BY id LIMIT 1000")
            .into_boxed_str(),
    );
    // Like mtpaas's pool: 20 connections, no ping before each acquire.
    let opts: sqlx::postgres::PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .test_before_acquire(false)
        .connect_with(opts.application_name("bench-baseline"))
        .await?;
    let app = Router::new()
        .route("/api/users", get(users))
        .route("/api/ready", get(|| async { "ok" }))
        .with_state(AppState { pool, query });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
