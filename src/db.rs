//! The Postgres pool and the start-up migrations.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;
use crate::tenancy::pools::TenantConnsConfig;
use crate::tenancy::wire::{WireConn, WireOptions};
use crate::tenancy::{TenantConns, migrate};

/// How long start-up waits for Postgres to accept connections.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

pub fn pool_options(config: &Config) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .min_connections(0)
        .acquire_timeout(config.db_acquire_timeout)
        // Per-connection catalog caches grow with every schema a connection touches;
        // recycling connections bounds Postgres backend memory with many tenants.
        .max_lifetime(config.db_max_lifetime)
        .idle_timeout(Duration::from_secs(120))
        // No ping before each acquire: a dead connection fails its query and is dropped.
        .test_before_acquire(false)
}

/// The tenant connections (`tenancy::pools`): `DB_TENANT_CONNECTIONS` of them besides
/// the central pool's, opened lazily.
pub fn tenant_conns(config: &Config) -> anyhow::Result<TenantConns> {
    Ok(TenantConns::new(
        connect_options(config)?,
        tenant_conns_config(config),
    ))
}

/// The connections tenant reads go over (`tenancy::wire`), as many as
/// [`tenant_conns`] and routed the same way; `None` when `DATABASE_URL` requires TLS
/// or `DB_WIRE_READS=false` (reads then take the tenant connections through sqlx).
pub fn tenant_reads(config: &Config) -> anyhow::Result<Option<TenantConns<WireConn>>> {
    if !config.db_wire_reads {
        return Ok(None);
    }
    let opts = connect_options(config)?;
    Ok(
        WireOptions::from_config(&opts, config.database_url.expose_secret())
            .map(|o| TenantConns::new(o, tenant_conns_config(config))),
    )
}

fn tenant_conns_config(config: &Config) -> TenantConnsConfig {
    TenantConnsConfig {
        connections: config.db_tenant_connections.max(1) as usize,
        acquire_timeout: config.db_acquire_timeout,
        max_lifetime: config.db_max_lifetime,
        borrow_limit: config.db_conn_tenants as usize,
    }
}

pub fn connect_options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    let opts: PgConnectOptions = config.database_url.expose_secret().parse()?;
    Ok(opts.application_name("mtpaas"))
}

/// Connects, retrying while Postgres is not yet up (containers start in any order).
pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    let opts = connect_options(config)?;
    let started = std::time::Instant::now();
    loop {
        match pool_options(config).connect_with(opts.clone()).await {
            Ok(pool) => return Ok(pool),
            Err(e) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(error = %e, "waiting for Postgres");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot connect to Postgres: {e}")),
        }
    }
}

/// The central schema's migrations, then the template schema's.
pub async fn migrate_all(pool: &PgPool, config: &Config) -> anyhow::Result<()> {
    migrate::migrate_central(pool, &config.central_schema).await?;
    migrate::migrate_template(pool, &config.central_schema, &config.template_schema).await?;
    Ok(())
}
