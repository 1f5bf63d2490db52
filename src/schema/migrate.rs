//! Migrations: the central schema (sqlx's migrator, run with `search_path` set to the
//! central schema), and the tenant migrations (`migrations/tenant/`) applied to the
//! template schema and to every tenant schema, each schema's version kept centrally in
//! `tenant_schema_versions`.

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::ProgressBar;
use sqlx::migrate::Migrator;
use sqlx::{Acquire, Executor, PgConnection, PgPool};

use crate::tenant_id::TenantId;

pub static CENTRAL: Migrator = sqlx::migrate!("./migrations/central");
pub static TENANT: Migrator = sqlx::migrate!("./migrations/tenant");

/// One tenant migration: its version and the SQL run inside a tenant schema.
#[derive(Debug, Clone)]
pub struct TenantMigration {
    pub version: i64,
    pub description: String,
    pub sql: String,
}

/// The tenant migrations, in order.
pub fn tenant_migrations() -> &'static [TenantMigration] {
    static ALL: LazyLock<Vec<TenantMigration>> = LazyLock::new(|| {
        let mut v: Vec<_> = TENANT
            .iter()
            .map(|m| TenantMigration {
                version: m.version,
                description: m.description.to_string(),
                sql: m.sql.as_str().to_owned(),
            })
            .collect();
        v.sort_by_key(|m| m.version);
        v
    });
    &ALL
}

/// The version a schema is at once every tenant migration is applied.
pub fn latest_tenant_version() -> i64 {
    latest_version_in(tenant_migrations())
}

/// The DDL of every tenant migration after `from`, as one script.
pub fn pending_script(from: i64) -> String {
    pending_script_in(tenant_migrations(), from)
}

/// The last version of a migration set (sorted by version).
pub fn latest_version_in(migrations: &[TenantMigration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

/// The DDL of every migration of `migrations` after `from`, as one script.
pub fn pending_script_in(migrations: &[TenantMigration], from: i64) -> String {
    migrations
        .iter()
        .filter(|m| m.version > from)
        .map(|m| m.sql.as_str())
        .collect::<Vec<_>>()
        .join("\n;\n")
}

/// The statements of a script, in order, each without its `;`: split on semicolons
/// outside quotes ('…', "…"), dollar quotes ($$…$$, $tag$…$tag$) and comments (-- and
/// /* */). Empty statements are dropped.
///
/// Tenant DDL is sent one statement per message: on Citus a message holding several
/// statements fails as soon as one of them is DDL Citus propagates to a worker (it
/// re-sends the whole message there). Only statement boundaries are needed, so a
/// tokenizer this small does instead of an SQL parser.
pub fn statements(script: &str) -> Vec<&str> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // $tag$ where tag is empty or an identifier (not a positional $1).
                let tag_end = script[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map(|n| i + 1 + n);
                if let Some(e) = tag_end
                    && b[e] == b'$'
                    && !b.get(i + 1).is_some_and(u8::is_ascii_digit)
                {
                    let tag = &script[i..=e];
                    match script[e + 1..].find(tag) {
                        Some(n) => i = e + 1 + n + tag.len() - 1,
                        None => i = b.len(),
                    }
                }
            }
            b';' => {
                push_statement(&mut out, &script[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push_statement(&mut out, &script[start.min(b.len())..]);
    out
}

fn push_statement<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    let only_comments = s
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with("--"));
    if !only_comments {
        out.push(s);
    }
}

/// Runs `script` one statement per message (see [`statements`]).
pub async fn execute_each(conn: &mut PgConnection, script: &str) -> Result<(), sqlx::Error> {
    for statement in statements(script) {
        conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)))
            .await?;
    }
    Ok(())
}

/// A session advisory lock key for one named job, stable across processes.
pub fn lock_key(name: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

/// Creates the central schema if needed and applies its migrations. Serialized across
/// replicas by an advisory lock; the connection is closed afterwards so the
/// `search_path` it used never reaches the pool.
pub async fn migrate_central(pool: &PgPool, central: &TenantId) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    let q = central.quoted();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key(&format!("mtpaas:migrate:{central}")))
        .execute(&mut *conn)
        .await?;
    // On Citus the central schema stays on the coordinator (with schema-based sharding
    // on, a new schema would be distributed to a worker); plain Postgres takes the
    // setting as a placeholder.
    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET citus.enable_schema_based_sharding TO off; CREATE SCHEMA IF NOT EXISTS {q}; \
         SET search_path TO {q}"
    ))))
    .await?;
    CENTRAL.run(&mut *conn).await?;
    Ok(())
}

/// Start-up: the central schema's migrations, then the template schema's.
pub async fn migrate_all(pool: &PgPool, config: &crate::config::Config) -> anyhow::Result<()> {
    migrate_central(pool, &config.central_schema).await?;
    migrate_template(pool, &config.central_schema, &config.template_schema).await?;
    Ok(())
}

/// Creates the template schema if needed and brings it to the latest tenant version.
pub async fn migrate_template(
    pool: &PgPool,
    central: &TenantId,
    template: &TenantId,
) -> anyhow::Result<i64> {
    migrate_template_with(pool, central, template, tenant_migrations()).await
}

/// [`migrate_template`] with a given migration set (the embedded one plus extras).
pub async fn migrate_template_with(
    pool: &PgPool,
    central: &TenantId,
    template: &TenantId,
    migrations: &[TenantMigration],
) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key(&format!("mtpaas:migrate:{central}:template")))
        .execute(&mut *conn)
        .await?;
    conn.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET citus.enable_schema_based_sharding TO off; CREATE SCHEMA IF NOT EXISTS {}",
        template.quoted()
    ))))
    .await?;
    migrate_schema_with(&mut conn, central, template, migrations).await
}

/// Applies the pending tenant migrations to one schema in one transaction, recording
/// the new version centrally in the same transaction. The version row is locked first,
/// so two migrators never apply the same migration twice. Returns the new version.
pub async fn migrate_schema(
    conn: &mut PgConnection,
    central: &TenantId,
    schema: &TenantId,
) -> anyhow::Result<i64> {
    migrate_schema_with(conn, central, schema, tenant_migrations()).await
}

/// [`migrate_schema`] with a given migration set, sorted by version.
pub async fn migrate_schema_with(
    conn: &mut PgConnection,
    central: &TenantId,
    schema: &TenantId,
    migrations: &[TenantMigration],
) -> anyhow::Result<i64> {
    let versions = format!("{}.tenant_schema_versions", central.quoted());
    let mut tx = conn.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {versions} (schema_name, version) VALUES ($1, 0) ON CONFLICT DO NOTHING"
    )))
    .bind(schema.as_str())
    .execute(&mut *tx)
    .await?;
    let (current,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {versions} WHERE schema_name = $1 FOR UPDATE"
    )))
    .bind(schema.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let latest = latest_version_in(migrations);
    if current >= latest {
        tx.rollback().await?;
        return Ok(current);
    }
    tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET LOCAL search_path TO {}",
        schema.quoted()
    ))))
    .await?;
    execute_each(&mut tx, &pending_script_in(migrations, current)).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {versions} SET version = $2, updated_at = now() WHERE schema_name = $1"
    )))
    .bind(schema.as_str())
    .bind(latest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(latest)
}

/// The embedded tenant migrations followed by extra ones read from `dir` at run time
/// (`NNNN_description.sql`, versions above the embedded ones). For operators who test a
/// migration against a copy of production before it ships, and for the tests.
pub fn with_extra_migrations(dir: &Path) -> anyhow::Result<Vec<TenantMigration>> {
    let mut all = tenant_migrations().to_vec();
    let embedded_latest = latest_tenant_version();
    let mut extra = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read migrations directory {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let (version, description) = parse_migration_name(&name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: a migration file is named NNNN_description.sql",
                path.display()
            )
        })?;
        if version <= embedded_latest {
            anyhow::bail!(
                "{}: version {version} is not above the built-in migrations (latest {embedded_latest})",
                path.display()
            );
        }
        let sql = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        extra.push(TenantMigration {
            version,
            description,
            sql,
        });
    }
    extra.sort_by_key(|m| m.version);
    if let Some(w) = extra.windows(2).find(|w| w[0].version == w[1].version) {
        anyhow::bail!("two extra migrations have version {}", w[0].version);
    }
    all.extend(extra);
    Ok(all)
}

/// `0002_add_nickname` → (2, "add nickname").
fn parse_migration_name(stem: &str) -> Option<(i64, String)> {
    let (num, rest) = stem.split_once('_')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    Some((num.parse().ok()?, rest.replace('_', " ")))
}

/// An error and its causes on one line, each cause said once (sqlx repeats the
/// database's message in its own).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// A tenant whose schema is behind, with the version recorded for it.
#[derive(Debug, Clone)]
pub struct Behind {
    pub tenant_id: String,
    pub version: i64,
}

/// Every tenant that is not purged, and those of them whose recorded version is below
/// `latest`: one query on the central schema, whatever the number of tenants.
pub async fn tenants_behind(
    pool: &PgPool,
    central: &TenantId,
    latest: i64,
) -> Result<(usize, Vec<Behind>), sqlx::Error> {
    let c = central.quoted();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT t.tenant_id, COALESCE(v.version, 0), count(*) OVER () \
           FROM {c}.tenants t \
           LEFT JOIN {c}.tenant_schema_versions v ON v.schema_name = t.tenant_id \
          WHERE t.status <> 'purged' \
          ORDER BY COALESCE(v.version, 0) < $1 DESC, t.tenant_id"
    )))
    .bind(latest)
    .fetch_all(pool)
    .await?;
    let total = rows.first().map_or(0, |r| r.2 as usize);
    let behind = rows
        .into_iter()
        .filter(|r| r.1 < latest)
        .map(|(tenant_id, version, _)| Behind { tenant_id, version })
        .collect();
    Ok((total, behind))
}

/// What [`migrate_tenants`] did.
#[derive(Debug, Clone, Default)]
pub struct MigrateReport {
    /// The version every tenant schema should reach.
    pub latest: i64,
    /// Tenants considered (every tenant not purged).
    pub tenants: usize,
    /// Tenants that were already at `latest`.
    pub up_to_date: usize,
    /// Tenants brought to `latest` by this run.
    pub migrated: usize,
    /// Tenants that failed, with the reason. Their schema and version are unchanged.
    pub failed: Vec<(String, String)>,
    pub elapsed: Duration,
}

/// Brings every tenant schema (not purged) to the last version of `migrations`, `jobs`
/// tenants at a time. Each tenant is migrated in a transaction of its own that also
/// records its version ([`migrate_schema_with`]), so an interrupted run (crash,
/// `kill -9`) leaves every tenant either migrated or untouched, and a rerun finishes the
/// rest; the version row is locked first, so no migration is ever applied twice, even
/// by two runs at once. One tenant failing does not stop the others.
///
/// `progress` gets its length set and one tick per tenant; failures are printed above
/// it (or logged, when it is hidden).
pub async fn migrate_tenants(
    pool: &PgPool,
    central: &TenantId,
    migrations: &[TenantMigration],
    jobs: usize,
    progress: &ProgressBar,
) -> anyhow::Result<MigrateReport> {
    let started = Instant::now();
    let latest = latest_version_in(migrations);
    let (tenants, behind) = tenants_behind(pool, central, latest).await?;
    let mut report = MigrateReport {
        latest,
        tenants,
        up_to_date: tenants - behind.len(),
        ..MigrateReport::default()
    };
    progress.set_length(behind.len() as u64);
    let mut results = futures::stream::iter(behind)
        .map(|b| async move {
            let outcome = async {
                let id = TenantId::parse(&b.tenant_id)
                    .map_err(|e| anyhow::anyhow!("not a valid schema name: {e}"))?;
                let mut conn = pool.acquire().await?;
                migrate_schema_with(&mut conn, central, &id, migrations).await
            }
            .await;
            (b.tenant_id, outcome)
        })
        .buffer_unordered(jobs.max(1));
    while let Some((tenant, outcome)) = results.next().await {
        match outcome {
            Ok(_) => report.migrated += 1,
            Err(e) => {
                let reason = error_text(&e);
                if progress.is_hidden() {
                    tracing::warn!(tenant_id = %tenant, error = %reason, "tenant migration failed");
                } else {
                    progress.println(format!("failed: {tenant}: {reason}"));
                }
                report.failed.push((tenant, reason));
            }
        }
        progress.inc(1);
    }
    report.failed.sort();
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_migrations_are_embedded_in_order() {
        let all = tenant_migrations();
        assert!(!all.is_empty());
        assert!(all.windows(2).all(|w| w[0].version < w[1].version));
        assert!(pending_script(0).contains("CREATE TABLE user_mst"));
        assert_eq!(pending_script(latest_tenant_version()), "");
    }

    #[test]
    fn migration_file_names_give_version_and_description() {
        assert_eq!(
            parse_migration_name("0002_add_nickname"),
            Some((2, "add nickname".into()))
        );
        assert_eq!(parse_migration_name("12_x"), Some((12, "x".into())));
        for bad in ["add_nickname", "0002", "0002_", "_x", "00a2_x"] {
            assert_eq!(parse_migration_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn extra_migrations_follow_the_embedded_ones() {
        let dir = std::env::temp_dir().join(format!("mtpaas-extra-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let next = latest_tenant_version() + 1;
        std::fs::write(dir.join(format!("{next:04}_add_x.sql")), "SELECT 1").unwrap();
        std::fs::write(dir.join("README.txt"), "ignored").unwrap();
        let all = with_extra_migrations(&dir).unwrap();
        assert_eq!(latest_version_in(&all), next);
        assert_eq!(all.last().unwrap().description, "add x");
        assert_eq!(pending_script_in(&all, next - 1), "SELECT 1");

        std::fs::write(dir.join("0001_old.sql"), "SELECT 2").unwrap();
        let err = with_extra_migrations(&dir).unwrap_err().to_string();
        assert!(err.contains("not above the built-in migrations"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scripts_split_into_statements_outside_quotes_and_comments() {
        let script = "-- header; with a semicolon\nCREATE TABLE a (x text DEFAULT ';');\n\
             CREATE INDEX \"i;x\" ON a (x) /* a ; comment */;\n\
             CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
             SELECT $$a;b$$, $1::int\n;\n-- trailing comment only\n";
        assert_eq!(
            statements(script),
            vec![
                "-- header; with a semicolon\nCREATE TABLE a (x text DEFAULT ';')",
                "CREATE INDEX \"i;x\" ON a (x) /* a ; comment */",
                "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql",
                "SELECT $$a;b$$, $1::int",
            ]
        );
        assert!(statements("").is_empty());
        assert!(statements(" ;; -- nothing\n").is_empty());
        assert_eq!(
            statements("SELECT 'unterminated;"),
            vec!["SELECT 'unterminated;"]
        );
    }

    #[test]
    fn every_tenant_migration_splits_into_its_statements() {
        let n = statements(&pending_script(0)).len();
        assert!(n >= 4, "the tenant tables and indexes: {n}");
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("a"), lock_key("a"));
        assert_ne!(lock_key("a"), lock_key("b"));
    }
}
