//! `mtpaas-reliability`: runs the release server under load, faults and hostile input
//! and prints a table of figures. `--quick` runs the short versions CI uses; without
//! it, the full run whose figures RELIABILITY.md records.
//!
//! Every part starts its own server process(es) on 127.0.0.1 against a database of its
//! own; load goes to 127.0.0.1 only and every loop is bounded in count and time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use mtpaas::auth::jwt::{Claims, JwtKeys};
use rand::Rng;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// The Citus part (runs only when `CITUS_DATABASE_URL` names a coordinator).
#[path = "reliability/citus.rs"]
mod citus;

const API_KEY: &str = "reliability_api_key_0123456789";
const WEBHOOK_SECRET: &str = "reliability_webhook_secret_0123";
const SUPERADMIN_TOKEN: &str = "reliability_superadmin_0123456789";
const JWT_SECRET: &str = "reliability_jwt_secret_0123456789abcdef";

#[derive(Debug, Parser)]
#[command(
    name = "mtpaas-reliability",
    about = "Reliability and security proof for mtpaas"
)]
struct Args {
    /// The short versions (seconds each) that CI runs.
    #[arg(long)]
    quick: bool,
    /// Parts to run (default: every part; with --quick: isolation, crash, webhooks, fuzz).
    /// `citus` runs against the cluster in `CITUS_DATABASE_URL` (skipped without it).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the figures as Markdown here (e.g. RELIABILITY.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Postgres server (without a database name).
    #[arg(
        long,
        env = "TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pg: String,
    /// The mtpaas binary (default: the one built beside this runner).
    #[arg(long, env = "MTPAAS_BIN")]
    bin: Option<PathBuf>,
}

/// One line of the report.
struct Figure {
    part: &'static str,
    name: String,
    value: String,
    /// `Some(false)`: a figure that must hold and does not.
    ok: Option<bool>,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
}

impl Report {
    fn info(&mut self, part: &'static str, name: impl Into<String>, value: impl ToString) {
        self.figures.push(Figure {
            part,
            name: name.into(),
            value: value.to_string(),
            ok: None,
        });
    }

    fn must(
        &mut self,
        part: &'static str,
        name: impl Into<String>,
        value: impl ToString,
        ok: bool,
    ) {
        self.figures.push(Figure {
            part,
            name: name.into(),
            value: value.to_string(),
            ok: Some(ok),
        });
    }

    fn failed(&self) -> usize {
        self.figures.iter().filter(|f| f.ok == Some(false)).count()
    }

    fn table(&self) -> String {
        let mut out = String::from("| part | figure | value | check |\n|---|---|---|---|\n");
        for f in &self.figures {
            let check = match f.ok {
                Some(true) => "ok",
                Some(false) => "FAILED",
                None => "",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                f.part, f.name, f.value, check
            ));
        }
        out
    }
}

/// A server process of ours.
struct Server {
    bin: PathBuf,
    env: Vec<(String, String)>,
    port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Server {
    async fn start(
        bin: &Path,
        database_url: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut env: Vec<(String, String)> = [
            ("DATABASE_URL", database_url),
            ("HOST", "127.0.0.1"),
            ("TENANT_API_KEY", API_KEY),
            ("SERVICE_MARKET_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("SUPERADMIN_TOKEN", SUPERADMIN_TOKEN),
            ("JWT_SECRET", JWT_SECRET),
            ("PUBLIC_BASE_URL", "http://127.0.0.1"),
            ("RUST_LOG", "error"),
            ("DB_MAX_CONNECTIONS", "10"),
            ("USAGE_FLUSH_INTERVAL_MS", "500"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        env.push(("PORT".into(), port.to_string()));
        let mut s = Server {
            bin: bin.to_owned(),
            env,
            port,
            child: None,
            http: reqwest::Client::new(),
        };
        s.spawn().await?;
        Ok(s)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.bin)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(r) = self.http.get(self.url("/api/ready")).send().await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the server did not become ready")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGKILL: no shutdown, no flush, no rollback on the server's side.
    async fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn fresh_database(pg: &str, label: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(&format!("{pg}/postgres")).await?;
    let name = format!("mtpaas_rel_{label}");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await?;
    Ok(format!("{pg}/{name}"))
}

/// A token of the tenant's first user (its admin).
fn token(keys: &JwtKeys, tenant: &str) -> String {
    keys.issue(&Claims::new(
        1,
        tenant,
        "admin",
        chrono::Utc::now().timestamp(),
    ))
}

fn jwt_keys() -> JwtKeys {
    JwtKeys::new(&SecretString::from(JWT_SECRET.to_owned()))
}

/// Each tenant's admin token, for the load's workers.
fn admin_tokens(tenants: &[String]) -> Arc<BTreeMap<String, String>> {
    let keys = jwt_keys();
    Arc::new(
        tenants
            .iter()
            .map(|t| (t.clone(), token(&keys, t)))
            .collect(),
    )
}

/// One answer of a load client: (sent at, seconds after `t0`; status; seconds taken;
/// tenant; the error body's `code` and `detail`). Status 1 is a client timeout, 0 a
/// connection error.
type Answer = (f64, u16, f64, String, String, String);

/// 16 clients reading `GET /api/users` of every tenant in turn (each from its own
/// offset) until `run_for` after `t0`, pausing 20 ms after an answer other than 200.
/// With `bodies`, each answer's `code` and `detail` are read too.
fn load_clients(
    server: &Server,
    tenants: &[String],
    tokens: &Arc<BTreeMap<String, String>>,
    t0: Instant,
    run_for: Duration,
    bodies: bool,
) -> Vec<tokio::task::JoinHandle<Vec<Answer>>> {
    (0..16)
        .map(|w| {
            let (http, base, tokens, tenants) = (
                server.http.clone(),
                server.url(""),
                tokens.clone(),
                tenants.to_vec(),
            );
            tokio::spawn(async move {
                let mut log: Vec<Answer> = Vec::new();
                let mut i = w;
                while t0.elapsed() < run_for {
                    let t = &tenants[i % tenants.len()];
                    i += 1;
                    let at = t0.elapsed().as_secs_f64();
                    let sent = Instant::now();
                    let (status, code, detail) = match http
                        .get(format!("{base}/api/users"))
                        .header("X-Tenant-ID", t)
                        .bearer_auth(&tokens[t])
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await
                    {
                        Ok(r) if bodies => {
                            let s = r.status().as_u16();
                            let body: Value = r.json().await.unwrap_or_default();
                            let text = |k: &str| body[k].as_str().unwrap_or("").to_owned();
                            (s, text("code"), text("detail"))
                        }
                        Ok(r) => (r.status().as_u16(), String::new(), String::new()),
                        Err(e) if e.is_timeout() => (1, String::new(), e.to_string()),
                        Err(e) => (0, String::new(), e.to_string()),
                    };
                    let took = sent.elapsed().as_secs_f64();
                    log.push((at, status, took, t.clone(), code, detail));
                    if status != 200 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                log
            })
        })
        .collect()
}

async fn create_tenants(server: &Server, ids: &[String], concurrency: usize) -> anyhow::Result<()> {
    let results = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let req = server
                .http
                .post(server.url("/api/tenant/create"))
                .header("X-API-Key", API_KEY)
                .json(&json!({
                    "tenant_id": id,
                    "tenant_name": format!("{id} university"),
                    "admin_email": format!("admin@{id}.ac.kr"),
                    "application_id": i as i64 + 1,
                    "application_kind": "service",
                }));
            async move { req.send().await.map(|r| r.status().as_u16()) }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    for r in results {
        let status = r?;
        anyhow::ensure!(status == 200, "tenant creation answered {status}");
    }
    Ok(())
}

/// Part 1, isolation torture: many tenants, concurrent authenticated requests, client-side
/// cancellations at random points, suspensions flipping; every row of every completed
/// response checked.
async fn isolation(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    let url = fresh_database(&args.pg, "isolation").await?;
    isolation_on(args, bin, report, "isolation", &url).await
}

/// The isolation torture on the database at `url`, its figures under `part` (the Citus
/// part runs it on a cluster).
async fn isolation_on(
    args: &Args,
    bin: &Path,
    report: &mut Report,
    part: &'static str,
    url: &str,
) -> anyhow::Result<()> {
    let (n_tenants, total, concurrency) = if args.quick {
        (20, 3_000, 32)
    } else {
        (200, 100_000, 64)
    };
    let server = Server::start(bin, url, &[]).await?;
    let db = PgPool::connect(url).await?;
    let tenants: Vec<String> = (0..n_tenants).map(|i| format!("iso_{i:03}")).collect();
    create_tenants(&server, &tenants, 8).await?;
    for t in &tenants {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO \"{t}\".user_mst (email, name) \
             SELECT 'u' || g || '@{t}.rel', '{t}' FROM generate_series(1, 9) g"
        )))
        .execute(&db)
        .await?;
    }
    let tokens = admin_tokens(&tenants);

    // Suspend and reinstate a tenth of the tenants through the operator API, over and
    // over, while the load runs.
    let done = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicU64::new(0));
    let flip_failures = Arc::new(AtomicU64::new(0));
    let flipper = {
        let (done, flips, failures) = (done.clone(), flips.clone(), flip_failures.clone());
        let (http, base) = (
            server.http.clone(),
            server.url("/api/tenant/superadmin/tenants"),
        );
        let flippable: Vec<String> = tenants.iter().take(n_tenants / 10).cloned().collect();
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let t = flippable[rand::thread_rng().gen_range(0..flippable.len())].clone();
                for action in ["suspend", "reinstate"] {
                    let r = http
                        .post(format!("{base}/{t}/{action}"))
                        .bearer_auth(SUPERADMIN_TOKEN)
                        .json(&json!({"reason": "reliability run"}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => flips.fetch_add(1, Ordering::Relaxed),
                        _ => failures.fetch_add(1, Ordering::Relaxed),
                    };
                    let pause = rand::thread_rng().gen_range(10..60);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        })
    };

    #[derive(Default)]
    struct Tally {
        completed: u64,
        cancelled: u64,
        rows: u64,
        cross_rows: u64,
        suspended_403: u64,
        server_errors: u64,
        unexpected: u64,
        samples: Vec<String>,
    }
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let tally = futures::stream::iter(0..total)
        .map(|_| {
            let (http, tokens, tenants) = (http.clone(), tokens.clone(), &tenants);
            let mut rng = rand::thread_rng();
            let t = tenants[rng.gen_range(0..tenants.len())].clone();
            let cancel = rng.gen_bool(0.25);
            let timeout = if cancel {
                Duration::from_millis(rng.gen_range(1..=50))
            } else {
                Duration::from_secs(30)
            };
            let req = http
                .get(server.url("/api/users"))
                .header("X-Tenant-ID", &t)
                .bearer_auth(&tokens[&t])
                .timeout(timeout);
            async move {
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(_) => return (t, None),
                };
                let status = resp.status().as_u16();
                match resp.text().await {
                    Ok(text) => (t, Some((status, text))),
                    Err(_) => (t, None),
                }
            }
        })
        .buffer_unordered(concurrency)
        .fold(Tally::default(), |mut tally, (t, outcome)| async move {
            let Some((status, text)) = outcome else {
                tally.cancelled += 1;
                return tally;
            };
            tally.completed += 1;
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match status {
                200 => {
                    if body["tenant_id"] != t.as_str() {
                        tally.cross_rows += 1;
                    }
                    for u in body["users"].as_array().into_iter().flatten() {
                        tally.rows += 1;
                        let email = u["email"].as_str().unwrap_or("");
                        if !email.ends_with(&format!("@{t}.rel"))
                            && email != format!("admin@{t}.ac.kr")
                        {
                            tally.cross_rows += 1;
                            if tally.samples.len() < 5 {
                                tally.samples.push(format!("{t} saw {email}"));
                            }
                        }
                    }
                }
                403 if body["code"] == "tenant_suspended" => tally.suspended_403 += 1,
                s if s >= 500 => {
                    tally.server_errors += 1;
                    if tally.samples.len() < 5 {
                        tally.samples.push(format!("{s} {text}"));
                    }
                }
                s => {
                    tally.unexpected += 1;
                    if tally.samples.len() < 5 {
                        tally.samples.push(format!("{s} {text}"));
                    }
                }
            }
            tally
        })
        .await;
    done.store(true, Ordering::Relaxed);
    let _ = flipper.await;
    let secs = started.elapsed().as_secs_f64();

    report.info(part, "tenants", n_tenants);
    report.info(
        part,
        "requests sent (concurrency)",
        format!("{total} ({concurrency})"),
    );
    report.info(part, "requests completed", tally.completed);
    report.info(
        part,
        "cancelled by the client (1–50 ms timeouts)",
        tally.cancelled,
    );
    report.info(part, "rows checked", tally.rows);
    report.info(
        part,
        "suspend/reinstate flips (operator API) during the run",
        flips.load(Ordering::Relaxed),
    );
    let ff = flip_failures.load(Ordering::Relaxed);
    report.must(part, "operator API flips that failed", ff, ff == 0);
    report.info(
        part,
        "403 tenant_suspended (expected while suspended)",
        tally.suspended_403,
    );
    report.must(
        part,
        "cross-tenant rows seen",
        tally.cross_rows,
        tally.cross_rows == 0,
    );
    report.must(
        part,
        "server errors (5xx)",
        tally.server_errors,
        tally.server_errors == 0,
    );
    report.must(
        part,
        "other unexpected statuses",
        tally.unexpected,
        tally.unexpected == 0,
    );
    report.must(
        part,
        "requests completed (must be most of them)",
        tally.completed,
        tally.completed as f64 >= total as f64 * 0.5 && tally.rows > 0,
    );
    report.info(
        part,
        "throughput (req/s, whole run)",
        format!("{:.0}", total as f64 / secs),
    );
    for s in &tally.samples {
        eprintln!("isolation sample: {s}");
    }
    Ok(())
}

/// Part 2, crash-safe onboarding: kill -9 the server at random moments while tenants are
/// being created, restart it, and look for any half-created tenant.
async fn crash(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const P: &str = "crash";
    let kills = if args.quick { 5 } else { 50 };
    let url = fresh_database(&args.pg, "crash").await?;
    let mut server = Server::start(bin, &url, &[]).await?;
    let db = PgPool::connect(&url).await?;
    let attempted = Arc::new(AtomicU64::new(0));
    let mut ids: Vec<String> = Vec::new();
    let mut done_kills = 0;
    for k in 0..kills {
        let mut creators = Vec::new();
        for w in 0..4 {
            let (http, base, attempted) = (server.http.clone(), server.url(""), attempted.clone());
            let prefix = format!("crash_{k:02}_{w}");
            creators.push(tokio::spawn(async move {
                let mut j = 0;
                loop {
                    let id = format!("{prefix}_{j}");
                    attempted.fetch_add(1, Ordering::Relaxed);
                    let sent = http
                        .post(format!("{base}/api/tenant/create"))
                        .header("X-API-Key", API_KEY)
                        .timeout(Duration::from_secs(10))
                        .json(&json!({"tenant_id": id, "tenant_name": id, "admin_email": format!("a@{id}.kr"), "application_id": 1000 + j}))
                        .send()
                        .await;
                    if sent.is_err() {
                        return j + 1; // the server is gone
                    }
                    j += 1;
                }
            }));
        }
        let pause = rand::thread_rng().gen_range(20..400);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill9().await;
        done_kills += 1;
        for (w, c) in creators.into_iter().enumerate() {
            let n = c.await.unwrap_or(0);
            ids.extend((0..n).map(|j| format!("crash_{k:02}_{w}_{j}")));
        }
        server.spawn().await?;
    }
    let half = half_tenants(&db).await?;
    report.info(P, "kill -9 during tenant creation", done_kills);
    report.info(P, "tenants attempted", attempted.load(Ordering::Relaxed));
    let complete: i64 = sqlx::query_scalar("SELECT count(*) FROM hltutor.tenants")
        .fetch_one(&db)
        .await?;
    report.info(P, "tenants completed", complete);
    report.must(P, "half tenants found (SQL)", half.len(), half.is_empty());
    for h in half.iter().take(10) {
        eprintln!("crash: half tenant: {h}");
    }
    match run_check(bin, &url).await {
        Some((ok, out)) => report.must(
            P,
            "`mtpaas check` differences",
            if ok { "none".into() } else { out },
            ok,
        ),
        None => report.info(P, "`mtpaas check`", "not available in this build"),
    }
    // Every attempted id can be created (or is recognised) now: nothing blocks a retry.
    let mut retry_failures = 0;
    for (i, id) in ids.iter().enumerate() {
        let r = server
            .http
            .post(server.url("/api/tenant/create"))
            .header("X-API-Key", API_KEY)
            .json(&json!({"tenant_id": id, "tenant_name": id, "admin_email": format!("a@{id}.kr"), "application_id": 1000 + (i as i64)}))
            .send()
            .await?;
        // 200: created now or the same request recognised; 409: the id was taken by the
        // interrupted attempt with another application number in this retry loop.
        if r.status() != 200 && r.status() != 409 {
            retry_failures += 1;
        }
    }
    report.must(
        P,
        "ids that could not be retried",
        retry_failures,
        retry_failures == 0,
    );
    let half_after = half_tenants(&db).await?;
    report.must(
        P,
        "half tenants after retries",
        half_after.len(),
        half_after.is_empty(),
    );
    server.kill9().await;
    Ok(())
}

/// Tenants that exist only in part.
async fn half_tenants(db: &PgPool) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let orphans: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace n WHERE nspname NOT IN ('public','information_schema','hltutor','template_schema') \
         AND nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM hltutor.tenants t WHERE t.tenant_id = n.nspname)",
    )
    .fetch_all(db)
    .await?;
    out.extend(
        orphans
            .into_iter()
            .map(|s| format!("schema without row: {s}")),
    );
    let rows: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT t.tenant_id, \
                EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = t.tenant_id), \
                EXISTS (SELECT 1 FROM hltutor.tenant_events e WHERE e.tenant_id = t.tenant_id AND e.event = 'created'), \
                EXISTS (SELECT 1 FROM hltutor.tenant_schema_versions v WHERE v.schema_name = t.tenant_id) \
           FROM hltutor.tenants t WHERE t.status <> 'purged'",
    )
    .fetch_all(db)
    .await?;
    for (t, schema, created, version) in rows {
        if !schema {
            out.push(format!("row without schema: {t}"));
            continue;
        }
        if !created {
            out.push(format!("no created event: {t}"));
        }
        if !version {
            out.push(format!("no schema version: {t}"));
        }
        let admins: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{t}\".user_mst WHERE role = 'admin'"
        )))
        .fetch_one(db)
        .await?;
        if admins == 0 {
            out.push(format!("tenant without admin: {t}"));
        }
    }
    Ok(out)
}

/// `mtpaas check` against a database: `None` when this build has no such command.
async fn run_check(bin: &Path, url: &str) -> Option<(bool, String)> {
    let out = Command::new(bin)
        .arg("check")
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "error")
        .output()
        .await
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("unrecognized subcommand") {
        return None;
    }
    Some((out.status.success(), text.trim().replace('\n', "; ")))
}

/// Part 5, the tenant id fuzzed through every source: only 4xx may come back.
async fn fuzz_tenant_ids(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const P: &str = "fuzz";
    let url = fresh_database(&args.pg, "fuzz").await?;
    let server = Server::start(bin, &url, &[("BASE_DOMAIN", "mtpaas.test")]).await?;
    create_tenants(&server, &["real_t".to_owned()], 1).await?;
    let values: Vec<Vec<u8>> = vec![
        "대학교".into(),
        "ünïcödé".into(),
        "real_t\0".into(),
        b"\0".to_vec(),
        "a".repeat(10_000).into_bytes(),
        "x".repeat(51).into_bytes(),
        "' OR 1=1 --".into(),
        "real_t; DROP SCHEMA public CASCADE".into(),
        "real_t\"; SET search_path TO public; --".into(),
        "pg_catalog".into(),
        "hltutor".into(),
        "template_schema".into(),
        "REAL_T".into(),
        "real_t ".into(),
        " real_t".into(),
        "real-t".into(),
        "%00".into(),
        "..".into(),
        "real_t\r\nX-Injected: 1".into(),
        vec![0xff, 0xfe, 0x41],
        "".into(),
    ];
    let routes = ["/api/health", "/api/users", "/api/chat", "/api/auth/me"];
    let mut sent = 0u64;
    let mut non_4xx = Vec::new();
    for v in &values {
        for route in routes {
            for source in ["header", "query", "cookie", "host"] {
                let (status, body) = raw_request(server.port, route, source, v).await?;
                sent += 1;
                // The protocol itself may turn a value into the real tenant (a header's
                // surrounding spaces are not part of it, host names ignore case, `;`
                // ends a cookie, CRLF ends a header): then health may answer for it.
                let benign = status == 200
                    && route == "/api/health"
                    && (body.contains("\"tenant_id\":\"real_t\"")
                        || body.contains("\"tenant_id\":null"));
                if !(400..500).contains(&status) && !benign {
                    non_4xx.push(format!(
                        "{source} {route} {:?} → {status}",
                        String::from_utf8_lossy(&v[..v.len().min(40)])
                    ));
                }
            }
        }
    }
    report.info(
        P,
        "tenant-id fuzz requests (header, query, cookie, Host)",
        sent,
    );
    report.must(
        P,
        "tenant-id fuzz answers other than 4xx",
        non_4xx.len(),
        non_4xx.is_empty(),
    );
    for n in non_4xx.iter().take(10) {
        eprintln!("fuzz: {n}");
    }
    Ok(())
}

/// Sends one HTTP/1.1 request over a raw socket (so any byte can be put in a header)
/// and returns the status (0 when the server closed without answering) and the body.
async fn raw_request(
    port: u16,
    route: &str,
    source: &str,
    value: &[u8],
) -> anyhow::Result<(u16, String)> {
    let mut req: Vec<u8> = Vec::new();
    let pct: String = value.iter().map(|b| format!("%{b:02X}")).collect();
    match source {
        "query" => req.extend_from_slice(
            format!("GET {route}?tenant={pct} HTTP/1.1\r\nHost: 127.0.0.1\r\n").as_bytes(),
        ),
        "host" => {
            req.extend_from_slice(format!("GET {route} HTTP/1.1\r\nHost: ").as_bytes());
            req.extend_from_slice(value);
            req.extend_from_slice(b".mtpaas.test\r\n");
        }
        _ => {
            req.extend_from_slice(format!("GET {route} HTTP/1.1\r\nHost: 127.0.0.1\r\n").as_bytes())
        }
    }
    match source {
        "header" => {
            req.extend_from_slice(b"X-Tenant-ID: ");
            req.extend_from_slice(value);
            req.extend_from_slice(b"\r\n");
        }
        "cookie" => {
            req.extend_from_slice(b"Cookie: tenant_id=");
            req.extend_from_slice(value);
            req.extend_from_slice(b"\r\n");
        }
        _ => {}
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(&req).await?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// Part 3, Postgres restarted under load: the server must neither exit nor hang, must
/// answer 503 while the database is away, and recover by itself.
async fn postgres_restart(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const P: &str = "postgres";
    let url = fresh_database(&args.pg, "pgrestart").await?;
    let mut server = Server::start(bin, &url, &[("DB_ACQUIRE_TIMEOUT_MS", "2000")]).await?;
    let tenants: Vec<String> = (0..20).map(|i| format!("pgr_{i:02}")).collect();
    create_tenants(&server, &tenants, 4).await?;
    let tokens = admin_tokens(&tenants);
    let t0 = Instant::now();
    let run_for = Duration::from_secs(30);
    let workers = load_clients(&server, &tenants, &tokens, t0, run_for, false);
    let cluster = std::fs::read_dir("/etc/postgresql")?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .next()
        .ok_or_else(|| anyhow::anyhow!("no Postgres cluster in /etc/postgresql"))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let down_at = t0.elapsed().as_secs_f64();
    let stop = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &cluster,
            "main",
            "stop",
            "-m",
            "fast",
        ])
        .status()
        .await?;
    anyhow::ensure!(stop.success(), "pg_ctlcluster stop failed");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &cluster, "main", "start"])
        .status()
        .await?;
    anyhow::ensure!(start.success(), "pg_ctlcluster start failed");
    let up_at = t0.elapsed().as_secs_f64();
    // (answered at, status, seconds taken), as the figures below read it.
    let mut log = Vec::new();
    for w in workers {
        log.extend(
            w.await?
                .into_iter()
                .map(|(at, s, took, ..)| (at + took, s, took)),
        );
    }
    let exited = server
        .child
        .as_mut()
        .is_none_or(|c| !matches!(c.try_wait(), Ok(None)));
    let during: Vec<_> = log
        .iter()
        .filter(|(t, _, _)| *t >= down_at && *t <= up_at)
        .collect();
    let n503 = during.iter().filter(|(_, s, _)| *s == 503).count();
    let other_errors = log
        .iter()
        .filter(|(_, s, _)| *s != 200 && *s != 503)
        .count();
    let slowest = during.iter().map(|(_, _, l)| *l).fold(0.0, f64::max);
    let recovered = log
        .iter()
        .filter(|(t, s, l)| *s == 200 && t - l >= up_at)
        .map(|(t, _, l)| t - l - up_at)
        .fold(f64::INFINITY, f64::min);
    report.info(
        P,
        "requests during the run / while Postgres was down",
        format!("{} / {}", log.len(), during.len()),
    );
    // Usage: every answered tenant request counts; a graceful stop flushes what is left.
    let answered = log.iter().filter(|(_, s, _)| *s == 200).count() as i64;
    if let Some(mut c) = server.child.take() {
        if let Some(pid) = c.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), c.wait()).await;
    }
    let db = PgPool::connect(&url).await?;
    let counted: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(calls), 0)::bigint FROM hltutor.api_usage")
            .fetch_one(&db)
            .await?;
    report.info(
        P,
        "usage: 200 answers / calls counted after a graceful stop",
        format!("{answered} / {counted}"),
    );
    report.info(
        P,
        "usage calls lost (counted in memory, unflushed when Postgres went away)",
        (answered - counted).max(0),
    );
    report.must(
        P,
        "server exited or panicked",
        if exited { "yes" } else { "no" },
        !exited,
    );
    report.must(P, "503 answers while down", n503, n503 > 0);
    report.must(
        P,
        "answers other than 200/503 (incl. client timeouts)",
        other_errors,
        other_errors == 0,
    );
    report.must(
        P,
        "slowest answer while down (s)",
        format!("{slowest:.2}"),
        slowest < 5.0,
    );
    report.must(
        P,
        "first 200 after Postgres was back (s)",
        format!("{recovered:.2}"),
        recovered.is_finite() && recovered < 10.0,
    );
    server.kill9().await;
    Ok(())
}

/// Part 5, schemathesis (from PyPI) against `/api/openapi.json`: every route, every
/// check but `positive_data_acceptance` (a schema cannot say that a setup token must
/// exist or an email must be free), signed in as a tenant admin.
async fn schemathesis(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const P: &str = "schemathesis";
    let venv = PathBuf::from("/root/.cache/mtpaas-venv");
    let st = venv.join("bin/st");
    if !st.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .await?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "schemathesis"])
                .status()
                .await?
                .success();
        anyhow::ensure!(ok, "could not install schemathesis from PyPI");
    }
    let url = fresh_database(&args.pg, "schemathesis").await?;
    let server = Server::start(bin, &url, &[]).await?;
    let created: Value = server
        .http
        .post(server.url("/api/tenant/create"))
        .header("X-API-Key", API_KEY)
        .json(&json!({"tenant_id": "st_univ", "tenant_name": "st", "admin_email": "admin@st.ac.kr", "application_id": 1}))
        .send()
        .await?
        .json()
        .await?;
    let setup = created["setup_token"].as_str().unwrap_or_default();
    server
        .http
        .post(server.url("/api/auth/setup-password"))
        .header("X-Tenant-ID", "st_univ")
        .json(&json!({"token": setup, "password": "schemathesis password"}))
        .send()
        .await?;
    let login: Value = server
        .http
        .post(server.url("/api/auth/login"))
        .header("X-Tenant-ID", "st_univ")
        .json(&json!({"email": "admin@st.ac.kr", "password": "schemathesis password"}))
        .send()
        .await?
        .json()
        .await?;
    let jwt = login["access_token"].as_str().unwrap_or_default();
    let examples = if args.quick { "10" } else { "100" };
    let out = Command::new(&st)
        .args(["run", &server.url("/api/openapi.json")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args([
            "-n",
            examples,
            "--no-color",
            "--request-timeout",
            "10",
            "--seed",
            "20261126",
        ])
        .args(["-H", &format!("X-API-Key: {API_KEY}")])
        .args(["-H", "X-Tenant-ID: st_univ"])
        .args(["-H", &format!("Authorization: Bearer {jwt}")])
        .current_dir(std::env::temp_dir())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let cases = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(" generated"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let failures = text
        .lines()
        .filter(|l| l.trim_start().starts_with("❌ ST"))
        .map(|l| l.trim().to_owned())
        .collect::<Vec<_>>();
    report.info(P, "test cases", cases);
    report.must(
        P,
        "server errors and responses violating the document",
        if failures.is_empty() {
            "0".to_owned()
        } else {
            failures.join("; ")
        },
        out.status.success() && failures.is_empty(),
    );
    if !out.status.success() {
        eprintln!("{text}");
    }
    Ok(())
}

/// Part 6, webhook abuse: forged, stale, tampered and replayed deliveries; none may
/// change anything, each refused with the right status (401; a replay gets the first
/// delivery's answer again and changes nothing).
async fn webhooks(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    use base64::Engine;
    const P: &str = "webhooks";
    let total = if args.quick { 100 } else { 1_000 };
    let mut key = [0u8; 32];
    rand::thread_rng().fill(&mut key);
    let signing = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let mut wrong_key = [0u8; 32];
    rand::thread_rng().fill(&mut wrong_key);
    let url = fresh_database(&args.pg, "webhooks").await?;
    let server = Server::start(bin, &url, &[("WEBHOOK_SIGNING_SECRET", &signing)]).await?;
    let db = PgPool::connect(&url).await?;
    let tenants: Vec<String> = (0..50).map(|i| format!("wh_{i:02}")).collect();
    create_tenants(&server, &tenants, 4).await?;
    let good = standardwebhooks::Webhook::new(&signing)?;
    let bad = standardwebhooks::Webhook::from_bytes(wrong_key.to_vec())?;
    let path = server.url("/api/tenant/webhook/service-cancelled");
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hltutor.tenant_events WHERE actor = 'market'")
            .fetch_one(&db)
            .await?;

    let send =
        |id: String, ts: i64, sig: String, body: String, static_secret: Option<&'static str>| {
            let mut req = server
                .http
                .post(&path)
                .header("content-type", "application/json")
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(body);
            if let Some(s) = static_secret {
                req = req.header("X-Webhook-Secret", s);
            }
            req.send()
        };
    // A delivery signed with `key` at `ts`.
    let send_signed = |key: &standardwebhooks::Webhook, id: String, ts: i64, body: String| {
        let sig = key.sign(&id, ts, body.as_bytes())?;
        anyhow::Ok(send(id, ts, sig, body, None))
    };
    let body_for =
        |app: usize| json!({"event": "service.cancelled", "application_id": app}).to_string();
    let now = || chrono::Utc::now().timestamp();

    // The one legitimate delivery, which the replays repeat.
    let ts0 = now();
    let send_original = || send_signed(&good, "msg_original".to_owned(), ts0, body_for(1));
    let first = send_original()?.await?;
    let first_status = first.status().as_u16();
    let first_answer = first.text().await?;
    anyhow::ensure!(
        first_status == 200,
        "the legitimate delivery got {first_status}: {first_answer}"
    );

    let mut wrong_status: BTreeMap<&str, u64> = BTreeMap::new();
    let mut sent: BTreeMap<&str, u64> = BTreeMap::new();
    for i in 0..total {
        let app = 2 + i % 48;
        let id = format!("msg_abuse_{i}");
        let body = body_for(app);
        let (kind, resp) = match i % 5 {
            0 => (
                "forged (wrong key)",
                send_signed(&bad, id, now(), body)?.await?,
            ),
            1 => {
                let ts = now();
                (
                    "forged (wrong static secret, no signature)",
                    send(id, ts, String::new(), body, Some("not-the-secret")).await?,
                )
            }
            2 => (
                "stale (signed an hour ago)",
                send_signed(&good, id, now() - 3_600, body)?.await?,
            ),
            3 => {
                let ts = now();
                let sig = good.sign(&id, ts, body.as_bytes())?;
                (
                    "tampered (body changed after signing)",
                    send(id, ts, sig, body_for(app + 1), None).await?,
                )
            }
            _ => ("replayed", send_original()?.await?),
        };
        *sent.entry(kind).or_default() += 1;
        let status = resp.status().as_u16();
        let answer = resp.text().await.unwrap_or_default();
        let right = if kind == "replayed" {
            status == 200 && answer == first_answer
        } else {
            status == 401
        };
        if !right {
            *wrong_status.entry(kind).or_default() += 1;
            eprintln!("webhooks: {kind} → {status} {answer}");
        }
    }
    let events_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hltutor.tenant_events WHERE actor = 'market'")
            .fetch_one(&db)
            .await?;
    let suspended: i64 =
        sqlx::query_scalar("SELECT count(*) FROM hltutor.tenants WHERE status <> 'active'")
            .fetch_one(&db)
            .await?;
    for (kind, n) in &sent {
        report.info(P, format!("sent: {kind}"), n);
    }
    let wrong: u64 = wrong_status.values().sum();
    report.must(
        P,
        "refused with the wrong status (or replay answered differently)",
        wrong,
        wrong == 0,
    );
    let applied = events_after - events_before - 1;
    report.must(
        P,
        "abusive deliveries applied (history events beyond the one legitimate)",
        applied,
        applied == 0,
    );
    report.must(
        P,
        "tenants changed beyond the legitimate one",
        suspended - 1,
        suspended == 1,
    );
    Ok(())
}

/// Part 4, the market's MySQL stopped and then made to hang (SIGSTOP): only the
/// applications route may be affected, and it answers 503 within its bound.
async fn mysql(args: &Args, bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const P: &str = "mysql";
    let mut admin = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test").await?;
    sqlx::raw_sql(
        "DROP DATABASE IF EXISTS mtpaas_rel_market; CREATE DATABASE mtpaas_rel_market; USE mtpaas_rel_market; \
         CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL, university_name VARCHAR(255)); \
         CREATE TABLE services (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(255) NOT NULL); \
         CREATE TABLE service_applications (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, service_id INT NOT NULL, \
           kind VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, \
           demo_expires_at DATETIME NULL); \
         INSERT INTO users (email, university_name) VALUES ('admin@mk_univ.ac.kr', 'Market University'); \
         INSERT INTO services (title) VALUES ('KELI Tutor'); \
         INSERT INTO service_applications (user_id, service_id, kind, status) VALUES (1, 1, 'service', 'approved');",
    )
    .execute(&mut admin)
    .await?;
    drop(admin);
    let url = fresh_database(&args.pg, "mysql").await?;
    let bound = 2.0;
    let server = Server::start(
        bin,
        &url,
        &[
            (
                "SERVICE_MARKET_DATABASE_URL",
                "mysql://root@127.0.0.1:3306/mtpaas_rel_market",
            ),
            ("SERVICE_MARKET_DB_TIMEOUT_MS", "2000"),
        ],
    )
    .await?;
    create_tenants(&server, &["mk_univ".to_owned()], 1).await?;
    let probe = MarketProbe {
        server: &server,
        token: token(&jwt_keys(), "mk_univ"),
    };
    let (a, _, u, _) = probe.probe().await;
    report.must(
        P,
        "before: applications / tenant route",
        format!("{a} / {u}"),
        a == 200 && u == 200,
    );

    // Stopped.
    signal_mariadb("-TERM").await?;
    for _ in 0..100 {
        if mariadb_pid().await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report_outage(report, P, "MySQL stopped", probe.probe().await, bound);
    Command::new("start-stop-daemon")
        .args([
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ])
        .status()
        .await?;
    let mut back = false;
    for _ in 0..60 {
        if sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
            .await
            .is_ok()
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::ensure!(back, "MariaDB did not come back");
    let recovered = probe.recovered(20).await;
    report.must(
        P,
        "MySQL back: applications status",
        recovered,
        recovered == 200,
    );

    // Hanging: the process is there, accepts nothing and answers nothing.
    signal_mariadb("-STOP").await?;
    let hung = probe.probe().await;
    signal_mariadb("-CONT").await?;
    report_outage(report, P, "MySQL hanging", hung, bound);
    let recovered = probe.recovered(40).await;
    report.must(
        P,
        "MySQL resumed: applications status",
        recovered,
        recovered == 200,
    );
    Ok(())
}

/// The two routes part 4 watches: the market's applications (which read MySQL) and a
/// tenant route (which must not).
struct MarketProbe<'a> {
    server: &'a Server,
    token: String,
}

impl MarketProbe<'_> {
    /// (applications status, its seconds, tenant route status, its seconds).
    async fn probe(&self) -> (u16, f64, u16, f64) {
        let s = self.server;
        let (apps, apps_secs) = timed(
            s.http
                .get(s.url("/api/tenant/superadmin/applications"))
                .bearer_auth(SUPERADMIN_TOKEN),
        )
        .await;
        let (users, users_secs) = timed(
            s.http
                .get(s.url("/api/users"))
                .header("X-Tenant-ID", "mk_univ")
                .bearer_auth(&self.token),
        )
        .await;
        (apps, apps_secs, users, users_secs)
    }

    /// Probes until the applications route answers 200 again, at most `tries` times
    /// 250 ms apart; its last status.
    async fn recovered(&self, tries: usize) -> u16 {
        let mut status = 0;
        for _ in 0..tries {
            status = self.probe().await.0;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        status
    }
}

/// A request's status (0: no answer within 30 s) and its seconds.
async fn timed(request: reqwest::RequestBuilder) -> (u16, f64) {
    let t = Instant::now();
    let status = request
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, t.elapsed().as_secs_f64())
}

/// During an outage only the applications route may fail, with 503 within its bound.
fn report_outage(
    report: &mut Report,
    part: &'static str,
    when: &str,
    probe: (u16, f64, u16, f64),
    bound: f64,
) {
    let (a, asec, u, usec) = probe;
    report.must(
        part,
        format!("{when}: applications status (seconds)"),
        format!("{a} ({asec:.2})"),
        a == 503 && asec <= bound + 1.0,
    );
    report.must(
        part,
        format!("{when}: tenant route status (seconds)"),
        format!("{u} ({usec:.2})"),
        u == 200 && usec < 1.0,
    );
}

async fn mariadb_pid() -> Option<u32> {
    let out = Command::new("pidof").arg("mariadbd").output().await.ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse::<u32>()
        .ok()
}

/// Sends `signal` (`-TERM`, `-STOP`, `-CONT`) to the running MariaDB.
async fn signal_mariadb(signal: &str) -> anyhow::Result<()> {
    let pid = mariadb_pid()
        .await
        .ok_or_else(|| anyhow::anyhow!("MariaDB is not running"))?;
    Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .await?;
    Ok(())
}

fn default_bin() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    me.with_file_name("mtpaas")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = args.bin.clone().unwrap_or_else(default_bin);
    anyhow::ensure!(
        bin.exists(),
        "no mtpaas binary at {} (build it first)",
        bin.display()
    );
    let parts: Vec<String> = if !args.only.is_empty() {
        args.only.clone()
    } else if args.quick {
        ["isolation", "crash", "webhooks", "fuzz"]
            .map(String::from)
            .to_vec()
    } else {
        [
            "isolation",
            "crash",
            "webhooks",
            "fuzz",
            "schemathesis",
            "postgres",
            "mysql",
            "citus",
        ]
        .map(String::from)
        .to_vec()
    };
    let mut report = Report::default();
    let started = Instant::now();
    for part in &parts {
        eprintln!("== {part}");
        let t = Instant::now();
        let result = match part.as_str() {
            "isolation" => isolation(&args, &bin, &mut report).await,
            "crash" => crash(&args, &bin, &mut report).await,
            "fuzz" => fuzz_tenant_ids(&args, &bin, &mut report).await,
            "postgres" => postgres_restart(&args, &bin, &mut report).await,
            "schemathesis" => schemathesis(&args, &bin, &mut report).await,
            "webhooks" => webhooks(&args, &bin, &mut report).await,
            "mysql" => mysql(&args, &bin, &mut report).await,
            "citus" => citus::run(&args, &bin, &mut report).await,
            other => Err(anyhow::anyhow!("unknown part {other}")),
        };
        if let Err(e) = result {
            report.must(
                "runner",
                format!("{part} ran to the end"),
                format!("{e:#}"),
                false,
            );
        }
        eprintln!("   {part}: {:.1} s", t.elapsed().as_secs_f64());
    }
    let table = report.table();
    println!("{table}");
    let failed = report.failed();
    let checks = report.figures.iter().filter(|f| f.ok.is_some()).count();
    println!("{} passed, {} failed", checks - failed, failed);
    if let Some(out) = &args.out {
        let md = format!(
            "# Reliability\n\nFigures of `mtpaas-reliability{}` on this machine ({} cores), {:.0} s in all.\n\n{table}\n",
            if args.quick { " --quick" } else { "" },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            started.elapsed().as_secs_f64()
        );
        std::fs::write(out, md)?;
    }
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
