//! The same server on a Citus cluster (schema-based sharding): every statement path,
//! tenants spread and moved across the workers, and a stopped worker costing only its
//! own tenants.
//!
//! Runs against the coordinator given by `CITUS_DATABASE_URL` (e.g. the cluster
//! `scripts/citus-cluster start` runs: `postgresql://postgres@127.0.0.1:9700/mtpaas`);
//! without it each test prints one line and passes. All tests share the cluster's
//! database, so each works in a central schema, template and tenant ids of its own.
//! They run one at a time (`.config/nextest.toml`, group `citus`): one of them stops a
//! worker. The fault test also needs `CITUS_CLUSTER_SCRIPT` (the path of
//! `scripts/citus-cluster`) to stop and start the worker.

use std::process::Output;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{SUPERADMIN_TOKEN, TestApp, WEBHOOK_SECRET, base_env};
use crate::market::Market;

fn citus_url() -> Option<String> {
    let url = std::env::var("CITUS_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: CITUS_DATABASE_URL is not set (no Citus cluster to test against)");
    }
    url
}

/// A short random suffix, so tests of different runs never share names.
fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// A server on the cluster with a central schema and template of its own.
struct CitusApp {
    app: TestApp,
    env: std::collections::HashMap<String, String>,
    tag: String,
}

impl CitusApp {
    async fn spawn(url: &str) -> CitusApp {
        Self::spawn_with(url, |_| {}).await
    }

    async fn spawn_with(
        url: &str,
        f: impl FnOnce(&mut std::collections::HashMap<String, String>),
    ) -> CitusApp {
        let tag = suffix();
        let mut env = base_env(url);
        env.insert("CENTRAL_SCHEMA".into(), format!("c_{tag}"));
        env.insert("TEMPLATE_SCHEMA".into(), format!("tpl_{tag}"));
        env.insert("DB_MAX_CONNECTIONS".into(), "8".into());
        env.insert("RUST_LOG".into(), "warn".into());
        f(&mut env);
        let for_app = env.clone();
        let app = TestApp::spawn_on(url, move |e| *e = for_app).await;
        CitusApp { app, env, tag }
    }

    /// A tenant id of this test.
    fn tenant(&self, name: &str) -> String {
        format!("{name}_{}", self.tag)
    }

    /// Runs `mtpaas <args>` with this server's settings.
    async fn cli(&self, args: &[&str]) -> Output {
        let dir = std::env::temp_dir().join(format!("mtpaas-citus-{}", self.tag));
        std::fs::create_dir_all(&dir).unwrap();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mtpaas"))
            .args(args)
            .envs(&self.env)
            .env("BACKUP_DIR", dir.join("backups"))
            .current_dir(&dir)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    }

    async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "mtpaas {args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    async fn superadmin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .app
            .request(method, &format!("/api/tenant/superadmin{path}"))
            .bearer_auth(SUPERADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn webhook(&self, route: &str, body: Value) -> Value {
        let resp = self
            .app
            .post(&format!("/api/tenant/webhook/{route}"))
            .header("X-Webhook-Secret", WEBHOOK_SECRET)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{route}: {body}");
        body
    }

    /// The node (`host:port`) Citus placed `tenant` on, from the catalogs.
    async fn node_of(&self, tenant: &str) -> Option<String> {
        sqlx::query_scalar(
            "SELECT n.nodename || ':' || n.nodeport FROM pg_dist_schema s \
               JOIN pg_dist_partition p ON p.colocationid = s.colocationid \
               JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid \
               JOIN pg_dist_placement pl ON pl.shardid = sh.shardid \
               JOIN pg_dist_node n ON n.groupid = pl.groupid \
              WHERE s.schemaid = to_regnamespace($1) LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(&self.app.db)
        .await
        .unwrap()
    }

    async fn distributed(&self, schema: &str) -> bool {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1))",
        )
        .bind(schema)
        .fetch_one(&self.app.db)
        .await
        .unwrap()
    }

    async fn users_status(&self, tenant: &str, token: &str) -> StatusCode {
        self.app
            .get("/api/users")
            .header("X-Tenant-ID", tenant)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Drops what this test made: its tenants' schemas, its template and central schema.
    async fn clean_up(mut self) {
        self.app.stop().await;
        let schemas: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1")
                .bind(format!("%{}", self.tag))
                .fetch_all(&self.app.db)
                .await
                .unwrap();
        for s in schemas {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{s}\" CASCADE"
            )))
            .execute(&self.app.db)
            .await;
        }
    }
}

#[tokio::test]
async fn on_citus_every_statement_path_works_and_tenants_are_distributed() {
    let Some(url) = citus_url() else { return };
    let market = Market::fresh().await;
    let c = CitusApp::spawn_with(&url, |env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), market.url.clone());
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
    })
    .await;
    let central = format!("c_{}", c.tag);
    let template = format!("tpl_{}", c.tag);
    // Start-up migrations ran; the central and template schemas stay on the coordinator.
    assert!(!c.distributed(&central).await, "central schema distributed");
    assert!(
        !c.distributed(&template).await,
        "template schema distributed"
    );

    // Tenant creation: each schema becomes a distributed schema on a worker.
    let (a, b) = (c.tenant("ca"), c.tenant("cb"));
    let token_a = c.app.onboard(&a, 901).await;
    let token_b = c.app.onboard(&b, 902).await;
    for t in [&a, &b] {
        assert!(c.distributed(t).await, "{t} is not a distributed schema");
        let node = c.node_of(t).await.expect("placed on a node");
        assert!(!node.ends_with(":9700"), "{t} on the coordinator: {node}");
    }

    // The tenant app: reads and writes.
    let user = c
        .app
        .add_user(&a, &token_a, "member@ca.ac.kr", "a member password")
        .await;
    assert!(user > 1);
    let resp = c
        .app
        .post("/api/chat")
        .header("X-Tenant-ID", &a)
        .bearer_auth(&token_a)
        .json(&json!({"message": "안녕하세요"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let chats: Value = c
        .app
        .get("/api/chat")
        .header("X-Tenant-ID", &a)
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chats["messages"].as_array().unwrap().len(), 1);
    // Another tenant's token and data stay apart.
    let resp = c
        .app
        .get("/api/users")
        .header("X-Tenant-ID", &a)
        .bearer_auth(&token_b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Superadmin: list, one (with its node), usage, history, actions.
    let list = c
        .superadmin(reqwest::Method::GET, "/tenants?limit=10", None)
        .await;
    assert_eq!(list["total"], 2);
    let one = c
        .superadmin(reqwest::Method::GET, &format!("/tenants/{a}"), None)
        .await;
    assert_eq!(one["node"].as_str(), c.node_of(&a).await.as_deref());
    let usage = c
        .superadmin(reqwest::Method::GET, &format!("/tenants/{a}/usage"), None)
        .await;
    assert_eq!(usage["usage"]["user_count"], 2);
    assert_eq!(usage["usage"]["chat_count"], 1);
    c.superadmin(
        reqwest::Method::POST,
        &format!("/tenants/{b}/suspend"),
        Some(json!({"reason": "citus test"})),
    )
    .await;
    assert_eq!(c.users_status(&b, &token_b).await, 403);
    c.superadmin(
        reqwest::Method::POST,
        &format!("/tenants/{b}/reinstate"),
        Some(json!({})),
    )
    .await;
    assert_eq!(c.users_status(&b, &token_b).await, 200);
    let history = c
        .superadmin(reqwest::Method::GET, &format!("/tenants/{b}/history"), None)
        .await;
    let events: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["created", "suspended", "reinstated"]);

    // Webhooks: the market suspends and reinstates an application's tenants.
    let cancelled = c
        .webhook("service-cancelled", json!({"application_id": 901}))
        .await;
    assert_eq!(cancelled["suspended_tenants"], json!([a]));
    assert_eq!(c.users_status(&a, &token_a).await, 403);
    let back = c
        .webhook("service-reinstated", json!({"application_id": 901}))
        .await;
    assert_eq!(back["reinstated_tenants"], json!([a]));
    assert_eq!(c.users_status(&a, &token_a).await, 200);

    // Usage is flushed to the central schema.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let calls: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE(SUM(calls), 0)::bigint FROM \"{central}\".api_usage WHERE tenant_id = $1"
    )))
    .bind(&a)
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert!(calls >= 3, "{calls} calls counted for {a}");

    // The operator commands: migrate (no-op), check, show with the node, backup,
    // restore --as (sharding off, then distributed), delete and purge.
    let migrated = c.cli_ok(&["migrate"]).await;
    assert!(migrated.contains("2 already up to date"), "{migrated}");
    // A migration with DDL Citus propagates (an index needs a message of its own).
    let extra = std::env::temp_dir().join(format!("mtpaas-citus-mig-{}", c.tag));
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(
        extra.join("0002_nickname.sql"),
        "ALTER TABLE user_mst ADD COLUMN nickname VARCHAR(50);\n\
         CREATE INDEX user_mst_nickname_idx ON user_mst (nickname);\n",
    )
    .unwrap();
    let extra = extra.to_str().unwrap();
    let applied = c.cli_ok(&["migrate", "--extra-migrations", extra]).await;
    assert!(
        applied.contains("tenants: 2 at version 2 (2 migrated, 0 already up to date, 0 failed)"),
        "{applied}"
    );
    let has_index: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_regclass('\"{a}\".user_mst_nickname_idx') IS NOT NULL"
    )))
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert!(has_index, "the new index on the worker's tenant");
    assert_eq!(c.users_status(&a, &token_a).await, 200);
    let checked = c.cli_ok(&["check"]).await;
    assert!(checked.contains("0 with drift"), "{checked}");
    let shown = c.cli_ok(&["tenant", "show", &a]).await;
    let node = c.node_of(&a).await.unwrap();
    assert!(
        shown.contains(&format!("node             {node}")),
        "{shown}"
    );
    let backed = c.cli_ok(&["backup", &a]).await;
    let archive = backed
        .split_whitespace()
        .find(|w| w.ends_with(".dump"))
        .expect("the archive's path")
        .to_owned();
    let copy = c.tenant("cc");
    c.cli_ok(&["restore", &a, &archive, "--as", &copy]).await;
    assert!(
        c.distributed(&copy).await,
        "the restored copy is distributed"
    );
    let copied_users: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{copy}\".user_mst"
    )))
    .fetch_one(&c.app.db)
    .await
    .unwrap();
    assert_eq!(copied_users, 2);
    c.cli_ok(&["tenant", "delete", &copy, "--reason", "test copy"])
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{central}\".tenants SET deleted_at = deleted_at - interval '400 days' \
         WHERE tenant_id = $1"
    )))
    .bind(&copy)
    .execute(&c.app.db)
    .await
    .unwrap();
    let purged = c.cli_ok(&["purge", "--yes"]).await;
    assert!(purged.contains(&copy), "{purged}");
    assert!(!c.distributed(&copy).await, "{purged}");
    assert!(
        !c.app.schema_exists(&copy).await,
        "purged schema still there"
    );

    // Demo expiry: a demo past its expiry at the market gets its tenant suspended.
    let service = market.service("KELI Tutor").await;
    let owner = market.user("demo@citus.ac.kr", "데모대학교").await;
    let expired = market
        .application(
            owner,
            service,
            "demo",
            "approved",
            "NOW() - INTERVAL 15 DAY",
            "NOW() - INTERVAL 1 HOUR",
        )
        .await;
    let demo = c.tenant("cd");
    let mut body = TestApp::create_body(&demo, expired);
    body["application_kind"] = json!("demo");
    assert_eq!(c.app.create_tenant_raw(&body).await.status(), 200);
    let suspended = mtpaas::market::demo_expiry::run_once(&c.app.state.demo_expiry_job())
        .await
        .unwrap();
    assert_eq!(
        suspended.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        [demo.as_str()]
    );

    let cluster = c.cli_ok(&["cluster", "nodes"]).await;
    assert!(cluster.contains("coordinator"), "{cluster}");
    c.clean_up().await;
}

#[tokio::test]
async fn new_tenants_spread_over_the_workers_and_one_moves_while_answering() {
    let Some(url) = citus_url() else { return };
    let c = CitusApp::spawn(&url).await;
    let mut tenants = Vec::new();
    for i in 0..8 {
        let t = c.tenant(&format!("s{i}"));
        c.app.create_tenant(&t, 910 + i).await;
        tenants.push(t);
    }
    let mut by_node = std::collections::BTreeMap::<String, usize>::new();
    for t in &tenants {
        *by_node.entry(c.node_of(t).await.unwrap()).or_default() += 1;
    }
    assert!(by_node.len() >= 2, "all on one node: {by_node:?}");

    // Move one tenant to the other worker while a reader keeps reading it.
    let mover = c.tenant("mv");
    let token = c.app.onboard(&mover, 990).await;
    let from = c.node_of(&mover).await.unwrap();
    let to = by_node
        .keys()
        .find(|n| **n != from)
        .expect("another worker")
        .clone();
    let dry = c
        .cli_ok(&["cluster", "move", &mover, "--to", &to, "--dry-run"])
        .await;
    assert!(dry.contains("would move"), "{dry}");
    assert_eq!(c.node_of(&mover).await.unwrap(), from, "a dry run moved it");

    let reader = {
        let client = c.app.client.clone();
        let url = c.app.url("/api/users");
        let (tenant, token) = (mover.clone(), token.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut longest) = (0u32, Vec::new(), Duration::ZERO);
            let until = Instant::now() + Duration::from_secs(6);
            while Instant::now() < until {
                let started = Instant::now();
                let resp = client
                    .get(&url)
                    .header("X-Tenant-ID", &tenant)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                longest = longest.max(started.elapsed());
                if resp.status() == 200 {
                    ok += 1;
                } else {
                    failed.push(resp.status());
                }
            }
            (ok, failed, longest)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let moved = c.cli_ok(&["cluster", "move", &mover, "--to", &to]).await;
    assert!(moved.contains("moved tenant"), "{moved}");
    let (ok, failed, longest) = reader.await.unwrap();
    assert_eq!(c.node_of(&mover).await.unwrap(), to);
    assert!(
        failed.is_empty(),
        "reads failed during the move: {failed:?}"
    );
    assert!(ok > 10, "only {ok} reads in 6 s");
    eprintln!("longest read during the move: {longest:?} ({ok} reads)");
    let one = c
        .superadmin(reqwest::Method::GET, &format!("/tenants/{mover}"), None)
        .await;
    assert_eq!(one["node"], to.as_str());

    // Moving to the coordinator, or to where it is, is refused or a no-op.
    let refused = c
        .cli(&["cluster", "move", &mover, "--to", "127.0.0.1:1"])
        .await;
    assert!(!refused.status.success());
    let same = c.cli_ok(&["cluster", "move", &mover, "--to", &to]).await;
    assert!(same.contains("already on"), "{same}");

    // The rebalancer's plan is shown; a dry run changes nothing.
    let plan = c.cli_ok(&["cluster", "rebalance", "--dry-run"]).await;
    assert!(
        plan.contains("nothing to move") || plan.contains("would move"),
        "{plan}"
    );
    c.clean_up().await;
}

/// Stops a worker: tenants on the other one, health, the superadmin list and webhooks
/// that touch only the central schema keep answering; the stopped worker's tenants get
/// a 503 with a clear detail, quickly; after its restart they recover.
#[tokio::test]
async fn a_stopped_worker_costs_only_its_own_tenants() {
    let Some(url) = citus_url() else { return };
    let Some(script) = std::env::var("CITUS_CLUSTER_SCRIPT").ok() else {
        eprintln!("skipped: CITUS_CLUSTER_SCRIPT is not set (cannot stop a worker)");
        return;
    };
    let c = CitusApp::spawn(&url).await;
    // One tenant on each worker.
    let mut on: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut created = 0;
    for i in 0..12 {
        if on.len() == 2 {
            break;
        }
        created += 1;
        let t = c.tenant(&format!("f{i}"));
        let token = c.app.onboard(&t, 950 + i).await;
        let node = c.node_of(&t).await.unwrap();
        on.entry(node).or_insert((t, token));
    }
    assert_eq!(on.len(), 2, "tenants did not land on both workers: {on:?}");
    let (down_node, (down, down_token)) = on.iter().next_back().unwrap();
    let (_, (up, up_token)) = on.iter().next().unwrap();
    let worker = match down_node.rsplit(':').next() {
        Some("9701") => "1",
        Some("9702") => "2",
        other => panic!("not a worker of the local cluster: {other:?}"),
    };
    let stop = std::process::Command::new(&script)
        .args(["stop-worker", worker])
        .status()
        .unwrap();
    assert!(stop.success());
    // Started again however this test ends.
    let restart = RestartOnDrop(&script, worker);

    {
        let started = Instant::now();
        let resp = c
            .app
            .get("/api/users")
            .header("X-Tenant-ID", down)
            .bearer_auth(down_token)
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(resp.status(), 503, "{:?}", resp.text().await);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "database_node_unavailable", "{body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("cannot be reached"),
            "{body}"
        );
        assert!(took < Duration::from_secs(10), "took {took:?}");
        // The other worker's tenant, the coordinator's routes.
        assert_eq!(c.users_status(up, up_token).await, 200);
        let health = c.app.get("/api/health").send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = c.app.get("/api/ready").send().await.unwrap();
        assert_eq!(ready.status(), 200);
        let list = c
            .superadmin(reqwest::Method::GET, "/tenants?limit=50", None)
            .await;
        assert_eq!(list["total"], created, "{list}");
        let listed: Vec<&str> = list["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant_id"].as_str().unwrap())
            .collect();
        assert!(listed.contains(&down.as_str()) && listed.contains(&up.as_str()));
        let cancelled = c
            .webhook(
                "service-changed",
                json!({"application_id": 999_999, "application_kind": "demo"}),
            )
            .await;
        assert_eq!(cancelled["success"], true, "{cancelled}");
        // Writes of the healthy tenant go on too.
        let resp = c
            .app
            .post("/api/chat")
            .header("X-Tenant-ID", up)
            .bearer_auth(up_token)
            .json(&json!({"message": "still here"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    drop(restart);

    // Back without a restart of mtpaas.
    let mut recovered = false;
    for _ in 0..40 {
        if c.users_status(down, down_token).await == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "{down} did not recover after its worker came back"
    );
    c.clean_up().await;
}

/// Starts worker `.1` with the cluster script `.0` when dropped.
struct RestartOnDrop<'a>(&'a str, &'a str);

impl Drop for RestartOnDrop<'_> {
    fn drop(&mut self) {
        let started = std::process::Command::new(self.0)
            .args(["start-worker", self.1])
            .status();
        assert!(
            started.is_ok_and(|s| s.success()) || std::thread::panicking(),
            "worker {} did not start again",
            self.1
        );
    }
}
