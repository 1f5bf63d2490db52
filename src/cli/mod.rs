//! The `mtpaas` command line: `serve` (the default) and the operator commands.

pub mod backup;
pub mod check;
pub mod cluster;
pub mod migrate;
pub mod progress;
pub mod purge;
pub mod tenant;
pub mod webhook;

use clap::{Parser, Subcommand};
use sqlx::PgPool;

use crate::config::Config;
use crate::{Application, db, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "mtpaas",
    version,
    about = "Multi-tenant layer for AI services sold on the service market"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply the central, template and tenant migrations.
    Migrate(migrate::MigrateArgs),
    /// List, show, create, suspend, reinstate or delete tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Compare every tenant schema's structure with the template's; exit 1 on drift.
    Check(check::CheckArgs),
    /// Back up tenant schemas (pg_dump, custom format) with a manifest.
    Backup(backup::BackupArgs),
    /// Restore a tenant from a backup archive, under its own id or a new one.
    Restore(backup::RestoreArgs),
    /// Back up, then drop, tenants soft-deleted more than RETENTION_DAYS ago.
    Purge(purge::PurgeArgs),
    /// Send a signed market webhook to a running server (checks an integration).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// On Citus: the nodes, moving a tenant, rebalancing, distributing tenant schemas.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mtpaas: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            config.announce_generated_secrets();
            let app = Application::build(config).await?;
            app.run_until_stopped().await
        }
        Command::Migrate(args) => operator(migrate::run(&config, args).await),
        Command::Tenant(cmd) => operator(tenant::run(&config, cmd).await),
        Command::Check(args) => operator(check::run(&config, args).await),
        Command::Backup(args) => operator(backup::run_backup(&config, args).await),
        Command::Restore(args) => operator(backup::run_restore(&config, args).await),
        Command::Purge(args) => operator(purge::run(&config, args).await),
        Command::Webhook(cmd) => webhook::run(cmd, &config).await,
        Command::Cluster(cmd) => operator(cluster::run(&config, cmd).await),
    }
}

/// Ends an operator command: its error on one line (no backtrace), exit status 1.
fn operator(result: anyhow::Result<()>) -> anyhow::Result<()> {
    if let Err(e) = result {
        eprintln!("mtpaas: {}", crate::schema::migrate::error_text(&e));
        std::process::exit(1);
    }
    Ok(())
}

/// A pool for an operator command: at most `max_connections`, failing at once (with the
/// reason) when Postgres cannot be reached, rather than waiting like the server does.
pub async fn connect(config: &Config, max_connections: u32) -> anyhow::Result<PgPool> {
    db::pool_options(config)
        .max_connections(max_connections.max(1))
        .connect_with(db::connect_options(config)?)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Postgres: {e}"))
}

/// Refuses to go on when the central schema has not been created yet.
pub async fn ensure_central(pool: &PgPool, config: &Config) -> anyhow::Result<()> {
    let table = format!("{}.tenants", config.central_schema.quoted());
    let present: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(pool)
        .await?;
    if !present {
        anyhow::bail!(
            "the central schema {} is not set up in this database: run `mtpaas migrate` first",
            config.central_schema
        );
    }
    Ok(())
}
