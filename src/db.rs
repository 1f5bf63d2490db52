//! The central Postgres pool (the registry, provisioning, usage, webhooks, operators)
//! and the connect options every connection mtpaas opens starts from.

use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::Config;

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
