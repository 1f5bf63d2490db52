//! The Citus part: the isolation torture on a cluster whose tenants are spread over its
//! workers, and a worker stopped under load.
//!
//! Runs against the coordinator in `CITUS_DATABASE_URL` (e.g. the cluster
//! `scripts/citus-cluster start` runs; until sqlx speaks TLS to Citus's certificate, add
//! `?sslmode=disable`). Each half works in a database of its own, made on every node of
//! that cluster (the citus extension in it, the workers registered as in the given
//! database) and dropped afterwards. The worker is stopped and started with
//! `CITUS_CLUSTER_SCRIPT` (default: the repository's `scripts/citus-cluster`), whose
//! worker N is the N-th worker of the cluster by node id. Without `CITUS_DATABASE_URL`
//! the part reports one line saying it was skipped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::process::Command;

use mtpaas::auth::jwt::JwtKeys;

use super::{Answer, Args, Report, SUPERADMIN_TOKEN, Server, create_tenants, token};

const P: &str = "citus";

pub(super) async fn run(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    let Some(coordinator) = std::env::var("CITUS_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("citus: skipped: CITUS_DATABASE_URL is not set (no Citus cluster)");
        report.info(
            P,
            "skipped",
            "CITUS_DATABASE_URL is not set (no Citus cluster)",
        );
        return Ok(());
    };
    let cluster = Cluster::of(&coordinator).await?;
    report.info(
        P,
        "cluster: coordinator / workers",
        format!("{} / {}", cluster.coordinator, cluster.workers.join(", ")),
    );

    // (a) The isolation torture, unchanged, on a cluster database.
    let url = cluster.fresh_database("mtpaas_rel_citus_isolation").await?;
    let result = super::isolation_on(args, bin, report, "citus isolation", &url).await;
    if result.is_ok() {
        let spread = spread(&url, "iso_%").await?;
        report.must(
            "citus isolation",
            "tenants per worker",
            format_spread(&spread),
            spread.len() == cluster.workers.len(),
        );
    }
    cluster.drop_database("mtpaas_rel_citus_isolation").await?;
    result?;

    // (b) A worker stopped under load.
    let result = worker_down(args, bin, report, &cluster).await;
    // The worker is started again whatever happened (a no-op when it runs).
    let _ = cluster
        .script(&["start-worker", &cluster.stop_worker])
        .await;
    cluster.drop_database("mtpaas_rel_citus_worker").await?;
    result
}

/// The coordinator and workers of the cluster `CITUS_DATABASE_URL` names.
struct Cluster {
    url: url::Url,
    coordinator: String,
    /// `host:port`, by node id.
    workers: Vec<String>,
    script: String,
    /// The worker the fault half stops (1-based, the script's numbering).
    stop_worker: String,
}

impl Cluster {
    async fn of(coordinator: &str) -> anyhow::Result<Cluster> {
        let url = url::Url::parse(coordinator)?;
        let mut c = PgConnection::connect(coordinator).await?;
        let workers: Vec<String> = sqlx::query_scalar(
            "SELECT nodename || ':' || nodeport FROM pg_dist_node \
              WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid",
        )
        .fetch_all(&mut c)
        .await?;
        anyhow::ensure!(
            workers.len() >= 2,
            "the cluster at CITUS_DATABASE_URL has {} active worker(s); this part needs 2",
            workers.len()
        );
        let script = std::env::var("CITUS_CLUSTER_SCRIPT").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/citus-cluster").to_owned()
        });
        Ok(Cluster {
            coordinator: format!(
                "{}:{}",
                url.host_str().unwrap_or("localhost"),
                url.port().unwrap_or(5432)
            ),
            url,
            workers,
            script,
            stop_worker: std::env::var("CITUS_STOP_WORKER").unwrap_or_else(|_| "2".into()),
        })
    }

    /// The URL of database `db` on node `host:port` (the coordinator's settings kept).
    fn url_on(&self, node: &str, db: &str) -> anyhow::Result<String> {
        let mut u = self.url.clone();
        let (host, port) = node
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("not host:port: {node}"))?;
        u.set_host(Some(host))?;
        u.set_port(Some(port.parse()?))
            .map_err(|_| anyhow::anyhow!("bad port in {node}"))?;
        u.set_path(&format!("/{db}"));
        Ok(u.to_string())
    }

    fn nodes(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.coordinator).chain(self.workers.iter())
    }

    /// A new database `db` on every node with the citus extension, the workers
    /// registered with the coordinator: a cluster of its own. Returns its URL.
    async fn fresh_database(&self, db: &str) -> anyhow::Result<String> {
        self.drop_database(db).await?;
        for node in self.nodes() {
            let mut admin = PgConnection::connect(&self.url_on(node, "postgres")?).await?;
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
                .await?;
            let mut c = PgConnection::connect(&self.url_on(node, db)?).await?;
            c.execute("CREATE EXTENSION citus").await?;
        }
        let url = self.url_on(&self.coordinator, db)?;
        let mut c = PgConnection::connect(&url).await?;
        let (host, port) = split(&self.coordinator)?;
        sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
            .bind(host)
            .bind(port)
            .execute(&mut c)
            .await?;
        for w in &self.workers {
            let (host, port) = split(w)?;
            sqlx::query("SELECT citus_add_node($1, $2)")
                .bind(host)
                .bind(port)
                .execute(&mut c)
                .await?;
        }
        Ok(url)
    }

    /// Drops database `db` on every node, the coordinator first. A worker's maintenance
    /// daemon can hold a connection that `WITH (FORCE)` ends, failing the statement
    /// once: tried three times.
    async fn drop_database(&self, db: &str) -> anyhow::Result<()> {
        for node in self.nodes() {
            let mut last = None;
            for _ in 0..3 {
                let dropped = async {
                    let mut admin = PgConnection::connect(&self.url_on(node, "postgres")?).await?;
                    admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
                        )))
                        .await?;
                    anyhow::Ok(())
                }
                .await;
                match dropped {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            if let Some(e) = last {
                return Err(e.context(format!("dropping database {db} on {node}")));
            }
        }
        Ok(())
    }

    /// Runs the cluster script; fails unless it exits 0.
    async fn script(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new(&self.script).args(args).output().await?;
        anyhow::ensure!(
            out.status.success(),
            "{} {}: {}{}",
            self.script,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

fn split(node: &str) -> anyhow::Result<(&str, i32)> {
    let (h, p) = node
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("not host:port: {node}"))?;
    Ok((h, p.parse()?))
}

/// Where Citus placed each tenant schema matching `like`, from the catalogs.
async fn placements(db: &PgPool, like: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (s.schemaid) s.schemaid::regnamespace::text, \
                n.nodename || ':' || n.nodeport \
           FROM pg_dist_schema s \
           JOIN pg_dist_partition p ON p.colocationid = s.colocationid \
           JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid \
           JOIN pg_dist_placement pl ON pl.shardid = sh.shardid \
           JOIN pg_dist_node n ON n.groupid = pl.groupid \
          WHERE s.schemaid::regnamespace::text LIKE $1",
    )
    .bind(like)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

async fn spread(url: &str, like: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let db = PgPool::connect(url).await?;
    let mut by_node = BTreeMap::new();
    for node in placements(&db, like).await?.into_values() {
        *by_node.entry(node).or_default() += 1;
    }
    Ok(by_node)
}

fn format_spread(spread: &BTreeMap<String, usize>) -> String {
    spread
        .iter()
        .map(|(n, c)| format!("{n}: {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stops worker `stop_worker` while 16 clients read every tenant in turn: its tenants
/// must get a quick 503 `database_node_unavailable`, the other worker's tenants and the
/// coordinator's routes must keep answering, and after the worker's restart its tenants
/// must recover with the same server process.
async fn worker_down(
    args: &Args,
    bin: &Path,
    report: &mut Report,
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let n: usize = cluster.stop_worker.parse()?;
    let stopped = cluster
        .workers
        .get(n.wrapping_sub(1))
        .ok_or_else(|| anyhow::anyhow!("no worker {n} in this cluster"))?
        .clone();
    let url = cluster.fresh_database("mtpaas_rel_citus_worker").await?;
    let mut server = Server::start(bin, &url, &[("DB_ACQUIRE_TIMEOUT_MS", "2000")]).await?;
    let pid = server.child.as_ref().and_then(|c| c.id());
    let n_tenants = if args.quick { 10 } else { 40 };
    let tenants: Vec<String> = (0..n_tenants).map(|i| format!("wd_{i:02}")).collect();
    create_tenants(&server, &tenants, 4).await?;
    let db = PgPool::connect(&url).await?;
    let placed = placements(&db, "wd\\_%").await?;
    let down: Vec<String> = tenants
        .iter()
        .filter(|t| placed.get(*t) == Some(&stopped))
        .cloned()
        .collect();
    anyhow::ensure!(
        !down.is_empty() && down.len() < tenants.len(),
        "the tenants did not land on both workers: {placed:?}"
    );
    let down_set: Arc<std::collections::BTreeSet<String>> =
        Arc::new(down.iter().cloned().collect());
    report.info(
        P,
        "worker stopped under load: tenants on it / on the others",
        format!("{} / {}", down.len(), tenants.len() - down.len()),
    );
    let keys = JwtKeys::new(&SecretString::from(super::JWT_SECRET.to_owned()));
    let tokens: Arc<BTreeMap<String, String>> = Arc::new(
        tenants
            .iter()
            .map(|t| (t.clone(), token(&keys, t)))
            .collect(),
    );

    let (before, down_for, run_for) = if args.quick { (2, 4, 10) } else { (5, 10, 25) };
    let t0 = Instant::now();
    let run_for = Duration::from_secs(run_for);
    let clients = super::load_clients(&server, &tenants, &tokens, t0, run_for, true);
    // The coordinator's routes, probed every 200 ms: (sent at, route, status).
    let probes = {
        let (http, base) = (server.http.clone(), server.url(""));
        tokio::spawn(async move {
            let mut log: Vec<(f64, &'static str, u16)> = Vec::new();
            while t0.elapsed() < run_for {
                for route in ["/api/health", "/api/tenant/superadmin/tenants?limit=100"] {
                    let at = t0.elapsed().as_secs_f64();
                    let status = http
                        .get(format!("{base}{route}"))
                        .bearer_auth(SUPERADMIN_TOKEN)
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    log.push((at, route, status));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            log
        })
    };
    let worker_no = n.to_string();
    tokio::time::sleep(Duration::from_secs(before)).await;
    cluster.script(&["stop-worker", &worker_no]).await?;
    let down_at = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(down_for)).await;
    let start_at = t0.elapsed().as_secs_f64();
    cluster.script(&["start-worker", &worker_no]).await?;
    let up_at = t0.elapsed().as_secs_f64();
    let mut log = Vec::new();
    for c in clients {
        log.extend(c.await?);
    }
    let probes = probes.await?;
    let same_process = server
        .child
        .as_mut()
        .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
        && server.child.as_ref().and_then(|c| c.id()) == pid;

    // Sent after the stop returned and answered before the start began.
    let while_down = |at: f64, took: f64| at >= down_at && at + took <= start_at;
    let down_answers: Vec<&Answer> = log
        .iter()
        .filter(|(at, _, took, t, ..)| while_down(*at, *took) && down_set.contains(t))
        .collect();
    let up_answers: Vec<&Answer> = log
        .iter()
        .filter(|(at, _, took, t, ..)| while_down(*at, *took) && !down_set.contains(t))
        .collect();
    let down_503 = down_answers
        .iter()
        .filter(|(_, s, _, _, code, _)| *s == 503 && code == "database_node_unavailable")
        .count();
    let slowest = down_answers
        .iter()
        .map(|(_, _, took, ..)| *took)
        .fold(0.0, f64::max);
    let up_ok = up_answers.iter().filter(|(_, s, ..)| *s == 200).count();
    let up_slowest = up_answers
        .iter()
        .map(|(_, _, took, ..)| *took)
        .fold(0.0, f64::max);
    // The whole run, the moments of the stop and the start included.
    let up_failed = log
        .iter()
        .filter(|(_, s, _, t, ..)| *s != 200 && !down_set.contains(t))
        .count();
    let down_not_503 = log
        .iter()
        .filter(|(_, s, _, t, ..)| *s != 200 && *s != 503 && down_set.contains(t))
        .count();
    let server_errors = log
        .iter()
        .filter(|(_, s, ..)| *s >= 500 && *s != 503)
        .count();
    // 503s with another code than database_node_unavailable: what they said, and when.
    let mut other_503: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (at, s, _, _, code, detail) in &log {
        if *s == 503 && code != "database_node_unavailable" {
            other_503
                .entry(format!("{code}: {detail}"))
                .or_default()
                .push(*at);
        }
    }
    for (what, ats) in &other_503 {
        eprintln!(
            "citus: 503 {what} x{} sent at {:?} s (stop returned at {down_at:.2} s, start at {start_at:.2} s)",
            ats.len(),
            ats.iter().map(|a| format!("{a:.2}")).collect::<Vec<_>>()
        );
    }
    for (at, s, _, t, code, detail) in log
        .iter()
        .filter(|(_, s, _, t, ..)| *s != 200 && (*s != 503 || !down_set.contains(t)))
        .take(10)
    {
        eprintln!("citus: {s} for {t} sent at {at:.2} s: {code} {detail}");
    }
    // Recovery: for each of the stopped worker's tenants, its first 200 sent after the
    // worker was back; the figure is the latest of those.
    let mut first_ok: BTreeMap<&str, f64> = BTreeMap::new();
    for (at, s, _, t, ..) in &log {
        if *s == 200 && *at >= up_at && down_set.contains(t) {
            let e = first_ok.entry(t.as_str()).or_insert(f64::INFINITY);
            *e = e.min(*at - up_at);
        }
    }
    let recovered = if first_ok.len() == down.len() {
        first_ok.values().copied().fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    let probes_down: Vec<_> = probes
        .iter()
        .filter(|(at, ..)| *at >= down_at && *at <= start_at)
        .collect();
    let probes_ok = probes_down.iter().filter(|(_, _, s)| *s == 200).count();

    report.info(
        P,
        "requests during the run / while the worker was down",
        format!("{} / {}", log.len(), down_answers.len() + up_answers.len()),
    );
    report.must(
        P,
        "stopped worker's tenants: 503 database_node_unavailable / answers while down",
        format!("{down_503} / {}", down_answers.len()),
        down_503 > 0 && down_503 == down_answers.len(),
    );
    report.must(
        P,
        "stopped worker's tenants: slowest answer while down (s)",
        format!("{slowest:.2}"),
        slowest < 5.0,
    );
    report.must(
        P,
        "other worker's tenants: 200 / answers while down",
        format!(
            "{up_ok} / {} ({:.2} %)",
            up_answers.len(),
            100.0 * up_ok as f64 / up_answers.len().max(1) as f64
        ),
        up_ok > 0 && up_ok == up_answers.len(),
    );
    report.info(
        P,
        "other worker's tenants: slowest answer while down (s)",
        format!("{up_slowest:.2}"),
    );
    report.must(
        P,
        "health and superadmin list while down: 200 / probes",
        format!("{probes_ok} / {}", probes_down.len()),
        probes_ok > 0 && probes_ok == probes_down.len(),
    );
    report.must(
        P,
        "other worker's tenants: answers other than 200, whole run (incl. client timeouts)",
        up_failed,
        up_failed == 0,
    );
    report.must(
        P,
        "stopped worker's tenants: answers other than 200/503, whole run (incl. client timeouts)",
        down_not_503,
        down_not_503 == 0,
    );
    report.info(
        P,
        "stopped worker's tenants: 503 with another code, whole run",
        if other_503.is_empty() {
            "0".to_owned()
        } else {
            other_503
                .iter()
                .map(|(what, ats)| {
                    let code = what.split(':').next().unwrap_or("");
                    let first = ats.iter().copied().fold(f64::INFINITY, f64::min);
                    format!(
                        "{} `{code}` (first sent {:+.2} s from the stop)",
                        ats.len(),
                        first - down_at
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        },
    );
    report.must(P, "5xx other than 503", server_errors, server_errors == 0);
    report.must(
        P,
        "every stopped-worker tenant answering 200 after the restart, the last (s)",
        if recovered.is_finite() {
            format!("{recovered:.2}")
        } else {
            format!("{} of {} never", down.len() - first_ok.len(), down.len())
        },
        recovered.is_finite() && recovered < 10.0,
    );
    report.must(
        P,
        "mtpaas restarted, exited or panicked",
        if same_process { "no" } else { "yes" },
        same_process,
    );
    server.kill9().await;
    Ok(())
}
