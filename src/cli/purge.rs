//! `mtpaas purge`: tenants soft-deleted more than RETENTION_DAYS ago are backed up and
//! dropped. A dry run (the default) only lists them.

use std::path::PathBuf;

use crate::archive::purge::{PurgeSettings, candidates, purge_expired};
use crate::cli::progress::Progress;
use crate::config::Config;
use crate::schema::provision::Actor;

#[derive(Debug, Clone, clap::Args)]
pub struct PurgeArgs {
    /// Really back up and drop them (without it: list what would be purged).
    #[arg(long)]
    pub yes: bool,
    /// Days a deleted tenant is kept (default: RETENTION_DAYS).
    #[arg(long)]
    pub retention_days: Option<u32>,
    /// Where the backups are written (default: BACKUP_DIR).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How many pg_dump processes run at once.
    #[arg(long, short = 'j', default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub jobs: u32,
}

pub async fn run(config: &Config, args: PurgeArgs) -> anyhow::Result<()> {
    let retention_days = args.retention_days.unwrap_or(config.retention_days);
    let pool = super::connect(config, args.jobs + 2).await?;
    super::ensure_central(&pool, config).await?;
    let central = &config.central_schema;

    if !args.yes {
        let due = candidates(&pool, central, retention_days).await?;
        println!(
            "{} tenant(s) deleted more than {retention_days} day(s) ago",
            due.len()
        );
        for c in &due {
            println!(
                "  {}  deleted {} ({} days ago){}",
                c.tenant_id,
                c.deleted_at.format("%Y-%m-%d %H:%M:%S"),
                c.days,
                c.deleted_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
        if !due.is_empty() {
            println!("dry run, nothing changed: pass --yes to back them up and purge them");
        }
        return Ok(());
    }

    let root = args
        .dir
        .unwrap_or_else(|| PathBuf::from(&config.backup_dir));
    let settings = PurgeSettings {
        central,
        retention_days,
        backup_root: &root,
        actor: Actor::Cli.as_str(),
        jobs: args.jobs as usize,
    };
    let progress = Progress::new("backed up");
    let report = purge_expired(
        &pool,
        &super::backup::tools(config)?,
        &settings,
        progress.bar(),
    )
    .await;
    progress.finish();
    let Some(report) = report? else {
        anyhow::bail!("another purge is running (in a server or another shell); try again later");
    };
    if let Some(dir) = &report.backup_dir {
        println!("backups: {}", dir.display());
    }
    for t in &report.purged {
        println!("purged {t}");
    }
    for (t, why) in &report.skipped {
        println!("skipped {t}: {why}");
    }
    for (t, why) in &report.failed {
        println!("failed {t}: {why}");
    }
    println!(
        "{} tenant(s) purged, {} skipped, {} failed (retention {retention_days} day(s))",
        report.purged.len(),
        report.skipped.len(),
        report.failed.len()
    );
    if !report.failed.is_empty() {
        anyhow::bail!("{} tenant(s) could not be purged", report.failed.len());
    }
    Ok(())
}
