//! `mtpaas cluster`: tenants across a Citus cluster's nodes — where they are, moving
//! one, rebalancing, and distributing the schemas of a deployment that grew up on one
//! Postgres.

use std::time::Duration;

use clap::{Args, Subcommand};
use sqlx::PgPool;

use crate::cli::progress::Progress;
use crate::cluster::{self, NodeAddr, TransferMode};
use crate::config::Config;
use crate::tenant_id::TenantId;

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// The cluster's nodes and how many tenants each holds.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Move one tenant's schema to a node (citus_schema_move); it keeps answering.
    Move(MoveArgs),
    /// Even out tenants across the workers (citus_rebalance_start), with progress.
    Rebalance(RebalanceArgs),
    /// Distribute every tenant schema still on the coordinator (citus_schema_distribute):
    /// the step that moves a single-Postgres deployment onto Citus.
    Distribute {
        /// Only list the schemas that would be distributed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The tenant to move.
    pub tenant: String,
    /// The node to move it to, as host:port (see `mtpaas cluster nodes`).
    #[arg(long)]
    pub to: NodeAddr,
    /// How the schema is copied.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: TransferMode,
    /// Say what would be moved, and from where, without moving it.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RebalanceArgs {
    /// Show the planned moves without making them.
    #[arg(long)]
    pub dry_run: bool,
    /// How each schema is copied.
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: TransferMode,
    /// Start the background job and return without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
}

pub async fn run(config: &Config, cmd: ClusterCommand) -> anyhow::Result<()> {
    let pool = crate::cli::connect(config, 2).await?;
    crate::cli::ensure_central(&pool, config).await?;
    if !cluster::citus_present(&pool).await? {
        anyhow::bail!(
            "this database is plain PostgreSQL, not a Citus coordinator: there is no cluster \
             to show or rebalance (see README, \"Scale-out on Citus\")"
        );
    }
    let central = &config.central_schema;
    match cmd {
        ClusterCommand::Nodes { json } => {
            let nodes = cluster::nodes(&pool, central).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&nodes)?);
            } else {
                println!(
                    "{:<7} {:<24} {:<12} {:>8}",
                    "node_id", "node", "role", "tenants"
                );
                for n in &nodes {
                    let role = match (n.is_coordinator, n.is_active, n.should_have_shards) {
                        (true, _, _) => "coordinator",
                        (_, false, _) => "inactive",
                        (_, _, false) => "draining",
                        _ => "worker",
                    };
                    println!(
                        "{:<7} {:<24} {:<12} {:>8}",
                        n.node_id, n.node, role, n.tenants
                    );
                }
            }
            Ok(())
        }
        ClusterCommand::Move(a) => move_one(&pool, config, a).await,
        ClusterCommand::Rebalance(a) => rebalance(&pool, a).await,
        ClusterCommand::Distribute { dry_run } => distribute(&pool, central, dry_run).await,
    }
}

async fn move_one(pool: &PgPool, config: &Config, a: MoveArgs) -> anyhow::Result<()> {
    let id = config
        .parse_tenant(&a.tenant)
        .map_err(|e| anyhow::anyhow!("invalid tenant id: {e}"))?;
    let Some(from) = cluster::node_of(pool, &id).await? else {
        anyhow::bail!("tenant {id} has no distributed schema on this cluster");
    };
    let known = cluster::nodes(pool, &config.central_schema).await?;
    if !known
        .iter()
        .any(|n| n.node == a.to.to_string() && !n.is_coordinator)
    {
        anyhow::bail!(
            "{} is not a worker of this cluster (workers: {})",
            a.to,
            known
                .iter()
                .filter(|n| !n.is_coordinator)
                .map(|n| n.node.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if from == a.to.to_string() {
        println!("tenant {id} is already on {from}: nothing to move");
        return Ok(());
    }
    if a.dry_run {
        println!(
            "would move tenant {id} from {from} to {} ({} mode)",
            a.to,
            a.mode.as_str()
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    let progress = Progress::new("moved");
    progress.bar().set_length(1);
    let watch = watch_copy(pool.clone(), progress.bar().clone());
    let result = cluster::move_tenant(pool, &id, &a.to, a.mode).await;
    watch.abort();
    progress.bar().set_position(u64::from(result.is_ok()));
    progress.finish();
    result?;
    println!(
        "moved tenant {id} from {from} to {} in {:.1}s",
        a.to,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Shows the bytes copied so far (`get_rebalance_progress()`) on the bar.
fn watch_copy(pool: PgPool, bar: indicatif::ProgressBar) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let copied: Result<(Option<i64>, Option<i64>), _> = sqlx::query_as(
                "SELECT sum(target_shard_size)::bigint, sum(source_shard_size)::bigint \
                   FROM get_rebalance_progress()",
            )
            .fetch_one(&pool)
            .await;
            if let Ok((Some(done), Some(total))) = copied {
                bar.set_message(format!("(copied {} of {} KiB)", done / 1024, total / 1024));
            }
        }
    })
}

async fn rebalance(pool: &PgPool, a: RebalanceArgs) -> anyhow::Result<()> {
    let plan = cluster::rebalance_plan(pool).await?;
    if plan.is_empty() {
        println!("the tenants are balanced: nothing to move");
        return Ok(());
    }
    for m in &plan {
        println!("{} {} -> {}", m.tenant, m.from, m.to);
    }
    if a.dry_run {
        println!("{} tenant(s) would move (dry run)", plan.len());
        return Ok(());
    }
    let Some(job) = cluster::rebalance_start(pool, a.mode).await? else {
        println!("the tenants are balanced: nothing to move");
        return Ok(());
    };
    if a.no_wait {
        println!(
            "rebalance job {job} started; `SELECT * FROM citus_rebalance_status()` follows it"
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    let progress = Progress::new("rebalanced");
    let status = loop {
        let s = cluster::rebalance_status(pool, job).await?;
        progress.bar().set_length(s.total.max(0) as u64);
        progress.bar().set_position(s.done.max(0) as u64);
        if s.is_over() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    progress.finish();
    if status.state != "finished" {
        anyhow::bail!(
            "rebalance job {job} ended {} after {} of {} move(s)",
            status.state,
            status.done,
            status.total
        );
    }
    println!(
        "rebalanced: {} tenant(s) moved by job {job} ({} task(s)) in {:.1}s",
        plan.len(),
        status.total,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn distribute(pool: &PgPool, central: &TenantId, dry_run: bool) -> anyhow::Result<()> {
    let local: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT t.tenant_id FROM {}.tenants t \
           JOIN pg_namespace n ON n.nspname = t.tenant_id \
          WHERE t.status <> 'purged' \
            AND NOT EXISTS (SELECT 1 FROM pg_dist_schema s WHERE s.schemaid = n.oid) \
          ORDER BY t.tenant_id",
        central.quoted()
    )))
    .fetch_all(pool)
    .await?;
    if local.is_empty() {
        println!("every tenant schema is distributed");
        return Ok(());
    }
    if dry_run {
        for t in &local {
            println!("{t}");
        }
        println!(
            "{} tenant schema(s) would be distributed (dry run)",
            local.len()
        );
        return Ok(());
    }
    let progress = Progress::new("distributed");
    progress.bar().set_length(local.len() as u64);
    let mut failed = Vec::new();
    for t in &local {
        if let Err(e) = sqlx::query("SELECT citus_schema_distribute($1::regnamespace)")
            .bind(t)
            .execute(pool)
            .await
        {
            failed.push(format!("{t}: {e}"));
        }
        progress.bar().inc(1);
    }
    progress.finish();
    println!(
        "distributed {} of {} tenant schema(s)",
        local.len() - failed.len(),
        local.len()
    );
    if !failed.is_empty() {
        anyhow::bail!("not distributed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}
