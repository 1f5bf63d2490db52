//! Per-tenant API call counting: in memory per request, flushed to the central
//! `api_usage` table in batches.
//!
//! # What counts as an API call
//!
//! A request counts for tenant T when all of these hold:
//! - it matched a route (a 404 for an unknown path does not count);
//! - the route is a tenant's API, not `/api/health`, `/api/ready`, the metrics, or the
//!   market's and operators' `/api/tenant/…` routes (creation, webhooks, superadmin)
//!   or the operator console's `/api/console/…`;
//! - its tenant resolved to T and T was active when the response was produced (calls
//!   refused because T is unknown, suspended or deleted do not count);
//! - a response was produced, whatever its status (a 401 for a missing token is still
//!   a call the tenant's frontend made). A request cancelled before its response (the
//!   client hung up, the timeout fired) does not count.
//!
//! # Cost and durability
//!
//! Counting takes a short in-memory lock and never touches the database. Counts are
//! kept per tenant and UTC hour; a background task flushes them every
//! `USAGE_FLUSH_INTERVAL_MS` in one statement (`calls = calls + EXCLUDED.calls`, so
//! several replicas add up), and `Application::run_until` flushes once more after the
//! server has drained at shutdown. A flush that fails puts its counts back for the next
//! one; only a crash (no graceful shutdown) loses up to one interval of counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, DurationRound, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgPool};
use tokio::sync::watch;

use crate::tenancy::directory::{TenantDirectory, TenantStatus};
use crate::tenancy::resolve::ResolvedTenant;
use crate::tenant_id::TenantId;

/// Routes (matched templates) that are not a tenant's API calls.
fn counted_route(route: &str) -> bool {
    !(route == "/api/health"
        || route == "/api/ready"
        || route == "/api/metrics"
        || route == "/metrics"
        || route.starts_with("/api/tenant/")
        || route.starts_with("/api/console"))
}

/// Calls per tenant and UTC hour.
type Buckets = HashMap<(TenantId, DateTime<Utc>), u64>;

/// The calls counted in this process and not yet flushed, per tenant and UTC hour.
#[derive(Clone, Default)]
pub struct UsageCounter {
    pending: Arc<Mutex<Buckets>>,
}

/// The start of the UTC hour `t` falls in.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1))
        .expect("an hour divides every timestamp")
}

impl UsageCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one call for `tenant` now.
    pub fn record(&self, tenant: &TenantId) {
        self.record_n(tenant, Utc::now(), 1);
    }

    pub fn record_n(&self, tenant: &TenantId, at: DateTime<Utc>, n: u64) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((tenant.clone(), hour_of(at))).or_insert(0) += n;
    }

    /// Calls counted and not yet flushed.
    pub fn pending_calls(&self) -> u64 {
        let map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.values().sum()
    }

    fn take(&self) -> Buckets {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn put_back(&self, batch: Buckets) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (k, n) in batch {
            *map.entry(k).or_insert(0) += n;
        }
    }

    /// Adds the pending counts to `api_usage` in one statement. Returns the number of
    /// calls written. On failure the counts are kept for the next flush.
    pub async fn flush(&self, pool: &PgPool, central: &TenantId) -> Result<u64, sqlx::Error> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tenants = Vec::with_capacity(batch.len());
        let mut hours = Vec::with_capacity(batch.len());
        let mut calls = Vec::with_capacity(batch.len());
        for ((t, h), n) in &batch {
            tenants.push(t.as_str().to_owned());
            hours.push(*h);
            calls.push(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let sql = format!(
            "INSERT INTO {}.api_usage AS u (tenant_id, hour, calls) \
             SELECT * FROM UNNEST($1::varchar[], $2::timestamptz[], $3::bigint[]) \
             ON CONFLICT (tenant_id, hour) DO UPDATE SET calls = u.calls + EXCLUDED.calls",
            central.quoted()
        );
        let written = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&tenants)
            .bind(&hours)
            .bind(&calls)
            .execute(pool)
            .await;
        match written {
            Ok(_) => {
                let total: u64 = batch.values().sum();
                metrics::counter!("mtpaas_usage_flushes_total", "outcome" => "ok").increment(1);
                Ok(total)
            }
            Err(e) => {
                metrics::counter!("mtpaas_usage_flushes_total", "outcome" => "error").increment(1);
                self.put_back(batch);
                Err(e)
            }
        }
    }
}

/// Middleware: counts the request as an API call of its tenant (see the module docs).
/// Runs inside the tenant resolution layer, where `ResolvedTenant` is known.
pub async fn layer(
    State((directory, usage)): State<(TenantDirectory, UsageCounter)>,
    req: Request,
    next: Next,
) -> Response {
    let tenant = req
        .extensions()
        .get::<MatchedPath>()
        .filter(|p| counted_route(p.as_str()))
        .and_then(|_| req.extensions().get::<ResolvedTenant>())
        .and_then(|r| r.tenant.clone());
    let resp = next.run(req).await;
    if let Some(t) = tenant
        && directory.cached(&t) == Some(TenantStatus::Active)
    {
        usage.record(&t);
    }
    resp
}

/// Flushes every `interval` until `stop` turns true, then flushes a last time.
pub async fn run_flusher(
    counter: UsageCounter,
    pool: PgPool,
    central: TenantId,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = counter.flush(&pool, &central).await {
                    tracing::warn!(error = %e, "usage flush failed; counts kept for the next one");
                }
            }
            // The Ref the wait yields is not Send: drop it inside.
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
        }
    }
    final_flush(&counter, &pool, &central).await;
}

/// The shutdown flush: a few attempts, then the loss is logged with its size.
pub async fn final_flush(counter: &UsageCounter, pool: &PgPool, central: &TenantId) {
    for attempt in 1..=3 {
        match counter.flush(pool, central).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(calls = n, "usage flushed at shutdown");
                }
                return;
            }
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "usage flush at shutdown failed; retrying");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, calls = counter.pending_calls(),
                    "usage flush at shutdown failed; these calls are not recorded");
            }
        }
    }
}

/// API calls of one tenant, from the flushed counters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiCalls {
    pub total: i64,
    /// The current UTC hour and the 23 before it.
    pub last_24h: i64,
    /// Per UTC day, oldest first, over the last `days` days (days without calls omitted).
    pub per_day: Vec<DayCalls>,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct DayCalls {
    pub day: NaiveDate,
    pub calls: i64,
}

/// Reads a tenant's API calls (two statements on the pool).
pub async fn api_calls(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
    days: u32,
) -> Result<ApiCalls, sqlx::Error> {
    let table = format!("{}.api_usage", central.quoted());
    let since_hour = hour_of(Utc::now()) - TimeDelta::hours(23);
    let (total, last_24h): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(SUM(calls), 0)::bigint, \
                COALESCE(SUM(calls) FILTER (WHERE hour >= $2), 0)::bigint \
         FROM {table} WHERE tenant_id = $1"
    )))
    .bind(tenant.as_str())
    .bind(since_hour)
    .fetch_one(pool)
    .await?;
    let since_day = Utc::now().date_naive() - TimeDelta::days(i64::from(days.max(1)) - 1);
    let per_day: Vec<DayCalls> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (hour AT TIME ZONE 'UTC')::date AS day, SUM(calls)::bigint AS calls \
         FROM {table} WHERE tenant_id = $1 AND hour >= ($2::date AT TIME ZONE 'UTC') \
         GROUP BY 1 ORDER BY 1"
    )))
    .bind(tenant.as_str())
    .bind(since_day)
    .fetch_all(pool)
    .await?;
    Ok(ApiCalls {
        total,
        last_24h,
        per_day,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_truncate_to_the_utc_hour() {
        let t: DateTime<Utc> = "2026-01-08T10:59:59.999Z".parse().unwrap();
        assert_eq!(hour_of(t).to_rfc3339(), "2026-01-08T10:00:00+00:00");
    }

    #[test]
    fn counts_add_up_per_tenant_and_hour() {
        let c = UsageCounter::new();
        let a = TenantId::parse("univ_a").unwrap();
        let b = TenantId::parse("univ_b").unwrap();
        let t: DateTime<Utc> = "2026-01-08T10:15:00Z".parse().unwrap();
        c.record_n(&a, t, 2);
        c.record_n(&a, t + TimeDelta::minutes(30), 3);
        c.record_n(&a, t + TimeDelta::hours(1), 1);
        c.record_n(&b, t, 4);
        assert_eq!(c.pending_calls(), 10);
        let batch = c.take();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[&(a.clone(), hour_of(t))], 5);
        assert_eq!(c.pending_calls(), 0);
        c.put_back(batch);
        assert_eq!(c.pending_calls(), 10);
    }

    #[test]
    fn probes_and_lifecycle_routes_are_not_tenant_calls() {
        for r in [
            "/api/health",
            "/api/ready",
            "/metrics",
            "/api/metrics",
            "/api/tenant/create",
            "/api/tenant/superadmin/tenants",
            "/api/tenant/webhook/user-deleted",
            "/api/console/",
            "/api/console/activity",
        ] {
            assert!(!counted_route(r), "{r}");
        }
        for r in ["/api/users", "/api/chat", "/api/auth/login"] {
            assert!(counted_route(r), "{r}");
        }
    }
}
