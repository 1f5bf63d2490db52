//! `mtpaas check`: every tenant schema's structure against the template's.

use crate::config::Config;
use crate::schema::drift::{CheckReport, check_tenants};
use crate::tenant_id::TenantId;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Check only these tenants (default: every tenant not purged).
    pub tenants: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: &Config, args: CheckArgs) -> anyhow::Result<()> {
    let only = args
        .tenants
        .iter()
        .map(|t| TenantId::parse(t).map_err(|e| anyhow::anyhow!("invalid tenant id {t:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pool = super::connect(config, 2).await?;
    super::ensure_central(&pool, config).await?;
    let report = check_tenants(
        &pool,
        &config.central_schema,
        &config.template_schema,
        (!only.is_empty()).then_some(only.as_slice()),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    if !report.drifted.is_empty() {
        anyhow::bail!(
            "drift found in {} tenant(s): {}",
            report.drifted.len(),
            report
                .drifted
                .iter()
                .map(|d| d.tenant_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The report as text: each drifted tenant with its differences, then a total.
pub fn render(r: &CheckReport) -> String {
    let mut out = String::new();
    for d in &r.drifted {
        out.push_str(&format!(
            "{}: {} difference(s)\n",
            d.tenant_id,
            d.differences.len()
        ));
        for diff in &d.differences {
            out.push_str(&format!("  {diff}\n"));
        }
    }
    out.push_str(&format!(
        "checked {} tenant(s) against {} (version {}): {} with drift, {} difference(s)\n",
        r.tenants_checked,
        r.template,
        r.template_version,
        r.drifted.len(),
        r.differences()
    ));
    out
}
