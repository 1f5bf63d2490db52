//! Demo expiry: the tenants of demo applications past their `demo_expires_at` are
//! suspended, with a history event (actor `system`).
//!
//! One run: in one Postgres transaction, take `pg_try_advisory_xact_lock` (another
//! replica running the job right now → this one does nothing), list the active demo
//! tenants, ask the market which of their applications are demos past expiry (by the
//! market's clock; an application the market has since turned into a service is not
//! expired), suspend those tenants through [`change_status`], commit. The
//! lock ends with the transaction, so a crashed replica never holds it.
//!
//! A demo tenant an operator reinstates after expiry is suspended again on the next
//! run, until the market extends the demo or converts it (`service-changed`).

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use sqlx::mysql::MySqlPool;
use sqlx::{Acquire, PgPool};

use crate::config::Config;
use crate::error::Result;
use crate::market::db::expired_demos;
use crate::schema::migrate::lock_key;
use crate::tenancy::directory::{TenantDirectory, TenantStatus, tenants_table};
use crate::tenancy::lifecycle::{Cause, change_status};
use crate::tenant_id::TenantId;

/// The actor demo expiry writes in the history.
pub const ACTOR: &str = "system";

/// The reason a demo tenant is suspended with.
pub const REASON: &str = "Demo period expired";

/// What the job works with.
#[derive(Clone)]
pub struct Job {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub directory: TenantDirectory,
    /// The market's MySQL; `None` when not configured.
    pub market: Option<MySqlPool>,
}

/// Runs the job once. Returns the tenants it suspended (empty when another replica
/// held the lock, or when nothing had expired).
pub async fn run_once(state: &Job) -> Result<Vec<TenantId>> {
    let central = &state.config.central_schema;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock_key(&format!("mtpaas:demo-expiry:{central}")))
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        tracing::debug!("demo expiry already running on another replica");
        return Ok(Vec::new());
    }
    let candidates: Vec<(String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, application_id FROM {} \
         WHERE status = 'active' AND application_kind = 'demo' AND application_id IS NOT NULL",
        tenants_table(central)
    )))
    .fetch_all(&mut *tx)
    .await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_app: HashMap<i64, Vec<String>> = HashMap::new();
    for (t, app) in candidates {
        by_app.entry(i64::from(app)).or_default().push(t);
    }
    let ids: Vec<i64> = by_app.keys().copied().collect();
    let expired = expired_demos(state.market.as_ref(), state.config.market_timeout, &ids).await?;

    let mut suspended = Vec::new();
    for (app, expires_at) in expired {
        for t in by_app.get(&app).into_iter().flatten() {
            let Ok(id) = TenantId::parse(t) else { continue };
            let reason = format!("{REASON} (application {app}, demo_expires_at {expires_at})");
            let change = change_status(
                &mut tx,
                central,
                &id,
                TenantStatus::Suspended,
                Cause::new(ACTOR, Some(&reason)),
            )
            .await?;
            if change.changed() {
                suspended.push(id);
            }
        }
    }
    tx.commit().await?;
    for id in &suspended {
        state.directory.set(id, TenantStatus::Suspended);
        tracing::info!(tenant_id = %id, "demo expired; tenant suspended");
    }
    metrics::counter!("mtpaas_demo_expiry_suspended_total").increment(suspended.len() as u64);
    Ok(suspended)
}

/// Runs the job every `interval` until the task is dropped; failures are logged and
/// retried on the next tick.
pub async fn run_every(state: Job, interval: Duration) {
    // The first run one interval after start: a restarting replica does not hit the
    // market at once, and several starting together do not race for the lock.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = run_once(&state).await {
            tracing::warn!(error = %e, "demo expiry run failed");
        }
    }
}
