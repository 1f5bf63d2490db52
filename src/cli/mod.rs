//! The `mtpaas` command line: `serve` (the default) and the operator commands.

pub mod webhook;

use clap::{Parser, Subcommand};

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
    Migrate,
    /// Send a signed market webhook to a running server (checks an integration).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
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
        Command::Migrate => {
            let pool = db::connect(&config).await?;
            db::migrate_all(&pool, &config).await?;
            println!("central and template schemas are up to date");
            Ok(())
        }
        Command::Webhook(cmd) => webhook::run(cmd, &config).await,
    }
}
