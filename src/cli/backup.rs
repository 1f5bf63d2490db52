//! `mtpaas backup` and `mtpaas restore`.

use std::path::PathBuf;

use secrecy::ExposeSecret;

use crate::archive::backup::{
    BackupRun, PgTools, RestoreRequest, backup_candidates, backup_tenants, restore_tenant,
};
use crate::cli::progress::Progress;
use crate::config::Config;
use crate::schema::provision::Actor;
use crate::tenant_id::TenantId;

#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The tenants to back up.
    pub tenants: Vec<String>,
    /// Back up every tenant that has a schema (all but the purged).
    #[arg(long, conflicts_with = "tenants")]
    pub all: bool,
    /// Where the run's directory is created (default: BACKUP_DIR).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How many pg_dump processes run at once.
    #[arg(long, short = 'j', default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub jobs: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The tenant the archive holds.
    pub tenant: String,
    /// The archive: `<tenant>.dump`, with the manifest.json of its backup beside it.
    pub archive: PathBuf,
    /// Restore as this (new) tenant id instead, leaving the original untouched.
    #[arg(long = "as", value_name = "NEW_TENANT")]
    pub as_tenant: Option<String>,
    /// Replace the target tenant's current schema and data with the archive's.
    #[arg(long)]
    pub replace: bool,
}

pub fn tools(config: &Config) -> anyhow::Result<PgTools> {
    PgTools::new(
        config.database_url.expose_secret(),
        config.pg_bin_dir.as_deref(),
    )
}

pub async fn run_backup(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    if args.tenants.is_empty() && !args.all {
        anyhow::bail!("name the tenants to back up, or pass --all");
    }
    let pool = super::connect(config, args.jobs + 1).await?;
    super::ensure_central(&pool, config).await?;
    let tenants = if args.all {
        backup_candidates(&pool, &config.central_schema).await?
    } else {
        args.tenants
            .iter()
            .map(|t| {
                TenantId::parse(t).map_err(|e| anyhow::anyhow!("invalid tenant id {t:?}: {e}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let root = args
        .dir
        .unwrap_or_else(|| PathBuf::from(&config.backup_dir));
    let progress = Progress::new("backed up");
    if !args.all {
        progress
            .bar()
            .set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let run = backup_tenants(
        &pool,
        &config.central_schema,
        &tools(config)?,
        &tenants,
        &root,
        None,
        args.jobs as usize,
        progress.bar(),
    )
    .await;
    progress.finish();
    let run = run?;
    print!("{}", summary(&run));
    if !run.failed.is_empty() {
        anyhow::bail!(
            "{} tenant(s) not backed up: {}",
            run.failed.len(),
            run.failed
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Human-readable size.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn summary(run: &BackupRun) -> String {
    let mut out = String::new();
    for e in &run.manifest.tenants {
        out.push_str(&format!(
            "{}  {}  version {}  sha256 {}\n",
            run.dir.join(&e.archive).display(),
            size(e.bytes),
            e.schema_version,
            e.sha256
        ));
    }
    for (t, reason) in &run.failed {
        out.push_str(&format!("failed: {t}: {reason}\n"));
    }
    let total: u64 = run.manifest.tenants.iter().map(|e| e.bytes).sum();
    out.push_str(&format!(
        "backed up {} tenant(s), {} in all, to {} (manifest.json)\n",
        run.manifest.tenants.len(),
        size(total),
        run.dir.display()
    ));
    out
}

pub async fn run_restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let parse = |t: &str| {
        config
            .parse_tenant(t)
            .map_err(|e| anyhow::anyhow!("invalid tenant id {t:?}: {e}"))
    };
    let source = parse(&args.tenant)?;
    let target = match &args.as_tenant {
        Some(t) => parse(t)?,
        None => source.clone(),
    };
    let pool = super::connect(config, 2).await?;
    super::ensure_central(&pool, config).await?;
    let req = RestoreRequest {
        archive: args.archive,
        source,
        target,
        replace: args.replace,
        actor: Actor::Cli.as_str().to_owned(),
    };
    let r = restore_tenant(&pool, &config.central_schema, &tools(config)?, &req).await?;
    let how = if req.source == req.target {
        format!("restored tenant {}", r.target)
    } else {
        format!("restored tenant {} as {}", req.source, r.target)
    };
    println!(
        "{how}: status {}, schema version {}{}{}",
        r.status,
        r.schema_version,
        if r.replaced {
            "; its previous schema was replaced"
        } else {
            ""
        },
        if r.registered {
            "; registered from the manifest"
        } else {
            ""
        },
    );
    if r.status == "deleted" {
        println!(
            "it is still deleted (its retention period starts again now): \
             `mtpaas tenant reinstate {}` makes it active",
            r.target
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_are_readable() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 1), "5.0 MiB");
    }
}
