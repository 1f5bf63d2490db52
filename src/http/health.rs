//! `GET /api/health` (the resolved tenant, no database) and `GET /api/ready`.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenancy::ResolvedTenant;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

#[utoipa::path(get, path = "/api/health", tag = "health",
    params(("X-Tenant-ID" = Option<String>, Header, description = "The tenant, if any")),
    responses((status = 200, description = "Alive; echoes the resolved tenant"), (status = 400, body = crate::error::ErrorBody)))]
pub async fn health(Extension(resolved): Extension<ResolvedTenant>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "tenant_id": resolved.tenant.as_ref().map(|t| t.as_str()),
        "tenant_source": resolved.source,
    }))
}

#[utoipa::path(get, path = "/api/ready", tag = "health",
    responses((status = 200, description = "Postgres answers"), (status = 503, body = crate::error::ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>> {
    let ping = sqlx::query("SELECT 1").execute(&state.db);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready" }))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Error::unavailable(
                "database_unavailable",
                "The database is unavailable",
            ))
        }
        Err(_) => Err(Error::unavailable(
            "database_unavailable",
            "The database did not answer in time",
        )),
    }
}
