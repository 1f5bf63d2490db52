//! Prometheus metrics and JSON log lines.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{
    API_KEY, JWT_SECRET, SUPERADMIN_TOKEN, TestApp, WEBHOOK_SECRET, assert_json_error,
    fresh_database,
};

async fn scrape(app: &TestApp, path: &str) -> String {
    let resp = app
        .get(path)
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    resp.text().await.unwrap()
}

/// The value of the sample `name{labels}` (labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_never_by_raw_path() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    for _ in 0..3 {
        let resp = app
            .get("/api/tenant/superadmin/tenants/secret_tenant_xyz")
            .bearer_auth(SUPERADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
    app.get("/api/no/such/path_abc123").send().await.unwrap();
    mtpaas::http::metrics::webhook_delivery("user-deleted", "applied");

    let text = scrape(&app, "/metrics").await;
    let hits = sample(
        &text,
        r#"mtpaas_http_requests_total{method="GET",route="/api/tenant/superadmin/tenants/{id}",status="404"}"#,
    )
    .unwrap_or_else(|| panic!("no route sample in\n{text}"));
    assert!(hits >= 3.0, "{hits}");
    assert!(
        sample(
            &text,
            r#"mtpaas_http_requests_total{method="POST",route="/api/tenant/create",status="200"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    // Raw paths and tenant ids never become label values.
    for raw in ["secret_tenant_xyz", "path_abc123", "univ_8"] {
        assert!(!text.contains(raw), "{raw} leaked into\n{text}");
    }
    // Latency is a histogram with buckets.
    assert!(text.contains("# TYPE mtpaas_http_request_duration_seconds histogram"));
    assert!(text.contains(
        r#"mtpaas_http_request_duration_seconds_bucket{method="GET",route="/api/tenant/superadmin/tenants/{id}",le="0.1"}"#
    ));
    assert!(
        sample(
            &text,
            r#"mtpaas_webhook_deliveries_total{event="user-deleted",outcome="applied"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_show_tenants_by_status_and_pool_saturation() {
    let app = TestApp::spawn().await;
    for t in ["univ_1", "univ_2", "univ_3"] {
        app.create_tenant(t, 1).await;
    }
    let resp = app
        .post("/api/tenant/superadmin/tenants/univ_2/suspend")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .post("/api/tenant/superadmin/tenants/univ_3/delete")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // /metrics is for scrapers inside the network; /api/metrics, which nginx forwards,
    // is the operator's.
    let resp = app.get("/metrics").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app.get("/api/metrics").send().await.unwrap();
    assert_json_error(resp, 401).await;
    for path in ["/metrics", "/api/metrics"] {
        let text = scrape(&app, path).await;
        assert_eq!(
            sample(&text, r#"mtpaas_tenants{status="active"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"mtpaas_tenants{status="suspended"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"mtpaas_tenants{status="deleted"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"mtpaas_tenants{status="purged"}"#),
            Some(0.0)
        );
        // The tests' pools hold at most 5 connections.
        assert_eq!(
            sample(&text, r#"mtpaas_db_pool_max_connections{pool="postgres"}"#),
            Some(5.0)
        );
        let idle = sample(
            &text,
            r#"mtpaas_db_pool_connections{pool="postgres",state="idle"}"#,
        )
        .unwrap();
        let in_use = sample(
            &text,
            r#"mtpaas_db_pool_connections{pool="postgres",state="in_use"}"#,
        )
        .unwrap();
        assert!(
            idle + in_use <= 5.0 && idle + in_use >= 1.0,
            "{idle} {in_use}"
        );
        assert!(text.contains("mtpaas_usage_pending_calls "), "{text}");
    }
}

/// The real binary, started with `LOG_FORMAT=<format>` and tower-http's own lines
/// (`started processing request` is at debug), its stderr lines sent to the receiver.
struct LoggedServer {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    base: String,
    database_url: String,
}

async fn start_logged(format: &str) -> LoggedServer {
    let database_url = fresh_database().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mtpaas"))
        .env_clear()
        .envs([
            ("DATABASE_URL", database_url.as_str()),
            ("HOST", "127.0.0.1"),
            ("PORT", &port.to_string()),
            ("TENANT_API_KEY", API_KEY),
            ("SERVICE_MARKET_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("SUPERADMIN_TOKEN", SUPERADMIN_TOKEN),
            ("JWT_SECRET", JWT_SECRET),
            ("DB_MAX_CONNECTIONS", "3"),
            ("USAGE_FLUSH_INTERVAL_MS", "3600000"),
            ("LOG_FORMAT", format),
            ("NO_COLOR", "1"),
            ("RUST_LOG", "info,tower_http=debug"),
        ])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            let _ = tx.send(l);
        }
    });

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..300 {
        if client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server never came up");
    LoggedServer {
        child,
        lines: rx,
        base,
        database_url,
    }
}

impl LoggedServer {
    /// Stops the server gracefully (SIGTERM) and returns every line it logged.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().unwrap().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server stops on SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
        let mut all = Vec::new();
        while let Ok(Some(l)) =
            tokio::time::timeout(Duration::from_secs(2), self.lines.recv()).await
        {
            all.push(l);
        }
        all
    }
}

/// Runs the real binary with `LOG_FORMAT=json` and reads its log lines.
#[tokio::test]
async fn json_log_lines_carry_the_request_and_tenant_ids() {
    let server = start_logged("json").await;
    let (base, database_url) = (server.base.clone(), server.database_url.clone());
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{base}/api/tenant/create"))
        .header("X-API-Key", API_KEY)
        .header("X-Request-Id", "req-create-0001")
        .json(&TestApp::create_body("univ_8", 8))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(format!("{base}/api/users"))
        .header("X-Tenant-ID", "univ_8")
        .header("X-Request-Id", "req-users-0002")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"], "req-users-0002");

    // A graceful stop (SIGTERM) flushes the one counted call.
    let all = server.stop().await;
    let json: Vec<Value> = all
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}")))
        .collect();
    // Every field of every enclosing span, outermost first.
    let span_field = |line: &Value, field: &str| -> Option<String> {
        line["spans"]
            .as_array()?
            .iter()
            .find_map(|s| s[field].as_str().map(str::to_owned))
    };
    let of_request = |id: &str| -> Vec<&Value> {
        json.iter()
            .filter(|l| span_field(l, "request_id").as_deref() == Some(id))
            .collect()
    };

    let users = of_request("req-users-0002");
    assert!(!users.is_empty(), "no line of the request in {all:#?}");
    for line in &users {
        assert_eq!(
            span_field(line, "tenant_id").as_deref(),
            Some("univ_8"),
            "{line}"
        );
    }
    assert!(
        users.iter().any(|l| l["status"] == 401),
        "the request's response line: {users:#?}"
    );
    // tower-http's first line of the request, logged before any handler ran.
    assert!(
        users
            .iter()
            .any(|l| l["message"] == "started processing request"),
        "tower-http's request line: {users:#?}"
    );

    // A line logged by a handler carries its request's id too.
    let create = of_request("req-create-0001");
    assert!(
        create
            .iter()
            .any(|l| l["message"] == "tenant created" && l["tenant_id"] == "univ_8"),
        "{create:#?}"
    );
    assert!(
        json.iter()
            .any(|l| l["message"] == "usage flushed at shutdown" && l["calls"] == 1),
        "{all:#?}"
    );
    // Secrets never appear in the logs.
    for secret in [API_KEY, SUPERADMIN_TOKEN, JWT_SECRET, WEBHOOK_SECRET] {
        assert!(!all.iter().any(|l| l.contains(secret)), "{secret} logged");
    }
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(calls), 0)::bigint FROM hltutor.api_usage WHERE tenant_id = 'univ_8'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
}

/// The human format names the request and its tenant on every line of a request,
/// tower-http's included.
#[tokio::test]
async fn text_log_lines_carry_the_request_and_tenant_ids() {
    let server = start_logged("text").await;
    let client = reqwest::Client::new();
    for (id, tenant) in [("req-text-0001", Some("univ_9")), ("req-text-0002", None)] {
        let mut req = client
            .get(format!("{}/api/users", server.base))
            .header("X-Request-Id", id);
        if let Some(t) = tenant {
            req = req.header("X-Tenant-ID", t);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
    let resp = client
        .get(format!("{}/api/users", server.base))
        .header("X-Request-Id", "req-text-0003")
        .header("X-Tenant-ID", "Not-A-Schema")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let all = server.stop().await;

    for (id, label) in [
        ("req-text-0001", "univ_9"),
        ("req-text-0002", "-"),
        ("req-text-0003", "!invalid"),
    ] {
        let lines: Vec<&String> = all
            .iter()
            .filter(|l| l.contains(&format!("request_id={id}")))
            .collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("started processing request")),
            "tower-http's request line of {id}: {all:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("finished processing request")),
            "tower-http's response line of {id}: {all:#?}"
        );
        for line in &lines {
            assert!(line.contains(&format!("tenant_id={label}")), "{line}");
        }
    }
}
