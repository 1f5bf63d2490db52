//! Migrations: the central schema (sqlx's migrator, run with `search_path` set to the
//! central schema), and the tenant migrations (`migrations/tenant/`) applied to the
//! template schema and to every tenant schema, each schema's version kept centrally in
//! `tenant_schema_versions`.

use std::sync::LazyLock;

use sqlx::migrate::Migrator;
use sqlx::{Acquire, Executor, PgConnection, PgPool};

use crate::tenancy::id::TenantId;

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
                sql: m.sql.to_string(),
            })
            .collect();
        v.sort_by_key(|m| m.version);
        v
    });
    &ALL
}

/// The version a schema is at once every tenant migration is applied.
pub fn latest_tenant_version() -> i64 {
    tenant_migrations().last().map_or(0, |m| m.version)
}

/// The DDL of every tenant migration after `from`, as one script.
pub fn pending_script(from: i64) -> String {
    tenant_migrations()
        .iter()
        .filter(|m| m.version > from)
        .map(|m| m.sql.as_str())
        .collect::<Vec<_>>()
        .join("\n;\n")
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
    conn.execute(sqlx::raw_sql(&format!(
        "CREATE SCHEMA IF NOT EXISTS {q}; SET search_path TO {q}"
    )))
    .await?;
    CENTRAL.run(&mut *conn).await?;
    Ok(())
}

/// Creates the template schema if needed and brings it to the latest tenant version.
pub async fn migrate_template(
    pool: &PgPool,
    central: &TenantId,
    template: &TenantId,
) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    conn.close_on_drop();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key(&format!("mtpaas:migrate:{central}:template")))
        .execute(&mut *conn)
        .await?;
    conn.execute(sqlx::raw_sql(&format!(
        "SET citus.enable_schema_based_sharding TO off; CREATE SCHEMA IF NOT EXISTS {}",
        template.quoted()
    )))
    .await?;
    migrate_schema(&mut conn, central, template).await
}

/// Applies the pending tenant migrations to one schema in one transaction, recording
/// the new version centrally in the same transaction. The version row is locked first,
/// so two migrators never apply the same migration twice. Returns the new version.
pub async fn migrate_schema(
    conn: &mut PgConnection,
    central: &TenantId,
    schema: &TenantId,
) -> anyhow::Result<i64> {
    let versions = format!("{}.tenant_schema_versions", central.quoted());
    let mut tx = conn.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO {versions} (schema_name, version) VALUES ($1, 0) ON CONFLICT DO NOTHING"
    ))
    .bind(schema.as_str())
    .execute(&mut *tx)
    .await?;
    let (current,): (i64,) = sqlx::query_as(&format!(
        "SELECT version FROM {versions} WHERE schema_name = $1 FOR UPDATE"
    ))
    .bind(schema.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let latest = latest_tenant_version();
    if current >= latest {
        tx.rollback().await?;
        return Ok(current);
    }
    let script = format!(
        "SET LOCAL search_path TO {}; {}",
        schema.quoted(),
        pending_script(current)
    );
    tx.execute(sqlx::raw_sql(&script)).await?;
    sqlx::query(&format!(
        "UPDATE {versions} SET version = $2, updated_at = now() WHERE schema_name = $1"
    ))
    .bind(schema.as_str())
    .bind(latest)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(latest)
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
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("a"), lock_key("a"));
        assert_ne!(lock_key("a"), lock_key("b"));
    }
}
