//! `mtpaas migrate`: the central schema, the template, then every tenant schema.

use std::path::PathBuf;

use crate::cli::progress::Progress;
use crate::config::Config;
use crate::schema::migrate::{
    self, MigrateReport, TenantMigration, latest_version_in, tenant_migrations,
};

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// How many tenant schemas are migrated at once, each on its own connection.
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Also apply the tenant migrations in DIR (NNNN_description.sql, numbered after the
    /// built-in ones), read at run time: to rehearse a migration before it ships.
    #[arg(long, env = "MTPAAS_EXTRA_MIGRATIONS", value_name = "DIR")]
    pub extra_migrations: Option<PathBuf>,
    /// Migrate only the central and template schemas, not the tenants.
    #[arg(long)]
    pub skip_tenants: bool,
}

/// The tenant migration set: the embedded one, plus extras when asked.
pub fn migration_set(extra: Option<&std::path::Path>) -> anyhow::Result<Vec<TenantMigration>> {
    match extra {
        Some(dir) => migrate::with_extra_migrations(dir),
        None => Ok(tenant_migrations().to_vec()),
    }
}

pub async fn run(config: &Config, args: MigrateArgs) -> anyhow::Result<()> {
    let migrations = migration_set(args.extra_migrations.as_deref())?;
    let pool = super::connect(config, args.jobs + 1).await?;
    let central = &config.central_schema;
    migrate::migrate_central(&pool, central).await?;
    println!("central schema {central}: up to date");
    let template_version =
        migrate::migrate_template_with(&pool, central, &config.template_schema, &migrations)
            .await?;
    println!(
        "template schema {}: version {template_version}",
        config.template_schema
    );
    if args.skip_tenants {
        return Ok(());
    }

    let progress = Progress::new("migrated");
    let report = migrate::migrate_tenants(
        &pool,
        central,
        &migrations,
        args.jobs as usize,
        progress.bar(),
    )
    .await;
    progress.finish();
    let report = report?;
    print!("{}", summary(&report));
    if !report.failed.is_empty() {
        let names: Vec<&str> = report.failed.iter().map(|(t, _)| t.as_str()).collect();
        anyhow::bail!(
            "{} tenant(s) failed to migrate: {}",
            names.len(),
            names.join(", ")
        );
    }
    debug_assert_eq!(report.latest, latest_version_in(&migrations));
    Ok(())
}

/// The closing lines: how many tenants are where, and which failed and why.
pub fn summary(r: &MigrateReport) -> String {
    let mut out = format!(
        "tenants: {} at version {} ({} migrated, {} already up to date, {} failed) in {:.2}s\n",
        r.up_to_date + r.migrated,
        r.latest,
        r.migrated,
        r.up_to_date,
        r.failed.len(),
        r.elapsed.as_secs_f64()
    );
    if !r.failed.is_empty() {
        out.push_str("failed (left at their previous version; rerun to retry):\n");
        for (tenant, reason) in &r.failed {
            out.push_str(&format!("  {tenant}: {reason}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_failed_tenants() {
        let r = MigrateReport {
            latest: 2,
            tenants: 5,
            up_to_date: 1,
            migrated: 3,
            failed: vec![("univ_9".into(), "schema missing".into())],
            elapsed: std::time::Duration::from_millis(1500),
        };
        let s = summary(&r);
        assert!(
            s.starts_with("tenants: 4 at version 2 (3 migrated, 1 already up to date, 1 failed)"),
            "{s}"
        );
        assert!(s.contains("  univ_9: schema missing\n"), "{s}");
    }
}
