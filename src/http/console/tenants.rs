//! What the console shows that the superadmin API does not give: counts by status,
//! per-row activity (API calls in the last 24 hours, last activity, demo expiry), one
//! tenant's schema version and drift check, and backups with their download. Each
//! calls the library functions the CLI uses (`mtpaas check`, `mtpaas backup`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use indicatif::ProgressBar;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::archive::backup::{MANIFEST, Manifest, ManifestEntry, PgTools, backup_tenants};
use crate::auth::superadmin::SuperAdmin;
use crate::error::{ApiPath, ApiQuery, Error, Result};
use crate::market::db as market;
use crate::schema::drift::{Difference, check_tenants};
use crate::state::AppState;
use crate::tenancy::directory::tenants_table;
use crate::tenancy::lifecycle::{self, TenantRow};
use crate::tenancy::{TenantId, TenantStatus};
use crate::usage::hour_of;

/// A demo whose end is this close (or past) is marked in the list.
pub const DEMO_SOON_DAYS: i64 = 7;
/// Most ids one activity request may name (the list's largest page).
const MAX_IDS: usize = 500;
/// Backup runs looked at when listing a tenant's backups (newest first).
const RUNS_SCANNED: usize = 500;
/// Backups listed for one tenant.
const BACKUPS_LISTED: usize = 20;

fn tenant_id(state: &AppState, raw: &str) -> Result<TenantId> {
    state
        .config
        .parse_tenant(raw)
        .map_err(|e| Error::bad_request("invalid_tenant_id", format!("Invalid tenant id: {e}")))
}

async fn load(state: &AppState, id: &TenantId) -> Result<TenantRow> {
    let mut conn = state.db.acquire().await?;
    lifecycle::get(&mut conn, &state.config.central_schema, id)
        .await?
        .ok_or_else(|| Error::not_found("tenant_not_found", format!("Tenant {id} not found")))
}

async fn schema_version(state: &AppState, schema: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {}.tenant_schema_versions WHERE schema_name = $1",
        state.config.central_schema.quoted()
    )))
    .bind(schema)
    .fetch_optional(&state.db)
    .await?)
}

/// Tenants per status.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StatusCounts {
    pub active: i64,
    pub suspended: i64,
    pub deleted: i64,
    pub purged: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub counts: StatusCounts,
    pub total: i64,
    /// The template schema and its version: what every tenant schema should match.
    pub template: String,
    pub template_version: Option<i64>,
    /// A demo ending within this many days is marked as ending soon.
    pub demo_soon_days: i64,
}

/// Counts by status, for the top of the tenants page.
#[utoipa::path(get, path = "/api/console/overview", tag = "console",
    responses((status = 200, body = Overview), (status = 401)),
    security(("bearer" = [])))]
pub async fn overview(_op: SuperAdmin, State(state): State<AppState>) -> Result<Json<Overview>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status, count(*) FROM {} GROUP BY status",
        tenants_table(&state.config.central_schema)
    )))
    .fetch_all(&state.db)
    .await?;
    let mut counts = StatusCounts::default();
    let mut total = 0;
    for (status, n) in rows {
        total += n;
        match TenantStatus::parse(&status) {
            Some(TenantStatus::Active) => counts.active = n,
            Some(TenantStatus::Suspended) => counts.suspended = n,
            Some(TenantStatus::Deleted) => counts.deleted = n,
            Some(TenantStatus::Purged) => counts.purged = n,
            None => {}
        }
    }
    let template = state.config.template_schema.to_string();
    let template_version = schema_version(&state, &template).await?;
    Ok(Json(Overview {
        counts,
        total,
        template,
        template_version,
        demo_soon_days: DEMO_SOON_DAYS,
    }))
}

/// `?ids=a,b,c`: the tenants of one page of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Tenant ids, comma-separated (at most 500).
    pub ids: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantActivity {
    pub tenant_id: String,
    /// API calls in the current UTC hour and the 23 before it (flushed counts).
    pub calls_24h: i64,
    /// The latest chat message (`chat_his.reg_dtm`); `null` without any, or without a schema.
    pub last_activity: Option<DateTime<Utc>>,
    /// For a demo: when its demo ends, in the market's local time (as it stores it).
    #[schema(value_type = Option<String>, example = "2026-01-22T10:00:00")]
    pub demo_expires_at: Option<NaiveDateTime>,
    /// Seconds until the demo ends by the market's clock (negative: ended).
    pub demo_expires_in_secs: Option<i64>,
    /// Ends within `demo_soon_days` days, or has ended.
    pub demo_expiring_soon: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Activity {
    pub tenants: Vec<TenantActivity>,
    pub demo_soon_days: i64,
    /// Why demo expiry is unknown (the market's MySQL did not answer); `null` otherwise.
    pub market_error: Option<String>,
}

fn parse_ids(state: &AppState, raw: Option<&str>) -> Result<Vec<TenantId>> {
    let mut ids = Vec::new();
    for part in raw.unwrap_or("").split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let id = tenant_id(state, part)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_IDS {
        return Err(Error::bad_request(
            "invalid_query",
            format!("ids names more than {MAX_IDS} tenants"),
        ));
    }
    Ok(ids)
}

/// Activity of the tenants on one page of the list.
#[utoipa::path(get, path = "/api/console/activity", tag = "console",
    params(ActivityParams),
    responses((status = 200, body = Activity), (status = 400), (status = 401)),
    security(("bearer" = [])))]
pub async fn activity(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ActivityParams>,
) -> Result<Json<Activity>> {
    let ids = parse_ids(&state, p.ids.as_deref())?;
    if ids.is_empty() {
        return Ok(Json(Activity {
            tenants: Vec::new(),
            demo_soon_days: DEMO_SOON_DAYS,
            market_error: None,
        }));
    }
    let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let central = state.config.central_schema.quoted();
    let rows: Vec<(String, Option<i32>, Option<String>, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id, application_id, application_kind, status FROM {central}.tenants \
              WHERE tenant_id = ANY($1)"
        )))
        .bind(&names)
        .fetch_all(&state.db)
        .await?;
    let since = hour_of(Utc::now()) - TimeDelta::hours(23);
    let calls: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT tenant_id, COALESCE(SUM(calls), 0)::bigint FROM {central}.api_usage \
              WHERE tenant_id = ANY($1) AND hour >= $2 GROUP BY tenant_id"
        )))
        .bind(&names)
        .bind(since)
        .fetch_all(&state.db)
        .await?
        .into_iter()
        .collect();
    let live: Vec<TenantId> = rows
        .iter()
        .filter(|r| r.3 != TenantStatus::Purged.as_str())
        .filter_map(|r| ids.iter().find(|i| i.as_str() == r.0).cloned())
        .collect();
    let (last, demos) = tokio::join!(last_activity(&state, &live), demo_ends(&state, &rows));
    let last = last?;
    let (demos, market_error) = match demos {
        Ok(d) => (d, None),
        Err(e) => {
            tracing::warn!(error = %e, "console: demo expiry unknown");
            (HashMap::new(), Some(e.to_string()))
        }
    };
    let soon = DEMO_SOON_DAYS * 86_400;
    let tenants = rows
        .iter()
        .map(|(tenant_id, app, kind, _)| {
            let demo = match (kind.as_deref(), app) {
                (Some("demo"), Some(app)) => demos.get(&i64::from(*app)).copied(),
                _ => None,
            };
            TenantActivity {
                tenant_id: tenant_id.clone(),
                calls_24h: calls.get(tenant_id).copied().unwrap_or(0),
                last_activity: last.get(tenant_id).copied().flatten(),
                demo_expires_at: demo.map(|d| d.0),
                demo_expires_in_secs: demo.map(|d| d.1),
                demo_expiring_soon: demo.is_some_and(|d| d.1 <= soon),
            }
        })
        .collect();
    Ok(Json(Activity {
        tenants,
        demo_soon_days: DEMO_SOON_DAYS,
        market_error,
    }))
}

/// The latest chat message of each tenant, one `UNION ALL` over the schemas that have
/// the table (a cross-tenant report, as the design allows; every name is quoted).
async fn last_activity(
    state: &AppState,
    ids: &[TenantId],
) -> Result<HashMap<String, Option<DateTime<Utc>>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let with_table: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_namespace n \
           JOIN pg_class c ON c.relnamespace = n.oid \
          WHERE c.relname = 'chat_his' AND c.relkind IN ('r', 'p') AND n.nspname = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&state.db)
    .await?;
    let present: Vec<&TenantId> = ids
        .iter()
        .filter(|i| with_table.iter().any(|t| t == i.as_str()))
        .collect();
    if present.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = present
        .iter()
        .enumerate()
        .map(|(n, id)| {
            format!(
                "SELECT ${}::text, (SELECT max(reg_dtm) FROM {}.chat_his)",
                n + 1,
                id.quoted()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut q = sqlx::query_as::<_, (String, Option<DateTime<Utc>>)>(sqlx::AssertSqlSafe(sql));
    for id in &present {
        q = q.bind(id.as_str());
    }
    match q.fetch_all(&state.db).await {
        Ok(rows) => Ok(rows.into_iter().collect()),
        // A schema purged meanwhile: the column stays empty this time.
        Err(sqlx::Error::Database(d))
            if matches!(d.code().as_deref(), Some("42P01") | Some("3F000")) =>
        {
            Ok(HashMap::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// For the demo applications among `rows`: when each demo ends (market time) and the
/// seconds left by the market's clock.
async fn demo_ends(
    state: &AppState,
    rows: &[(String, Option<i32>, Option<String>, String)],
) -> Result<HashMap<i64, (NaiveDateTime, i64)>, market::MarketError> {
    let apps: Vec<i64> = rows
        .iter()
        .filter(|r| r.2.as_deref() == Some("demo"))
        .filter_map(|r| r.1.map(i64::from))
        .collect();
    if apps.is_empty() || state.market.is_none() {
        return Ok(HashMap::new());
    }
    let marks = vec!["?"; apps.len()].join(", ");
    let sql = format!(
        "SELECT CAST(id AS SIGNED), CAST(demo_expires_at AS DATETIME), \
                CAST(TIMESTAMPDIFF(SECOND, NOW(), demo_expires_at) AS SIGNED) \
           FROM service_applications \
          WHERE id IN ({marks}) AND demo_expires_at IS NOT NULL"
    );
    let found: Vec<(i64, NaiveDateTime, i64)> = market::fetch_all(
        state.market.as_ref(),
        state.config.market_timeout,
        sqlx::AssertSqlSafe(sql),
        move |mut q| {
            for id in apps {
                q = q.bind(id);
            }
            q
        },
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|(id, at, left)| (id, (at, left)))
        .collect())
}

/// One way the tenant's schema differs from the template, with a sentence for people.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Drift {
    /// e.g. `missing index chat_his_reg_dtm_idx: CREATE INDEX …` (as `mtpaas check` prints it).
    pub text: String,
    /// `missing`, `unexpected`, `differs`, `missingschema` or `version`, with its fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub difference: Difference,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SchemaStatus {
    pub tenant_id: String,
    pub status: String,
    /// The version recorded for the tenant's schema (`null`: none recorded).
    pub schema_version: Option<i64>,
    pub template: String,
    pub template_version: Option<i64>,
    /// False for a purged tenant: there is no schema to check.
    pub checked: bool,
    /// Checked and no difference found.
    pub in_sync: bool,
    pub differences: Vec<Drift>,
}

/// `mtpaas check` for one tenant: its schema against the template.
#[utoipa::path(get, path = "/api/console/tenants/{id}/schema", tag = "console",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$")),
    responses((status = 200, body = SchemaStatus), (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn schema(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SchemaStatus>> {
    let id = tenant_id(&state, &id)?;
    let row = load(&state, &id).await?;
    let template = state.config.template_schema.to_string();
    let template_version = schema_version(&state, &template).await?;
    let version = schema_version(&state, id.as_str()).await?;
    let checked = row.status != TenantStatus::Purged.as_str();
    let differences = if checked {
        let report = check_tenants(
            &state.db,
            &state.config.central_schema,
            &state.config.template_schema,
            Some(std::slice::from_ref(&id)),
        )
        .await?;
        report
            .drifted
            .into_iter()
            .flat_map(|d| d.differences)
            .map(|d| Drift {
                text: d.to_string(),
                difference: d,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(SchemaStatus {
        tenant_id: id.to_string(),
        status: row.status,
        schema_version: version,
        template,
        template_version,
        checked,
        in_sync: checked && differences.is_empty(),
        differences,
    }))
}

/// One backup archive of a tenant, on this server's `BACKUP_DIR`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Backup {
    pub tenant_id: String,
    /// The run's directory under `BACKUP_DIR`.
    pub run: String,
    pub archive: String,
    pub bytes: u64,
    pub sha256: String,
    pub schema_version: i64,
    pub finished_at: DateTime<Utc>,
    /// Where to download the archive (with the session cookie).
    pub download_url: String,
    /// Where to download the run's `manifest.json` (`mtpaas restore` wants it beside the archive).
    pub manifest_url: String,
}

impl Backup {
    fn new(run: &str, e: ManifestEntry) -> Self {
        Self {
            download_url: format!("/api/console/backups/{run}/{}", e.archive),
            manifest_url: format!("/api/console/backups/{run}/{MANIFEST}"),
            run: run.to_owned(),
            tenant_id: e.tenant_id,
            archive: e.archive,
            bytes: e.bytes,
            sha256: e.sha256,
            schema_version: e.schema_version,
            finished_at: e.finished_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupList {
    pub tenant_id: String,
    /// Newest first, at most 20.
    pub backups: Vec<Backup>,
}

/// A run directory's name as backups make them (`20260301T020000Z`, `…-console`,
/// `…-purge-2`): nothing that could leave `BACKUP_DIR`.
fn valid_run_name(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = tokio::fs::read(dir.join(MANIFEST)).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The tenant's backups found under `BACKUP_DIR`: the console's, the CLI's and the purge's.
#[utoipa::path(get, path = "/api/console/tenants/{id}/backups", tag = "console",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$")),
    responses((status = 200, body = BackupList), (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn backups(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<BackupList>> {
    let id = tenant_id(&state, &id)?;
    load(&state, &id).await?;
    let root = PathBuf::from(&state.config.backup_dir);
    let mut runs = Vec::new();
    if let Ok(mut dir) = tokio::fs::read_dir(&root).await {
        while let Ok(Some(entry)) = dir.next_entry().await {
            if let Some(name) = entry.file_name().to_str()
                && valid_run_name(name)
                && entry.file_type().await.is_ok_and(|t| t.is_dir())
            {
                runs.push(name.to_owned());
            }
        }
    }
    // Names start with the UTC time: newest first.
    runs.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = Vec::new();
    for run in runs.into_iter().take(RUNS_SCANNED) {
        let dir = root.join(&run);
        let Some(m) = read_manifest(&dir).await else {
            continue;
        };
        for e in m.tenants {
            if e.tenant_id == id.as_str() && tokio::fs::metadata(dir.join(&e.archive)).await.is_ok()
            {
                out.push(Backup::new(&run, e));
            }
        }
        if out.len() >= BACKUPS_LISTED {
            break;
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.finished_at));
    out.truncate(BACKUPS_LISTED);
    Ok(Json(BackupList {
        tenant_id: id.to_string(),
        backups: out,
    }))
}

/// Backs the tenant up now, as `mtpaas backup <id>` does, into a run of its own under
/// `BACKUP_DIR` (`<time>-console`, with its `manifest.json`).
#[utoipa::path(post, path = "/api/console/tenants/{id}/backups", tag = "console",
    params(("id" = String, Path, description = "Tenant id", pattern = "^[a-z][a-z0-9_]{0,49}$"),
           ("X-CSRF-Token" = Option<String>, Header, description = "The console session's CSRF token (with the cookie)")),
    responses((status = 200, body = Backup), (status = 400), (status = 401), (status = 403),
              (status = 404), (status = 409, description = "The tenant was purged: no schema to back up"),
              (status = 503, description = "The backup could not be made (pg_dump missing or failed)")),
    security(("bearer" = [])))]
pub async fn backup_now(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Backup>> {
    let id = tenant_id(&state, &id)?;
    let row = load(&state, &id).await?;
    if row.status == TenantStatus::Purged.as_str() {
        return Err(Error::conflict(
            "tenant_purged",
            format!("Tenant {id} was purged: it has no schema to back up"),
        ));
    }
    let failed = |reason: String| {
        Error::unavailable(
            "backup_failed",
            format!("The backup of {id} could not be made: {reason}"),
        )
    };
    let tools = PgTools::new(
        state.config.database_url.expose_secret(),
        state.config.pg_bin_dir.as_deref(),
    )
    .map_err(|e| failed(format!("{e:#}")))?;
    let root = PathBuf::from(&state.config.backup_dir);
    let (pool, central, tenant) = (
        state.db.clone(),
        state.config.central_schema.clone(),
        id.clone(),
    );
    // On a task of its own: a request that times out or is dropped does not stop
    // pg_dump half-way; the finished backup is listed afterwards.
    let job = tokio::spawn(async move {
        backup_tenants(
            &pool,
            &central,
            &tools,
            std::slice::from_ref(&tenant),
            &root,
            Some("console"),
            1,
            &ProgressBar::hidden(),
        )
        .await
    });
    let run = job
        .await
        .map_err(|e| anyhow::anyhow!("backup task: {e}"))?
        .map_err(|e| failed(format!("{e:#}")))?;
    if let Some((_, reason)) = run.failed.into_iter().next() {
        return Err(failed(reason));
    }
    let run_name = run
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("backup run directory has no name"))?
        .to_owned();
    let entry = run
        .manifest
        .tenants
        .into_iter()
        .find(|e| e.tenant_id == id.as_str())
        .ok_or_else(|| failed("the run's manifest does not list it".into()))?;
    tracing::info!(tenant_id = %id, run = %run_name, bytes = entry.bytes,
        "tenant backed up from the console");
    Ok(Json(Backup::new(&run_name, entry)))
}

/// Downloads an archive (`<tenant>.dump`) or the `manifest.json` of a backup run.
#[utoipa::path(get, path = "/api/console/backups/{run}/{file}", tag = "console",
    params(("run" = String, Path, description = "The run's directory, e.g. 20260301T020000Z-console"),
           ("file" = String, Path, description = "`<tenant>.dump` or `manifest.json`")),
    responses((status = 200, description = "The file, as an attachment", content_type = "application/octet-stream"),
              (status = 400), (status = 401), (status = 404)),
    security(("bearer" = [])))]
pub async fn download(
    _op: SuperAdmin,
    State(state): State<AppState>,
    ApiPath((run, file)): ApiPath<(String, String)>,
) -> Result<Response> {
    let not_found = || Error::not_found("backup_not_found", "No such backup file on this server");
    if !valid_run_name(&run) {
        return Err(not_found());
    }
    let (content_type, filename) = if file == MANIFEST {
        ("application/json", format!("{run}-{MANIFEST}"))
    } else {
        let tenant = file
            .strip_suffix(".dump")
            .and_then(|t| state.config.parse_tenant(t).ok())
            .ok_or_else(not_found)?;
        ("application/octet-stream", format!("{tenant}-{run}.dump"))
    };
    let path = PathBuf::from(&state.config.backup_dir)
        .join(&run)
        .join(&file);
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found())?;
    let meta = f.metadata().await.map_err(|_| not_found())?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let stream = futures::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, HeaderValue::from(meta.len())),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::valid_run_name;

    #[test]
    fn run_names_cannot_leave_the_backup_directory() {
        for ok in [
            "20260301T020000Z",
            "20260301T020000Z-console",
            "20260301T020000Z-purge-2",
        ] {
            assert!(valid_run_name(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "20260301T020000Z/..",
            "-x",
            ".hidden",
            "x y",
        ] {
            assert!(!valid_run_name(bad), "{bad}");
        }
    }
}
