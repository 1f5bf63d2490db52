//! Per-tenant backups with `pg_dump`, and restores under the same or a new tenant id.
//!
//! # Backups
//!
//! A backup run writes one directory, `<BACKUP_DIR>/<UTC time>[-label]/`, holding one
//! custom-format archive per tenant (`pg_dump -n <tenant> -Fc`) and `manifest.json`:
//! for each tenant its registry row, schema version, archive size and SHA-256, and
//! when it was taken. The row and version are read in the very snapshot pg_dump dumps
//! (`pg_export_snapshot` + `pg_dump --snapshot`), so they always describe the archive.
//! The manifest is rewritten after each tenant, so a run cut short still describes the
//! archives it finished.
//!
//! # Restores
//!
//! An archive made by `pg_dump -n univ_8` creates and fills a schema named `univ_8`, its
//! objects qualified with that name, and rewriting the SQL to another name is fragile.
//! So the archive is restored under its own name and the schema renamed afterwards,
//! all in ONE transaction: `pg_restore` turns the archive into SQL, which `psql
//! --single-transaction` runs between a prelude and a postlude of ours:
//!
//! 1. prelude: if the target tenant's schema is being replaced (`--replace`), it is
//!    renamed out of the way; if the archive's schema name is taken (restoring a copy of
//!    a live tenant under a new id), the live schema is renamed out of the way too;
//! 2. the archive's SQL creates and fills the schema under its original name;
//! 3. postlude: the restored schema is renamed to the target id, the live schema gets
//!    its name back, a replaced schema is dropped, and the registry row, the schema
//!    version, a `restored` history event and the status `NOTIFY` are written.
//!
//! Until the commit nobody else sees any of it (DDL is transactional in Postgres), so a
//! live tenant whose schema was briefly renamed inside the transaction never notices,
//! and a restore that fails at any step leaves the database exactly as it was. If
//! `pg_restore` stops part-way (a damaged archive), the postlude is replaced by a
//! statement that fails, so a partial restore is never committed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::tenancy::directory::CHANNEL;
use crate::tenant_id::{TenantId, quote_ident};

pub const MANIFEST: &str = "manifest.json";
const MANIFEST_FORMAT: u32 = 1;

/// pg_dump, pg_restore and psql, pointed at the service's database. The password is
/// passed in the environment (`PGPASSWORD`), never on a command line others can read.
#[derive(Clone)]
pub struct PgTools {
    bin_dir: Option<PathBuf>,
    /// The database URL without its password, for `--dbname`.
    dbname: String,
    password: Option<String>,
}

impl std::fmt::Debug for PgTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTools")
            .field("bin_dir", &self.bin_dir)
            .field("dbname", &self.dbname)
            .finish_non_exhaustive()
    }
}

/// Query parameters libpq understands; others (sqlx's own) are dropped.
const LIBPQ_PARAMS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "passfile",
    "connect_timeout",
    "options",
    "application_name",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslpassword",
    "target_session_attrs",
    "service",
    "gssencmode",
];

impl PgTools {
    pub fn new(database_url: &str, bin_dir: Option<&str>) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(database_url)
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a URL: {e}"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            anyhow::bail!("DATABASE_URL is not a postgres:// URL");
        }
        let password = match url.password() {
            Some(p) => Some(
                percent_encoding::percent_decode_str(p)
                    .decode_utf8()
                    .map_err(|_| anyhow::anyhow!("the password in DATABASE_URL is not UTF-8"))?
                    .into_owned(),
            ),
            None => None,
        };
        let _ = url.set_password(None);
        // sqlx's spellings of the TLS settings become libpq's, so that the tools
        // connect with the same sslmode and certificates as the service.
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let k = match k.as_ref() {
                    "ssl-mode" => "sslmode".into(),
                    "ssl-root-cert" | "ssl-ca" => "sslrootcert".into(),
                    "ssl-cert" => "sslcert".into(),
                    "ssl-key" => "sslkey".into(),
                    _ => k,
                };
                (k, v)
            })
            .filter(|(k, _)| LIBPQ_PARAMS.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
        Ok(Self {
            bin_dir: bin_dir.map(PathBuf::from),
            dbname: url.to_string(),
            password,
        })
    }

    fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    /// A command for one of the tools, connected to the database, killed if dropped.
    fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.program(name));
        cmd.kill_on_drop(true)
            .stdin(Stdio::null())
            .env("PGAPPNAME", format!("mtpaas {name}"))
            .env_remove("PGPASSWORD");
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd
    }

    fn dbname_arg(&self) -> String {
        format!("--dbname={}", self.dbname)
    }

    /// Checks that `tool` runs and can handle the server's major version.
    pub async fn check(&self, pool: &PgPool, tool: &str) -> anyhow::Result<()> {
        let out = Command::new(self.program(tool))
            .arg("--version")
            .output()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot run {tool} ({e}): install the PostgreSQL client tools, or set \
                     PG_BIN_DIR to their directory (e.g. /usr/lib/postgresql/15/bin)"
                )
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let tool_major = text
            .split_whitespace()
            .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| anyhow::anyhow!("cannot read {tool}'s version from {text:?}"))?;
        let server_num: String = sqlx::query_scalar("SHOW server_version_num")
            .fetch_one(pool)
            .await?;
        let server_major = server_num.parse::<u32>().unwrap_or(0) / 10000;
        if tool_major < server_major {
            anyhow::bail!(
                "{tool} {tool_major} cannot handle PostgreSQL {server_major}: put version \
                 {server_major}'s tools first in PATH or set PG_BIN_DIR \
                 (e.g. /usr/lib/postgresql/{server_major}/bin)"
            );
        }
        Ok(())
    }
}

/// One tenant's archive, as `manifest.json` describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestEntry {
    pub tenant_id: String,
    /// The archive's file name, in the manifest's directory.
    pub archive: String,
    pub bytes: u64,
    pub sha256: String,
    pub schema_version: i64,
    /// The tenant's registry row (`to_jsonb` of the central `tenants` row).
    pub tenant: serde_json::Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub created_at: DateTime<Utc>,
    pub mtpaas_version: String,
    pub server_version: String,
    pub central_schema: String,
    pub tenants: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a backup manifest: {e}", path.display()))?;
        if m.format != MANIFEST_FORMAT {
            anyhow::bail!(
                "{}: manifest format {} is not supported",
                path.display(),
                m.format
            );
        }
        Ok(m)
    }

    /// Writes the manifest atomically (a reader never sees half of it).
    async fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        tokio::fs::write(&tmp, serde_json::to_vec_pretty(self)?).await?;
        tokio::fs::rename(&tmp, dir.join(MANIFEST)).await?;
        Ok(())
    }
}

/// What a backup run did.
#[derive(Debug)]
pub struct BackupRun {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Tenants that could not be backed up, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Every tenant that has a schema to back up (all but the purged), by id.
pub async fn backup_candidates(pool: &PgPool, central: &TenantId) -> anyhow::Result<Vec<TenantId>> {
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id FROM {}.tenants WHERE status <> 'purged' ORDER BY tenant_id",
        central.quoted()
    )))
    .fetch_all(pool)
    .await?;
    ids.iter()
        .map(|i| TenantId::parse(i).map_err(|e| anyhow::anyhow!("tenant id {i:?}: {e}")))
        .collect()
}

/// Creates `<root>/<UTC time>[-label]`, unique even for two runs in one second.
async fn new_run_dir(root: &Path, label: Option<&str>) -> anyhow::Result<PathBuf> {
    tokio::fs::create_dir_all(root)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", root.display()))?;
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = match label {
        Some(l) => format!("{stamp}-{l}"),
        None => stamp,
    };
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.join(name);
        match tokio::fs::create_dir(&dir).await {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => anyhow::bail!("cannot create {}: {e}", dir.display()),
        }
    }
    anyhow::bail!(
        "cannot find a free backup directory name under {}",
        root.display()
    )
}

/// Backs up `tenants` into a new directory under `root`, `jobs` at a time. One tenant
/// failing does not stop the others; the run fails only if nothing can be written.
#[allow(clippy::too_many_arguments)]
pub async fn backup_tenants(
    pool: &PgPool,
    central: &TenantId,
    tools: &PgTools,
    tenants: &[TenantId],
    root: &Path,
    label: Option<&str>,
    jobs: usize,
    progress: &ProgressBar,
) -> anyhow::Result<BackupRun> {
    tools.check(pool, "pg_dump").await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(pool)
        .await?;
    let dir = new_run_dir(root, label).await?;
    let manifest = Arc::new(Mutex::new(Manifest {
        format: MANIFEST_FORMAT,
        created_at: Utc::now(),
        mtpaas_version: env!("CARGO_PKG_VERSION").to_owned(),
        server_version,
        central_schema: central.to_string(),
        tenants: Vec::new(),
    }));
    manifest.lock().await.write(&dir).await?;
    progress.set_length(tenants.len() as u64);
    let mut failed = Vec::new();
    let mut results = futures::stream::iter(tenants.iter().cloned())
        .map(|t| {
            let dir = &dir;
            let manifest = manifest.clone();
            async move {
                let r = async {
                    let entry = dump_one(pool, central, tools, &t, dir).await?;
                    let mut m = manifest.lock().await;
                    m.tenants.push(entry);
                    m.tenants.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
                    m.write(dir).await
                }
                .await;
                (t, r)
            }
        })
        .buffer_unordered(jobs.max(1));
    while let Some((tenant, r)) = results.next().await {
        if let Err(e) = r {
            let reason = crate::schema::migrate::error_text(&e);
            if progress.is_hidden() {
                tracing::warn!(tenant_id = %tenant, error = %reason, "tenant backup failed");
            } else {
                progress.println(format!("failed: {tenant}: {reason}"));
            }
            failed.push((tenant.to_string(), reason));
        }
        progress.inc(1);
    }
    drop(results);
    failed.sort();
    let manifest = Arc::try_unwrap(manifest)
        .map_err(|_| anyhow::anyhow!("backup tasks still running"))?
        .into_inner();
    Ok(BackupRun {
        dir,
        manifest,
        failed,
    })
}

/// Dumps one tenant schema, with its row and version read in the dump's snapshot.
async fn dump_one(
    pool: &PgPool,
    central: &TenantId,
    tools: &PgTools,
    tenant: &TenantId,
    dir: &Path,
) -> anyhow::Result<ManifestEntry> {
    let started_at = Utc::now();
    let c = central.quoted();
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *tx)
        .await?;
    let row: Option<(serde_json::Value, Option<i64>, bool)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT to_jsonb(t), v.version, \
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = t.tenant_id) \
               FROM {c}.tenants t \
               LEFT JOIN {c}.tenant_schema_versions v ON v.schema_name = t.tenant_id \
              WHERE t.tenant_id = $1"
        )))
        .bind(tenant.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let Some((row, version, has_schema)) = row else {
        anyhow::bail!("tenant {tenant} not found");
    };
    if !has_schema {
        anyhow::bail!("tenant {tenant} has no schema to back up");
    }
    let archive = format!("{tenant}.dump");
    let partial = dir.join(format!("{archive}.partial"));
    let out = tools
        .command("pg_dump")
        .arg("--format=custom")
        .arg(format!("--schema={}", tenant.quoted()))
        .arg(format!("--snapshot={snapshot}"))
        .arg("--no-password")
        .arg(format!("--file={}", partial.display()))
        .arg(tools.dbname_arg())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run pg_dump: {e}"))?;
    tx.rollback().await?;
    if !out.status.success() {
        let _ = tokio::fs::remove_file(&partial).await;
        anyhow::bail!(
            "pg_dump failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = dir.join(&archive);
    tokio::fs::rename(&partial, &path).await?;
    let (bytes, sha256) = file_digest(&path).await?;
    Ok(ManifestEntry {
        tenant_id: tenant.to_string(),
        archive,
        bytes,
        sha256,
        schema_version: version.unwrap_or(0),
        tenant: row,
        started_at,
        finished_at: Utc::now(),
    })
}

/// Size and SHA-256 (hex) of a file.
pub async fn file_digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub archive: PathBuf,
    /// The tenant the archive holds (its schema name).
    pub source: TenantId,
    /// The tenant id to restore it as (`source` for an in-place restore).
    pub target: TenantId,
    /// Replace the target's existing schema (its data is lost).
    pub replace: bool,
    /// Written to the history (`cli`, `system`).
    pub actor: String,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub target: TenantId,
    pub status: String,
    pub schema_version: i64,
    /// The target's previous schema was replaced.
    pub replaced: bool,
    /// The registry row was written from the manifest (it was missing or purged).
    pub registered: bool,
}

/// Finds the archive's manifest entry and checks the archive against it.
async fn verified_entry(req: &RestoreRequest) -> anyhow::Result<(Manifest, ManifestEntry)> {
    let file_name = req
        .archive
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("{} is not a file", req.archive.display()))?
        .to_owned();
    let dir = req
        .archive
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let manifest = Manifest::read(dir).map_err(|e| {
        anyhow::anyhow!("{e:#} (a restore needs the manifest.json written next to the archive)")
    })?;
    let entry = manifest
        .tenants
        .iter()
        .find(|e| e.archive == file_name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{MANIFEST} has no entry for {file_name}"))?;
    if entry.tenant_id != req.source.as_str() {
        anyhow::bail!(
            "{file_name} holds tenant {}, not {}",
            entry.tenant_id,
            req.source
        );
    }
    let (bytes, sha256) = file_digest(&req.archive).await?;
    if bytes != entry.bytes || sha256 != entry.sha256 {
        anyhow::bail!(
            "{} does not match its manifest (size {bytes} vs {}, sha256 {sha256} vs {}): \
             the archive is damaged or was replaced",
            req.archive.display(),
            entry.bytes,
            entry.sha256
        );
    }
    Ok((manifest, entry))
}

/// `$tag$…$tag$` with a tag that does not occur in `s`: a literal that needs no escaping.
fn dollar_quote(s: &str) -> String {
    let mut tag = String::from("$mtpaas$");
    let mut n = 0;
    while s.contains(&tag) {
        n += 1;
        tag = format!("$mtpaas{n}$");
    }
    format!("{tag}{s}{tag}")
}

/// A schema name for a schema moved aside during a restore.
fn aside_name(what: &str) -> String {
    format!(
        "mtpaas_restore_{what}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Restores a tenant from a backup archive; see the module docs for how.
pub async fn restore_tenant(
    pool: &PgPool,
    central: &TenantId,
    tools: &PgTools,
    req: &RestoreRequest,
) -> anyhow::Result<Restored> {
    let (_manifest, entry) = verified_entry(req).await?;
    tools.check(pool, "pg_restore").await?;
    tools.check(pool, "psql").await?;

    // The archive must hold exactly the source's schema.
    let list = tools
        .command("pg_restore")
        .arg("--list")
        .arg(&req.archive)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run pg_restore: {e}"))?;
    if !list.status.success() {
        anyhow::bail!(
            "{} is not a pg_dump archive: {}",
            req.archive.display(),
            String::from_utf8_lossy(&list.stderr).trim()
        );
    }
    let toc = String::from_utf8_lossy(&list.stdout);
    let schemas: Vec<&str> = toc
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip_while(|w| *w != "SCHEMA");
            (w.next() == Some("SCHEMA") && w.next() == Some("-")).then(|| w.next())?
        })
        .collect();
    if schemas != [req.source.as_str()] {
        anyhow::bail!(
            "{} should hold schema {} only; it holds {:?}",
            req.archive.display(),
            req.source,
            schemas
        );
    }

    // Where things stand.
    let c = central.quoted();
    let (target_status, target_schema, source_schema): (Option<String>, bool, bool) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT status FROM {c}.tenants WHERE tenant_id = $1), \
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                    EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $2)"
        )))
        .bind(req.target.as_str())
        .bind(req.source.as_str())
        .fetch_one(pool)
        .await?;
    let t = req.target.quoted();
    let s = req.source.quoted();
    if target_schema && !req.replace {
        anyhow::bail!(match &target_status {
            Some(st) => format!(
                "tenant {} exists ({st}) and has its schema: pass --replace to replace its \
                 data with the archive's, or --as <new id> to restore a copy",
                req.target
            ),
            None => format!(
                "a schema named {} exists but no tenant does: pass --replace to replace it, \
                 or --as <new id>",
                req.target
            ),
        });
    }
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
          WHERE table_schema = $1 AND table_name = 'tenants' ORDER BY ordinal_position",
    )
    .bind(central.as_str())
    .fetch_all(pool)
    .await?;

    // The prelude moves aside what is in the way; the postlude puts names back in place
    // and drops a replaced schema, then writes the registry.
    let old = target_schema.then(|| quote_ident(&aside_name("old")));
    let hold =
        (req.source != req.target && source_schema).then(|| quote_ident(&aside_name("hold")));
    let replaced = old.is_some();
    let mut prelude = String::from(
        "SET LOCAL citus.enable_schema_based_sharding TO off;\n\
         SET LOCAL lock_timeout = '30s';\n",
    );
    if let Some(old) = &old {
        prelude.push_str(&format!("ALTER SCHEMA {t} RENAME TO {old};\n"));
    }
    if let Some(hold) = &hold {
        prelude.push_str(&format!("ALTER SCHEMA {s} RENAME TO {hold};\n"));
    }
    let mut postlude = String::from("\n;\nSET LOCAL lock_timeout = '30s';\n");
    if req.source != req.target {
        postlude.push_str(&format!("ALTER SCHEMA {s} RENAME TO {t};\n"));
    }
    if let Some(hold) = &hold {
        postlude.push_str(&format!("ALTER SCHEMA {hold} RENAME TO {s};\n"));
    }
    if let Some(old) = &old {
        postlude.push_str(&format!("DROP SCHEMA {old} CASCADE;\n"));
    }

    let registered = matches!(target_status.as_deref(), None | Some("purged"));
    let mut status = target_status.clone().unwrap_or_default();
    if registered {
        let row = entry.tenant.clone();
        status = row
            .get("status")
            .and_then(|v| v.as_str())
            .unwrap_or("active")
            .to_owned();
        if status == "purged" {
            status = "deleted".into();
        }
        let present: Vec<&String> = columns
            .iter()
            .filter(|col| *col != "tenant_id" && row.get(col.as_str()).is_some())
            .collect();
        let names: Vec<String> = present.iter().map(|c| quote_ident(c)).collect();
        let values: Vec<String> = present
            .iter()
            .map(|c| format!("r.{}", quote_ident(c)))
            .collect();
        let updates: Vec<String> = names
            .iter()
            .map(|n| format!("{n} = EXCLUDED.{n}"))
            .collect();
        postlude.push_str(&format!(
            "INSERT INTO {c}.tenants (tenant_id{cols}) \
             SELECT {tid}{vals} FROM jsonb_populate_record(NULL::{c}.tenants, {json}::jsonb) r \
             ON CONFLICT (tenant_id) DO UPDATE SET {upd};\n",
            cols = names.iter().map(|n| format!(", {n}")).collect::<String>(),
            tid = dollar_quote(req.target.as_str()),
            vals = values.iter().map(|v| format!(", {v}")).collect::<String>(),
            json = dollar_quote(&row.to_string()),
            upd = if updates.is_empty() {
                "tenant_id = EXCLUDED.tenant_id".to_owned()
            } else {
                updates.join(", ")
            },
        ));
        // A copy under a new id is a new tenant; a deleted tenant brought back starts
        // its retention period again, so the next purge does not drop it at once.
        let mut fixes = vec![
            "updated_at = NOW()".to_owned(),
            format!("status = {}", dollar_quote(&status)),
        ];
        if req.source != req.target {
            fixes.push("created_at = NOW()".into());
        }
        if status == "deleted" {
            fixes.push("deleted_at = NOW()".into());
        }
        postlude.push_str(&format!(
            "UPDATE {c}.tenants SET {} WHERE tenant_id = {};\n",
            fixes.join(", "),
            dollar_quote(req.target.as_str())
        ));
    } else {
        postlude.push_str(&format!(
            "UPDATE {c}.tenants SET updated_at = NOW() WHERE tenant_id = {};\n",
            dollar_quote(req.target.as_str())
        ));
    }
    let file_name = req
        .archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let detail = format!(
        "Restored from {file_name} (tenant {}, taken {}, schema version {}){}",
        entry.tenant_id,
        entry.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
        entry.schema_version,
        if replaced {
            "; previous schema replaced"
        } else {
            ""
        }
    );
    postlude.push_str(&format!(
        "INSERT INTO {c}.tenant_schema_versions (schema_name, version) VALUES ({tid}, {v}) \
         ON CONFLICT (schema_name) DO UPDATE SET version = EXCLUDED.version, updated_at = now();\n\
         INSERT INTO {c}.tenant_events (tenant_id, event, actor, detail) \
         VALUES ({tid}, 'restored', {actor}, {detail});\n\
         SELECT pg_notify('{CHANNEL}', {tid});\n",
        tid = dollar_quote(req.target.as_str()),
        v = entry.schema_version,
        actor = dollar_quote(&req.actor),
        detail = dollar_quote(&detail),
    ));

    run_restore_script(tools, &req.archive, &prelude, &postlude).await?;

    // Citus: a restored schema is a plain local schema until it is distributed.
    let citus: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
            .fetch_one(pool)
            .await?;
    if citus
        && let Err(e) = sqlx::query("SELECT citus_schema_distribute($1::regnamespace)")
            .bind(req.target.as_str())
            .execute(pool)
            .await
    {
        tracing::warn!(tenant_id = %req.target, error = %e, "restored schema not distributed");
    }

    Ok(Restored {
        target: req.target.clone(),
        status,
        schema_version: entry.schema_version,
        replaced,
        registered,
    })
}

/// Fails the transaction when the archive could not be read to its end. `\.` first
/// ends a COPY the archive's text may have been cut off in (outside a COPY, psql
/// refuses it, which fails the transaction just as well).
const ABORT: &str = "\n\\.\n\
    DO $mtpaas$BEGIN RAISE EXCEPTION 'pg_restore failed: the archive was not read to its end; nothing was restored'; END$mtpaas$;\n";

/// `pg_restore -f - | psql --single-transaction`, with our prelude and postlude.
async fn run_restore_script(
    tools: &PgTools,
    archive: &Path,
    prelude: &str,
    postlude: &str,
) -> anyhow::Result<()> {
    let mut restore = tools
        .command("pg_restore")
        .arg("--no-owner")
        .arg("--file=-")
        .arg(archive)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run pg_restore: {e}"))?;
    let mut psql = tools
        .command("psql")
        .args([
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            "--single-transaction",
            "--file=-",
        ])
        .arg(tools.dbname_arg())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run psql: {e}"))?;

    let mut from = restore.stdout.take().expect("piped stdout");
    let mut restore_err = restore.stderr.take().expect("piped stderr");
    let mut to = psql.stdin.take().expect("piped stdin");
    let restore_errors = tokio::spawn(async move {
        let mut s = String::new();
        let _ = restore_err.read_to_string(&mut s).await;
        s
    });
    let feed = async {
        to.write_all(prelude.as_bytes()).await?;
        tokio::io::copy(&mut from, &mut to).await?;
        let status = restore.wait().await?;
        let tail = if status.success() { postlude } else { ABORT };
        to.write_all(tail.as_bytes()).await?;
        to.shutdown().await?;
        drop(to);
        Ok::<_, std::io::Error>(status)
    };
    let (fed, psql_out) = tokio::join!(feed, psql.wait_with_output());
    let psql_out = psql_out.map_err(|e| anyhow::anyhow!("psql: {e}"))?;
    let restore_errors = restore_errors.await.unwrap_or_default();
    let psql_errors = String::from_utf8_lossy(&psql_out.stderr);
    match fed {
        Ok(st) if !st.success() => anyhow::bail!(
            "pg_restore failed ({st}), nothing was restored: {}",
            restore_errors.trim()
        ),
        _ if !psql_out.status.success() => anyhow::bail!(
            "the restore failed and was rolled back, nothing changed: {}",
            last_lines(&psql_errors, 12)
        ),
        Err(e) => anyhow::bail!("feeding psql failed: {e}; {}", last_lines(&psql_errors, 12)),
        Ok(_) => Ok(()),
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let t = PgTools::new(
            "postgres://app:p%40ss%2Fw@db.example:5433/svc?sslmode=require&statement-cache-capacity=10",
            Some("/usr/lib/postgresql/15/bin"),
        )
        .unwrap();
        assert_eq!(t.password.as_deref(), Some("p@ss/w"));
        assert_eq!(
            t.dbname,
            "postgres://app@db.example:5433/svc?sslmode=require"
        );
        assert!(!format!("{t:?}").contains("p@ss"));
        assert_eq!(
            t.program("pg_dump"),
            PathBuf::from("/usr/lib/postgresql/15/bin/pg_dump")
        );
        let t = PgTools::new(
            "postgres://a@h/d?ssl-mode=verify-full&ssl-ca=/c/ca.crt&sslcert=/c/c.crt&ssl-key=/c/c.key",
            None,
        )
        .unwrap();
        assert_eq!(
            t.dbname,
            "postgres://a@h/d?sslmode=verify-full&sslrootcert=%2Fc%2Fca.crt&sslcert=%2Fc%2Fc.crt&sslkey=%2Fc%2Fc.key"
        );
        let t = PgTools::new("postgres://postgres@127.0.0.1:5432/test", None).unwrap();
        assert_eq!(t.password, None);
        assert_eq!(t.dbname, "postgres://postgres@127.0.0.1:5432/test");
        assert!(PgTools::new("mysql://x@y/z", None).is_err());
    }

    #[test]
    fn dollar_quotes_never_end_early() {
        assert_eq!(dollar_quote("it's"), "$mtpaas$it's$mtpaas$");
        assert_eq!(dollar_quote("a$mtpaas$b"), "$mtpaas1$a$mtpaas$b$mtpaas1$");
    }
}
