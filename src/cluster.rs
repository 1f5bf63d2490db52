//! Citus: where tenant schemas live on a cluster, and moving them.
//!
//! With Citus schema-based sharding (`citus.enable_schema_based_sharding = on`) every
//! tenant schema is distributed as a unit to one worker; the central and template
//! schemas stay on the coordinator (they are created with sharding off). Placement is
//! read from Citus's catalogs on the coordinator only (`pg_dist_schema` →
//! `pg_dist_partition` → `pg_dist_shard` → `pg_dist_placement` → `pg_dist_node`), so
//! it answers while a worker is down. On plain Postgres there is no cluster: every
//! function here says so (`None`, empty) instead of failing.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::{FromRow, PgPool};

use crate::tenant_id::TenantId;

/// Whether the database has the citus extension (then it is a Citus coordinator).
pub async fn citus_present(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        .fetch_one(pool)
        .await
}

/// One tenant schema's node, `host:port`, joined from the catalogs.
const PLACEMENT: &str = "SELECT s.schemaid::regnamespace::text AS schema_name, \
       n.nodename || ':' || n.nodeport AS node \
  FROM pg_dist_schema s \
  JOIN LATERAL ( \
       SELECT pl.groupid FROM pg_dist_partition p \
         JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid \
         JOIN pg_dist_placement pl ON pl.shardid = sh.shardid \
        WHERE p.colocationid = s.colocationid LIMIT 1) g ON true \
  JOIN pg_dist_node n ON n.groupid = g.groupid AND n.noderole = 'primary'";

/// The node (`host:port`) holding `tenant`'s schema; `None` on plain Postgres, or when
/// the schema is not distributed (yet).
pub async fn node_of(pool: &PgPool, tenant: &TenantId) -> Result<Option<String>, sqlx::Error> {
    if !citus_present(pool).await? {
        return Ok(None);
    }
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT node FROM ({PLACEMENT}) x WHERE schema_name = $1"
    )))
    .bind(tenant.as_str())
    .fetch_optional(pool)
    .await
}

/// Every distributed schema and its node.
pub async fn placements(pool: &PgPool) -> Result<BTreeMap<String, String>, sqlx::Error> {
    if !citus_present(pool).await? {
        return Ok(BTreeMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(PLACEMENT).fetch_all(pool).await?;
    Ok(rows.into_iter().collect())
}

/// A node of the cluster, as `mtpaas cluster nodes` shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Node {
    pub node_id: i32,
    /// `host:port`.
    pub node: String,
    pub is_coordinator: bool,
    pub is_active: bool,
    pub should_have_shards: bool,
    /// Tenant schemas placed on it (registered tenants only).
    pub tenants: i64,
}

/// The cluster's primary nodes with the count of tenants each holds.
pub async fn nodes(pool: &PgPool, central: &TenantId) -> Result<Vec<Node>, sqlx::Error> {
    if !citus_present(pool).await? {
        return Ok(Vec::new());
    }
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH placed AS ({PLACEMENT}) \
         SELECT n.nodeid AS node_id, n.nodename || ':' || n.nodeport AS node, \
                n.groupid = 0 AS is_coordinator, n.isactive AS is_active, \
                n.shouldhaveshards AS should_have_shards, \
                count(t.tenant_id) AS tenants \
           FROM pg_dist_node n \
           LEFT JOIN placed p ON p.node = n.nodename || ':' || n.nodeport \
           LEFT JOIN {c}.tenants t ON t.tenant_id = p.schema_name AND t.status <> 'purged' \
          WHERE n.noderole = 'primary' \
          GROUP BY n.nodeid, n.nodename, n.nodeport, n.groupid, n.isactive, n.shouldhaveshards \
          ORDER BY n.groupid, n.nodeid",
        c = central.quoted()
    )))
    .fetch_all(pool)
    .await
}

/// How Citus copies a schema to its new node (`citus.shard_transfer_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransferMode {
    /// Logical replication when possible (reads and writes go on; writes pause briefly
    /// at the switch), else blocking writes.
    Auto,
    /// Logical replication or fail.
    ForceLogical,
    /// Block writes to the tenant for the whole copy (fast; reads go on).
    BlockWrites,
}

impl TransferMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ForceLogical => "force_logical",
            Self::BlockWrites => "block_writes",
        }
    }
}

/// A `host:port` node address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl std::str::FromStr for NodeAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("expected host:port, not {s:?}"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{port:?} is not a port number"))?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
        if !host_ok {
            return Err(format!("{host:?} is not a host name or address"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Moves `tenant`'s schema to `to` (`citus_schema_move`); returns once it is there.
/// The tenant keeps answering meanwhile (see [`TransferMode`]).
pub async fn move_tenant(
    pool: &PgPool,
    tenant: &TenantId,
    to: &NodeAddr,
    mode: TransferMode,
) -> anyhow::Result<()> {
    sqlx::query(
        "SELECT citus_schema_move($1::regnamespace, $2, $3, $4::citus.shard_transfer_mode)",
    )
    .bind(tenant.as_str())
    .bind(&to.host)
    .bind(i32::from(to.port))
    .bind(mode.as_str())
    .execute(pool)
    .await
    .map_err(|e| anyhow::anyhow!("moving {tenant} to {to}: {}", db_message(&e)))?;
    Ok(())
}

/// One move the rebalancer plans: a tenant schema from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedMove {
    pub tenant: String,
    pub from: String,
    pub to: String,
}

/// What `citus_rebalance_start` would do now, one line per schema (Citus plans per
/// table; a schema's tables move together).
pub async fn rebalance_plan(pool: &PgPool) -> anyhow::Result<Vec<PlannedMove>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT DISTINCT (table_name::regclass)::text, \
                sourcename || ':' || sourceport, targetname || ':' || targetport \
           FROM get_rebalance_table_shards_plan()",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| anyhow::anyhow!("planning the rebalance: {}", db_message(&e)))?;
    let mut seen = BTreeMap::new();
    for (table, from, to) in rows {
        let schema = schema_of(&table);
        seen.entry(schema).or_insert((from, to));
    }
    Ok(seen
        .into_iter()
        .map(|(tenant, (from, to))| PlannedMove { tenant, from, to })
        .collect())
}

/// The schema of a `regclass` text (`"a b".t` → `a b`; `a.t` → `a`).
fn schema_of(qualified: &str) -> String {
    if let Some(rest) = qualified.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        qualified.split('.').next().unwrap_or_default().to_owned()
    }
}

/// Starts the background rebalance job (`citus_rebalance_start`); `None` when nothing
/// needs to move.
pub async fn rebalance_start(pool: &PgPool, mode: TransferMode) -> anyhow::Result<Option<i64>> {
    if rebalance_plan(pool).await?.is_empty() {
        return Ok(None);
    }
    let job: i64 = sqlx::query_scalar(
        "SELECT citus_rebalance_start(shard_transfer_mode => $1::citus.shard_transfer_mode)",
    )
    .bind(mode.as_str())
    .fetch_one(pool)
    .await
    .map_err(|e| anyhow::anyhow!("starting the rebalance: {}", db_message(&e)))?;
    Ok(Some(job))
}

/// Where a rebalance job stands.
#[derive(Debug, Clone, Serialize)]
pub struct RebalanceStatus {
    pub job_id: i64,
    /// `scheduled`, `running`, `finished`, `cancelled`, `failed`, …
    pub state: String,
    pub done: i64,
    pub total: i64,
}

impl RebalanceStatus {
    pub fn is_over(&self) -> bool {
        matches!(
            self.state.as_str(),
            "finished" | "cancelled" | "failed" | "failing" | "cancelling"
        )
    }
}

/// The state of job `job_id` (from `pg_dist_background_job` and its tasks).
pub async fn rebalance_status(pool: &PgPool, job_id: i64) -> anyhow::Result<RebalanceStatus> {
    let (state, done, total): (String, i64, i64) = sqlx::query_as(
        "SELECT j.state::text, \
                count(t.task_id) FILTER (WHERE t.status = 'done'), count(t.task_id) \
           FROM pg_dist_background_job j \
           LEFT JOIN pg_dist_background_task t ON t.job_id = j.job_id \
          WHERE j.job_id = $1 GROUP BY j.state",
    )
    .bind(job_id)
    .fetch_one(pool)
    .await
    .map_err(|e| anyhow::anyhow!("reading rebalance job {job_id}: {}", db_message(&e)))?;
    Ok(RebalanceStatus {
        job_id,
        state,
        done,
        total,
    })
}

fn db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_parse_and_refuse_junk() {
        let a: NodeAddr = "127.0.0.1:9702".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 9702));
        assert_eq!(a.to_string(), "127.0.0.1:9702");
        let w: NodeAddr = "worker-2.db.internal:5432".parse().unwrap();
        assert_eq!(w.host, "worker-2.db.internal");
        for bad in [
            "",
            "9702",
            "host:",
            "host:99999",
            ":5432",
            "a b:5432",
            "h';--:1",
        ] {
            assert!(bad.parse::<NodeAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_schema_of_a_table_name_is_unquoted() {
        assert_eq!(schema_of("univ_1.user_mst"), "univ_1");
        assert_eq!(schema_of("\"odd\"\"name\".t"), "odd\"name");
        assert_eq!(schema_of("plain"), "plain");
    }
}
