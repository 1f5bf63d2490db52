//! Retention: tenants soft-deleted more than `RETENTION_DAYS` ago are backed up, then
//! their schema is dropped and their row marked `purged`, with a history event.
//!
//! Nothing is dropped without a backup made in the same run: a tenant whose backup
//! failed is left alone. Each drop re-checks, under a row lock, that the tenant is still
//! deleted and still past retention (a reinstatement meanwhile wins). One purge runs at
//! a time across the CLI and every server replica (`PURGE_IN_SERVER=true`), by a
//! session advisory lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use indicatif::ProgressBar;
use serde::Serialize;
use sqlx::{Acquire, PgPool};

use crate::archive::backup::{PgTools, backup_tenants};
use crate::config::Config;
use crate::schema::migrate::{error_text, lock_key};
use crate::tenancy::directory::TenantStatus;
use crate::tenancy::lifecycle::{self, Cause};
use crate::tenant_id::TenantId;

/// How often the in-server job looks for tenants to purge.
pub const SERVER_INTERVAL: Duration = Duration::from_secs(3600);

/// A tenant past retention.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Candidate {
    pub tenant_id: String,
    pub deleted_at: NaiveDateTime,
    pub deleted_reason: Option<String>,
    /// Whole days since deletion.
    pub days: i32,
}

/// Tenants deleted more than `retention_days` ago, oldest deletion first.
pub async fn candidates(
    pool: &PgPool,
    central: &TenantId,
    retention_days: u32,
) -> Result<Vec<Candidate>, sqlx::Error> {
    // deleted_at is a local `timestamp` written with NOW(): compare it with the same.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, deleted_at, deleted_reason, \
                EXTRACT(DAY FROM LOCALTIMESTAMP - deleted_at)::int AS days \
           FROM {}.tenants \
          WHERE status = 'deleted' AND deleted_at < LOCALTIMESTAMP - make_interval(days => $1) \
          ORDER BY deleted_at, tenant_id",
        central.quoted()
    )))
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .fetch_all(pool)
    .await
}

/// What a purge run did.
#[derive(Debug, Default)]
pub struct PurgeReport {
    pub candidates: Vec<Candidate>,
    /// Where the backups of this run are.
    pub backup_dir: Option<PathBuf>,
    pub purged: Vec<String>,
    /// Due when listed, no longer due when their turn came (e.g. reinstated).
    pub skipped: Vec<(String, String)>,
    /// Not purged: the backup or the drop failed.
    pub failed: Vec<(String, String)>,
}

/// Settings of one purge run.
#[derive(Debug, Clone)]
pub struct PurgeSettings<'a> {
    pub central: &'a TenantId,
    pub retention_days: u32,
    pub backup_root: &'a Path,
    /// Written to the history: `cli` or `system`.
    pub actor: &'a str,
    pub jobs: usize,
}

/// Backs up and purges every tenant past retention. `Ok(None)`: another purge holds
/// the lock, nothing was done.
pub async fn purge_expired(
    pool: &PgPool,
    tools: &PgTools,
    s: &PurgeSettings<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<Option<PurgeReport>> {
    let mut lock_conn = pool.acquire().await?;
    // A session lock lives as long as the connection: never hand this one back.
    lock_conn.close_on_drop();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(&format!("mtpaas:purge:{}", s.central)))
        .fetch_one(&mut *lock_conn)
        .await?;
    if !locked {
        return Ok(None);
    }

    let mut report = PurgeReport {
        candidates: candidates(pool, s.central, s.retention_days).await?,
        ..PurgeReport::default()
    };
    if report.candidates.is_empty() {
        return Ok(Some(report));
    }
    let ids: Vec<TenantId> = report
        .candidates
        .iter()
        .filter_map(|c| TenantId::parse(&c.tenant_id).ok())
        .collect();
    // A schema already gone (dropped by hand) holds nothing to back up or to lose.
    let present: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
            .bind(ids.iter().map(|i| i.to_string()).collect::<Vec<_>>())
            .fetch_all(pool)
            .await?;
    let (ids, absent): (Vec<TenantId>, Vec<TenantId>) = ids
        .into_iter()
        .partition(|i| present.iter().any(|p| p == i.as_str()));
    for id in absent {
        let detail = format!(
            "Purged {} day(s) after deletion (retention {} day(s)); its schema was already gone",
            days_since(&report.candidates, &id),
            s.retention_days
        );
        match purge_one(pool, s.central, &id, s.retention_days, s.actor, &detail).await {
            Ok(None) => report.purged.push(id.to_string()),
            Ok(Some(why)) => report.skipped.push((id.to_string(), why)),
            Err(e) => report.failed.push((id.to_string(), error_text(&e))),
        }
    }
    if ids.is_empty() {
        return Ok(Some(report));
    }
    let run = backup_tenants(
        pool,
        s.central,
        tools,
        &ids,
        s.backup_root,
        Some("purge"),
        s.jobs,
        progress,
    )
    .await?;
    report.failed = run
        .failed
        .iter()
        .map(|(t, e)| (t.clone(), format!("backup failed, not purged: {e}")))
        .collect();
    for entry in &run.manifest.tenants {
        let Ok(id) = TenantId::parse(&entry.tenant_id) else {
            continue;
        };
        let backup = run.dir.join(&entry.archive);
        let backup = std::path::absolute(&backup).unwrap_or(backup);
        let detail = format!(
            "Schema dropped {} day(s) after deletion (retention {} day(s)); backup {} (sha256 {})",
            days_since(&report.candidates, &id),
            s.retention_days,
            backup.display(),
            entry.sha256
        );
        match purge_one(pool, s.central, &id, s.retention_days, s.actor, &detail).await {
            Ok(None) => report.purged.push(id.to_string()),
            Ok(Some(why)) => report.skipped.push((id.to_string(), why)),
            Err(e) => report.failed.push((id.to_string(), error_text(&e))),
        }
    }
    report.backup_dir = Some(run.dir);
    Ok(Some(report))
}

fn days_since(candidates: &[Candidate], id: &TenantId) -> i32 {
    candidates
        .iter()
        .find(|c| c.tenant_id == id.as_str())
        .map_or(0, |c| c.days)
}

/// Drops one tenant's schema and marks it purged, if it is still due. `Some(reason)`:
/// not due any more, nothing done.
async fn purge_one(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
    retention_days: u32,
    actor: &str,
    detail: &str,
) -> anyhow::Result<Option<String>> {
    let c = central.quoted();
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let row: Option<(String, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status, COALESCE(deleted_at < LOCALTIMESTAMP - make_interval(days => $2), false) \
           FROM {c}.tenants WHERE tenant_id = $1 FOR UPDATE"
    )))
    .bind(tenant.as_str())
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some((status, true)) if status == "deleted" => {}
        Some((status, _)) => {
            return Ok(Some(format!("no longer due (status {status})")));
        }
        None => return Ok(Some("no longer registered".into())),
    }
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        tenant.quoted()
    )))
    .execute(&mut *tx)
    .await?;
    lifecycle::change_status(
        &mut tx,
        central,
        tenant,
        TenantStatus::Purged,
        Cause {
            actor,
            reason: None,
            detail: Some(detail),
        },
    )
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {c}.tenant_schema_versions WHERE schema_name = $1"
    )))
    .bind(tenant.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(None)
}

/// The in-server purge (`PURGE_IN_SERVER=true`): once at start-up, then every
/// [`SERVER_INTERVAL`]. With several replicas, one purges and the others skip the round.
pub async fn run_in_server(pool: PgPool, config: Arc<Config>) {
    use secrecy::ExposeSecret;
    let tools = match PgTools::new(
        config.database_url.expose_secret(),
        config.pg_bin_dir.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "in-server purge disabled");
            return;
        }
    };
    let root = PathBuf::from(&config.backup_dir);
    let settings = PurgeSettings {
        central: &config.central_schema,
        retention_days: config.retention_days,
        backup_root: &root,
        actor: "system",
        jobs: 1,
    };
    loop {
        match purge_expired(&pool, &tools, &settings, &ProgressBar::hidden()).await {
            Ok(Some(r)) => {
                if !r.purged.is_empty() || !r.failed.is_empty() || !r.skipped.is_empty() {
                    tracing::info!(
                        purged = ?r.purged,
                        failed = ?r.failed,
                        skipped = ?r.skipped,
                        backups = ?r.backup_dir,
                        "retention purge"
                    );
                }
            }
            Ok(None) => tracing::debug!("retention purge running elsewhere; skipped"),
            Err(e) => tracing::warn!(error = %error_text(&e), "retention purge failed"),
        }
        tokio::time::sleep(SERVER_INTERVAL).await;
    }
}
