//! Per-tenant API call counting: in memory, flushed in batches, nothing lost at a
//! graceful shutdown, replicas adding up.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{SUPERADMIN_TOKEN, TestApp};

/// Calls recorded in `api_usage` for `tenant`.
async fn stored_calls(app: &TestApp, tenant: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(calls), 0)::bigint FROM hltutor.api_usage WHERE tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Waits until `tenant` has `n` stored calls (or fails after 5 s).
async fn wait_for_calls(app: &TestApp, tenant: &str, n: i64) {
    for _ in 0..100 {
        if stored_calls(app, tenant).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{tenant} has {} calls stored, expected {n}",
        stored_calls(app, tenant).await
    );
}

/// `n` authorised calls to `/api/users` of `tenant`.
async fn call_users(app: &TestApp, tenant: &str, n: usize) {
    let token = app.token(tenant, 1, "admin");
    for _ in 0..n {
        let resp = app
            .get("/api/users")
            .header("X-Tenant-ID", tenant)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

async fn send(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn n_requests_become_exactly_n_calls_after_a_flush() {
    // Flushes every 200 ms (the tests' setting).
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    app.create_tenant("univ_9", 9).await;
    app.create_tenant("univ_off", 10).await;

    call_users(&app, "univ_8", 20).await;
    // A call refused for want of a token is still a call the tenant's frontend made.
    for _ in 0..5 {
        assert_eq!(
            send(app.get("/api/users").header("X-Tenant-ID", "univ_8")).await,
            401
        );
    }
    call_users(&app, "univ_9", 3).await;

    // Not counted: probes, unknown paths, unknown or suspended tenants, operator and
    // market routes.
    for _ in 0..4 {
        assert_eq!(
            send(app.get("/api/health").header("X-Tenant-ID", "univ_8")).await,
            200
        );
        assert_eq!(
            send(app.get("/api/nope").header("X-Tenant-ID", "univ_8")).await,
            404
        );
        assert_eq!(
            send(app.get("/api/users").header("X-Tenant-ID", "nobody")).await,
            404
        );
        assert_eq!(
            send(
                app.get("/api/tenant/superadmin/tenants/univ_8")
                    .header("X-Tenant-ID", "univ_8")
                    .bearer_auth(SUPERADMIN_TOKEN)
            )
            .await,
            200
        );
    }
    app.set_status_in_db("univ_off", "suspended").await;
    for _ in 0..3 {
        let s = send(
            app.get("/api/users")
                .header("X-Tenant-ID", "univ_off")
                .bearer_auth(app.token("univ_off", 1, "admin")),
        )
        .await;
        assert_eq!(s, 403);
    }

    wait_for_calls(&app, "univ_8", 25).await;
    wait_for_calls(&app, "univ_9", 3).await;
    // Several more flush intervals: nothing is counted twice.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stored_calls(&app, "univ_8").await, 25);
    assert_eq!(stored_calls(&app, "univ_9").await, 3);
    assert_eq!(stored_calls(&app, "univ_off").await, 0);
    assert_eq!(stored_calls(&app, "nobody").await, 0);

    let usage: Value = app
        .request(Method::GET, "/api/tenant/superadmin/tenants/univ_8/usage")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = &usage["usage"]["api_calls"];
    assert_eq!(calls["total"], 25, "{usage}");
    assert_eq!(calls["last_24h"], 25, "{usage}");
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        calls["per_day"],
        serde_json::json!([{"day": today, "calls": 25}])
    );
}

#[tokio::test]
async fn counting_writes_nothing_per_request_and_a_graceful_shutdown_loses_none() {
    // No periodic flush during the test: only the shutdown flush can write.
    let mut app = TestApp::spawn_with(|env| {
        env.insert("USAGE_FLUSH_INTERVAL_MS".into(), "3600000".into());
    })
    .await;
    app.create_tenant("univ_8", 8).await;

    // Concurrent calls, as a frontend makes them.
    let token = app.token("univ_8", 1, "admin");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = app.client.clone();
        let url = app.url("/api/users");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let resp = client
                    .get(&url)
                    .header("X-Tenant-ID", "univ_8")
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(app.state.usage.pending_calls(), 80);
    // 80 requests, and not one row written for them.
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.api_usage")
            .await,
        0
    );

    app.stop().await;
    assert_eq!(stored_calls(&app, "univ_8").await, 80);
}

#[tokio::test]
async fn counts_from_several_replicas_add_up() {
    let mut a = TestApp::spawn_with(|env| {
        env.insert("USAGE_FLUSH_INTERVAL_MS".into(), "3600000".into());
    })
    .await;
    let mut b = TestApp::spawn_on(&a.database_url, |env| {
        env.insert("USAGE_FLUSH_INTERVAL_MS".into(), "100".into());
    })
    .await;
    a.create_tenant("univ_8", 8).await;
    call_users(&b, "univ_8", 7).await;
    wait_for_calls(&b, "univ_8", 7).await;
    call_users(&a, "univ_8", 5).await;
    call_users(&b, "univ_8", 4).await;

    // Two replicas' counts for the same hour land in one row and add up.
    let central = a.state.config.central_schema.clone();
    let tenant = mtpaas::tenancy::TenantId::parse("univ_9").unwrap();
    let hour: chrono::DateTime<chrono::Utc> = "2026-01-08T10:00:00Z".parse().unwrap();
    a.state.usage.record_n(&tenant, hour, 3);
    b.state
        .usage
        .record_n(&tenant, hour + chrono::TimeDelta::minutes(59), 4);
    b.state.usage.flush(&b.state.db, &central).await.unwrap();
    a.state.usage.flush(&a.state.db, &central).await.unwrap();
    let rows: Vec<(chrono::DateTime<chrono::Utc>, i64)> =
        sqlx::query_as("SELECT hour, calls FROM hltutor.api_usage WHERE tenant_id = 'univ_9'")
            .fetch_all(&a.db)
            .await
            .unwrap();
    assert_eq!(rows, vec![(hour, 7)]);

    a.stop().await;
    b.stop().await;
    assert_eq!(stored_calls(&a, "univ_8").await, 16);
}

#[tokio::test]
async fn a_failed_flush_keeps_its_counts_for_the_next_one() {
    let app = TestApp::spawn_with(|env| {
        env.insert("USAGE_FLUSH_INTERVAL_MS".into(), "3600000".into());
    })
    .await;
    app.create_tenant("univ_8", 8).await;
    call_users(&app, "univ_8", 6).await;
    let central = app.state.config.central_schema.clone();

    // The table is briefly unavailable: the flush fails and keeps the counts.
    sqlx::query("ALTER TABLE hltutor.api_usage RENAME TO api_usage_away")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(
        app.state
            .usage
            .flush(&app.state.db, &central)
            .await
            .is_err()
    );
    assert_eq!(app.state.usage.pending_calls(), 6);
    sqlx::query("ALTER TABLE hltutor.api_usage_away RENAME TO api_usage")
        .execute(&app.db)
        .await
        .unwrap();

    assert_eq!(
        app.state
            .usage
            .flush(&app.state.db, &central)
            .await
            .unwrap(),
        6
    );
    assert_eq!(app.state.usage.pending_calls(), 0);
    assert_eq!(stored_calls(&app, "univ_8").await, 6);
}

#[tokio::test]
async fn last_24h_and_per_day_come_from_the_hourly_buckets() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    // Counts from earlier hours and days, as other flushes left them.
    sqlx::raw_sql(
        "INSERT INTO hltutor.api_usage (tenant_id, hour, calls) VALUES \
           ('univ_8', date_trunc('hour', now()), 5), \
           ('univ_8', date_trunc('hour', now()) - interval '23 hours', 7), \
           ('univ_8', date_trunc('hour', now()) - interval '24 hours', 11), \
           ('univ_8', date_trunc('hour', now()) - interval '40 days', 13), \
           ('univ_9', date_trunc('hour', now()), 100)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let usage: Value = app
        .get("/api/tenant/superadmin/tenants/univ_8/usage?days=60")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = &usage["usage"]["api_calls"];
    assert_eq!(calls["total"], 36, "{usage}");
    assert_eq!(calls["last_24h"], 12, "{usage}");
    let per_day = calls["per_day"].as_array().unwrap();
    let sum: i64 = per_day.iter().map(|d| d["calls"].as_i64().unwrap()).sum();
    assert_eq!(sum, 36);
    let days: Vec<&str> = per_day.iter().map(|d| d["day"].as_str().unwrap()).collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(days, sorted, "oldest first");

    // The default window is 30 days: the 40-day-old bucket falls out of per_day only.
    let usage: Value = app
        .get("/api/tenant/superadmin/tenants/univ_8/usage")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = &usage["usage"]["api_calls"];
    assert_eq!(calls["total"], 36);
    let sum: i64 = calls["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["calls"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 23);
}
