use serde_json::Value;

use crate::helpers::{TestApp, assert_json_error};

async fn resolved(app: &TestApp, req: reqwest::RequestBuilder) -> (String, String) {
    let _ = app;
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    (
        body["tenant_id"].as_str().unwrap_or("<none>").to_owned(),
        body["tenant_source"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn each_source_wins_over_the_ones_after_it() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BASE_DOMAIN".into(), "ktutor.k-university.ai".into());
        env.insert("DEFAULT_TENANT".into(), "fallback_t".into());
    })
    .await;
    let all = || {
        app.get("/api/health?tenant=from_query")
            .header("X-Tenant-ID", "from_header")
            .header("Cookie", "theme=dark; tenant_id=from_cookie")
            .header("Host", "from_sub.ktutor.k-university.ai")
    };
    assert_eq!(
        resolved(&app, all()).await,
        ("from_header".into(), "header".into())
    );

    let no_header = app
        .get("/api/health?tenant=from_query")
        .header("Cookie", "tenant_id=from_cookie")
        .header("Host", "from_sub.ktutor.k-university.ai");
    assert_eq!(
        resolved(&app, no_header).await,
        ("from_query".into(), "query".into())
    );

    let cookie = app
        .get("/api/health")
        .header("Cookie", "a=1; tenant_id=from_cookie")
        .header("Host", "from_sub.ktutor.k-university.ai");
    assert_eq!(
        resolved(&app, cookie).await,
        ("from_cookie".into(), "cookie".into())
    );

    let sub = app
        .get("/api/health")
        .header("Host", "from_sub.ktutor.k-university.ai:443");
    assert_eq!(
        resolved(&app, sub).await,
        ("from_sub".into(), "subdomain".into())
    );

    let bare = app
        .get("/api/health")
        .header("Host", "ktutor.k-university.ai");
    assert_eq!(
        resolved(&app, bare).await,
        ("fallback_t".into(), "default".into())
    );
    let other_domain = app.get("/api/health").header("Host", "evil.example.com");
    assert_eq!(
        resolved(&app, other_domain).await,
        ("fallback_t".into(), "default".into())
    );

    // An invalid value in the deciding source is refused, never skipped.
    let bad_query = app
        .get("/api/health?tenant=Bad-Id")
        .header("Cookie", "tenant_id=from_cookie");
    assert_json_error(bad_query.send().await.unwrap(), 400).await;
    let bad_cookie = app
        .get("/api/health")
        .header("Cookie", "tenant_id=pg_catalog");
    assert_json_error(bad_cookie.send().await.unwrap(), 400).await;
    let bad_sub = app
        .get("/api/health")
        .header("Host", "Evil-Host.ktutor.k-university.ai");
    assert_json_error(bad_sub.send().await.unwrap(), 400).await;
}

#[tokio::test]
async fn with_no_source_and_no_default_there_is_no_tenant() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/health").send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body["tenant_id"].is_null(), "{body}");
    let scoped = app.get("/api/users").send().await.unwrap();
    let err = assert_json_error(scoped, 400).await;
    assert_eq!(err["code"], "tenant_required");
}

#[tokio::test]
async fn unknown_suspended_and_deleted_tenants_get_404_403_410() {
    let app = TestApp::spawn().await;
    app.create_tenant("live_u", 1).await;
    app.create_tenant("sus_u", 2).await;
    app.create_tenant("del_u", 3).await;
    app.set_status_in_db("sus_u", "suspended").await;
    app.set_status_in_db("del_u", "deleted").await;

    let token = app.token("live_u", 1, "admin");
    let ok = app
        .get("/api/users")
        .header("X-Tenant-ID", "live_u")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    for (tenant, status, code) in [
        ("nobody_u", 404, "tenant_not_found"),
        ("sus_u", 403, "tenant_suspended"),
        ("del_u", 410, "tenant_deleted"),
    ] {
        // Even with a valid token of that very tenant.
        let token = app.token(tenant, 1, "admin");
        let resp = app
            .get("/api/users")
            .header("X-Tenant-ID", tenant)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let err = assert_json_error(resp, status).await;
        assert_eq!(err["code"], code);
    }

    // Reinstated, it works again with its data intact.
    app.set_status_in_db("sus_u", "active").await;
    let token = app.token("sus_u", 1, "admin");
    let back = app
        .get("/api/users")
        .header("X-Tenant-ID", "sus_u")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    let body: Value = back.json().await.unwrap();
    assert_eq!(body["users"][0]["email"], "admin@sus_u.ac.kr");
}

#[tokio::test]
async fn a_tenant_created_on_another_replica_is_known_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    a.create_tenant("fresh_u", 1).await;
    // No waiting: B falls back to the database on a miss.
    let token = b.token("fresh_u", 1, "admin");
    let resp = b
        .get("/api/users")
        .header("X-Tenant-ID", "fresh_u")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
