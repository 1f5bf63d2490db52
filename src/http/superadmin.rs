//! The operator's API under `/api/tenant/superadmin` (seed 5.2, 8.1.1, 9.2): list and
//! inspect tenants, their history and usage, suspend / reinstate / delete them, and the
//! market's applications. Every handler takes the `SuperAdmin` guard first.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::auth::superadmin::SuperAdmin;
use crate::error::{ApiPath, ApiQuery, Error, Result};
use crate::market::db::{self as market, Application};
use crate::state::AppState;
use crate::tenancy::directory::tenants_table;
use crate::tenancy::lifecycle::{self, MAX_REASON_CHARS, TENANT_COLUMNS, TenantRow};
use crate::tenancy::{TenantId, TenantStatus};
use crate::tenant_db::TenantTx;
use crate::usage::{self, ApiCalls};

/// The actor operator actions write in the history.
pub const ACTOR: &str = "superadmin";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenant/superadmin/tenants", get(list))
        .route("/tenant/superadmin/tenants/{id}", get(one))
        .route("/tenant/superadmin/tenants/{id}/history", get(history))
        .route("/tenant/superadmin/tenants/{id}/usage", get(usage_of))
        .route("/tenant/superadmin/tenants/{id}/suspend", post(suspend))
        .route("/tenant/superadmin/tenants/{id}/reinstate", post(reinstate))
        .route("/tenant/superadmin/tenants/{id}/delete", post(delete))
        .route("/tenant/superadmin/applications", get(applications))
}

fn tenant_id(state: &AppState, raw: &str) -> Result<TenantId> {
    state
        .config
        .parse_tenant(raw)
        .map_err(|e| Error::bad_request("invalid_tenant_id", format!("Invalid tenant id: {e}")))
}

fn not_found(id: &TenantId) -> Error {
    Error::not_found("tenant_not_found", format!("Tenant {id} not found"))
}

async fn load(state: &AppState, id: &TenantId) -> Result<TenantRow> {
    let mut conn = state.db.acquire().await?;
    lifecycle::get(&mut conn, &state.config.central_schema, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn bad_query(detail: impl Into<String>) -> Error {
    Error::bad_request("invalid_query", detail)
}

/// `?status=&q=&limit=&offset=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `active`, `suspended`, `deleted` or `purged`.
    pub status: Option<String>,
    /// Part of the id, name or admin email (case-insensitive).
    pub q: Option<String>,
    /// 0–500, default 50.
    #[param(minimum = 0, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantRow>,
    /// Tenants matching the filters, regardless of `limit`/`offset`.
    pub total: i64,
}

#[utoipa::path(get, path = "/api/tenant/superadmin/tenants", tag = "superadmin",
    params(ListParams),
    responses((status = 200, body = TenantList), (status = 400), (status = 401)),
    security(("bearer" = [])))]
pub async fn list(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<TenantList>> {
    let status = match p.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(TenantStatus::parse(s).ok_or_else(|| {
            bad_query(format!(
                "status must be active, suspended, deleted or purged, not {s:?}"
            ))
        })?),
    };
    let q = p.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(bad_query("q is longer than 200 characters"));
    }
    let limit = p.limit.unwrap_or(50);
    if !(0..=500).contains(&limit) {
        return Err(bad_query("limit must be between 0 and 500"));
    }
    let offset = p.offset.unwrap_or(0);
    if offset < 0 {
        return Err(bad_query("offset must not be negative"));
    }
    let table = tenants_table(&state.config.central_schema);
    let filter = "($1::varchar IS NULL OR status = $1) AND ($2::varchar IS NULL \
                  OR tenant_id ILIKE $2 OR tenant_name ILIKE $2 OR admin_email ILIKE $2)";
    let status = status.map(|s| s.as_str());
    // `\` is the escape character `ILIKE` takes by default.
    let pattern = q.map(|q| market::like_contains(q, '\\'));
    let tenants: Vec<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TENANT_COLUMNS} FROM {table} WHERE {filter} \
         ORDER BY created_at DESC NULLS LAST, tenant_id LIMIT $3 OFFSET $4"
    )))
    .bind(status)
    .bind(&pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.db)
    .await?;
    let (total,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE {filter}"
    )))
    .bind(status)
    .bind(&pattern)
    .fetch_one(&state.db)
    .await?;
    Ok(Json(TenantList { tenants, total }))
}

#[utoipa::path(get, path = "/api/tenant/superadmin/tenants/{id}", tag = "superadmin",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$")),
    responses((status = 200, body = TenantView), (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn one(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TenantView>> {
    let id = tenant_id(&state, &id)?;
    let tenant = load(&state, &id).await?;
    let node = crate::cluster::node_of(&state.db, &id).await?;
    Ok(Json(TenantView { tenant, node }))
}

/// One tenant as operators see it: its registry row and, on Citus, its node.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    #[serde(flatten)]
    pub tenant: TenantRow,
    /// On a Citus cluster, the node (`host:port`) that holds the tenant's schema;
    /// absent on a single Postgres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Serialize, FromRow, utoipa::ToSchema)]
pub struct HistoryEvent {
    pub event: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub detail: String,
}

/// A row of the tenant-with-events join: all `NULL` for a tenant without events.
#[derive(FromRow)]
struct MaybeEvent {
    event: Option<String>,
    at: Option<DateTime<Utc>>,
    actor: Option<String>,
    detail: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub tenant_id: String,
    /// Oldest first.
    pub events: Vec<HistoryEvent>,
}

#[utoipa::path(get, path = "/api/tenant/superadmin/tenants/{id}/history", tag = "superadmin",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$")),
    responses((status = 200, body = History), (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn history(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<History>> {
    let id = tenant_id(&state, &id)?;
    let central = state.config.central_schema.quoted();
    // The tenant's row and its events in one statement; no row → unknown tenant.
    let rows: Vec<MaybeEvent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT e.event, e.at, e.actor, e.detail \
             FROM {central}.tenants t \
             LEFT JOIN {central}.tenant_events e ON e.tenant_id = t.tenant_id \
             WHERE t.tenant_id = $1 ORDER BY e.id"
    )))
    .bind(id.as_str())
    .fetch_all(&state.db)
    .await?;
    if rows.is_empty() {
        return Err(not_found(&id));
    }
    let events = rows
        .into_iter()
        .filter_map(|r| {
            Some(HistoryEvent {
                event: r.event?,
                at: r.at?,
                actor: r.actor?,
                detail: r.detail.unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(History {
        tenant_id: id.to_string(),
        events,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Days of `per_day` (1–366, default 30).
    #[param(minimum = 1, maximum = 366)]
    pub days: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Usage {
    /// `null` when the tenant's schema is gone (purged).
    pub user_count: Option<i64>,
    pub chat_count: Option<i64>,
    /// The latest `chat_his.reg_dtm`.
    pub last_activity: Option<DateTime<Utc>>,
    pub api_calls: ApiCalls,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantUsage {
    pub tenant_id: String,
    pub status: String,
    pub usage: Usage,
}

#[utoipa::path(get, path = "/api/tenant/superadmin/tenants/{id}/usage", tag = "superadmin",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$"), UsageParams),
    responses((status = 200, body = TenantUsage), (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn usage_of(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<UsageParams>,
) -> Result<Json<TenantUsage>> {
    let id = tenant_id(&state, &id)?;
    let days = p.days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(bad_query("days must be between 1 and 366"));
    }
    let row = load(&state, &id).await?;
    // Operators look at suspended and deleted tenants too: read the schema whatever
    // the status, unless it is gone.
    let counts = if row.status == TenantStatus::Purged.as_str() {
        None
    } else {
        tenant_counts(&state, &id).await?
    };
    let api_calls = usage::api_calls(&state.db, &state.config.central_schema, &id, days).await?;
    let (user_count, chat_count, last_activity) = match counts {
        Some((u, c, l)) => (Some(u), Some(c), l),
        None => (None, None, None),
    };
    Ok(Json(TenantUsage {
        tenant_id: id.to_string(),
        status: row.status,
        usage: Usage {
            user_count,
            chat_count,
            last_activity,
            api_calls,
        },
    }))
}

/// Seed 8.1.1's three figures, read in the tenant's schema. `None`: no such schema.
async fn tenant_counts(
    state: &AppState,
    id: &TenantId,
) -> Result<Option<(i64, i64, Option<DateTime<Utc>>)>> {
    let mut tx = TenantTx::begin(&state.db, id).await?;
    let read = sqlx::query_as::<_, (i64, i64, Option<DateTime<Utc>>)>(
        "SELECT (SELECT count(*) FROM user_mst), (SELECT count(*) FROM chat_his), \
                (SELECT max(reg_dtm) FROM chat_his)",
    )
    .fetch_one(&mut *tx)
    .await;
    match read {
        Ok(counts) => {
            tx.commit().await?;
            Ok(Some(counts))
        }
        // undefined_table / invalid_schema_name: the schema (or its tables) is gone.
        Err(sqlx::Error::Database(d))
            if matches!(d.code().as_deref(), Some("42P01") | Some("3F000")) =>
        {
            tx.rollback().await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The optional body of the actions: `{"reason": "..."}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ActionRequest {
    pub reason: Option<String>,
}

/// Parses the optional body: empty → no reason; otherwise JSON with a string `reason`.
fn action_request(body: &Bytes) -> Result<ActionRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionRequest::default());
    }
    let req: ActionRequest = serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            Error::unprocessable("invalid_body", format!("Invalid body: {e}"))
        } else {
            Error::bad_request("malformed_json", format!("Malformed JSON: {e}"))
        }
    })?;
    if req
        .reason
        .as_deref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(Error::unprocessable(
            "invalid_field",
            format!("reason is longer than {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(req)
}

async fn act(
    state: &AppState,
    raw_id: &str,
    body: &Bytes,
    to: TenantStatus,
) -> Result<Json<TenantRow>> {
    let id = tenant_id(state, raw_id)?;
    let req = action_request(body)?;
    let row = lifecycle::set_status(
        &state.db,
        &state.config.central_schema,
        &id,
        to,
        lifecycle::Cause::new(ACTOR, req.reason.as_deref()),
    )
    .await?;
    state.directory.set(&id, to);
    tracing::info!(tenant_id = %id, status = to.as_str(), "tenant status set by superadmin");
    Ok(Json(row))
}

// The three status actions: the same body, answers and work, to another status.
macro_rules! action {
    ($name:ident, $path:literal, $to:expr) => {
        #[utoipa::path(post, path = $path, tag = "superadmin",
            params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$")),
            request_body = ActionRequest,
            responses((status = 200, body = TenantRow), (status = 401), (status = 404), (status = 409)),
            security(("bearer" = [])))]
        pub async fn $name(
            _op: SuperAdmin,
            State(state): State<AppState>,
            ApiPath(id): ApiPath<String>,
            body: Bytes,
        ) -> Result<Json<TenantRow>> {
            act(&state, &id, &body, $to).await
        }
    };
}

action!(
    suspend,
    "/api/tenant/superadmin/tenants/{id}/suspend",
    TenantStatus::Suspended
);
action!(
    reinstate,
    "/api/tenant/superadmin/tenants/{id}/reinstate",
    TenantStatus::Active
);
action!(
    delete,
    "/api/tenant/superadmin/tenants/{id}/delete",
    TenantStatus::Deleted
);

/// `?limit=&offset=` of the applications list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationParams {
    /// 1–1000, default 200.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// The tenant created for an application.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApplicationTenant {
    pub tenant_id: String,
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationWithTenant {
    #[serde(flatten)]
    pub application: Application,
    /// The tenant created for this application (`null`: none yet). With several, the
    /// live one (active, then suspended, then the newest).
    pub tenant: Option<ApplicationTenant>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplicationList {
    pub applications: Vec<ApplicationWithTenant>,
}

#[utoipa::path(get, path = "/api/tenant/superadmin/applications", tag = "superadmin",
    params(ApplicationParams),
    responses((status = 200, body = ApplicationList), (status = 401), (status = 503)),
    security(("bearer" = [])))]
pub async fn applications(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ApplicationParams>,
) -> Result<Json<ApplicationList>> {
    let limit = p.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(bad_query("limit must be between 1 and 1000"));
    }
    let offset = p.offset.unwrap_or(0);
    if offset < 0 {
        return Err(bad_query("offset must not be negative"));
    }
    let apps = market::applications(
        state.market.as_ref(),
        state.config.market_timeout,
        &state.config.market_service_title,
        limit,
        offset,
    )
    .await?;

    let ids: Vec<i32> = apps
        .iter()
        .filter_map(|a| i32::try_from(a.id).ok())
        .collect();
    let rows: Vec<(i32, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT application_id, tenant_id, status FROM {} WHERE application_id = ANY($1) \
         ORDER BY application_id, \
                  CASE status WHEN 'active' THEN 0 WHEN 'suspended' THEN 1 ELSE 2 END, \
                  created_at DESC NULLS LAST",
        tenants_table(&state.config.central_schema)
    )))
    .bind(&ids)
    .fetch_all(&state.db)
    .await?;
    let mut tenant_of: HashMap<i64, ApplicationTenant> = HashMap::new();
    for (app, tenant_id, status) in rows {
        tenant_of
            .entry(i64::from(app))
            .or_insert(ApplicationTenant { tenant_id, status });
    }
    let applications = apps
        .into_iter()
        .map(|a| ApplicationWithTenant {
            tenant: tenant_of.get(&a.id).cloned(),
            application: a,
        })
        .collect();
    Ok(Json(ApplicationList { applications }))
}
