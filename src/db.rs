//! The Postgres pool and the start-up migrations.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;
use crate::tenancy::{TenantPools, migrate};

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

/// The pools tenant-scoped connections come from (`tenancy::pools`). With one shard it
/// is the central pool itself; with `S` shards (default: one per connection), each
/// opens at most `DB_MAX_CONNECTIONS / S` connections (at least one), lazily, and the
/// central pool keeps its own, idle ones closed after two minutes.
pub fn tenant_pools(config: &Config, central: &PgPool) -> anyhow::Result<TenantPools> {
    let shards = config.db_pool_shards.max(1);
    if shards == 1 {
        return Ok(TenantPools::new(vec![central.clone()]));
    }
    let per_shard = (config.db_max_connections / shards).max(1);
    let opts = connect_options(config)?;
    let pools = (0..shards)
        .map(|_| {
            pool_options(config)
                .max_connections(per_shard)
                .connect_lazy_with(opts.clone())
        })
        .collect();
    Ok(TenantPools::new(pools))
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
