use crate::helpers::{API_KEY, TestApp, assert_json_error};

#[tokio::test]
async fn malformed_bodies_get_4xx_json_never_500() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, &str, u16)] = &[
        ("application/json", "{bad", 400),
        ("application/json", "", 400),
        ("application/json", "[]", 422),
        ("application/json", r#"{"tenant_id": "x"}"#, 422),
        (
            "application/json",
            r#"{"tenant_id": 5, "tenant_name": "x", "admin_email": "a@b.kr"}"#,
            422,
        ),
        (
            "application/json",
            r#"{"tenant_id": "ok_t", "tenant_name": "x", "admin_email": "a@b.kr", "application_id": "one"}"#,
            422,
        ),
        (
            "application/json",
            r#"{"tenant_id": "ok_t", "tenant_name": "x", "admin_email": "a@b.kr", "application_id": 99999999999}"#,
            422,
        ),
        (
            "application/json",
            r#"{"tenant_id": "ok_t", "tenant_name": "", "admin_email": "a@b.kr"}"#,
            422,
        ),
        (
            "application/json",
            r#"{"tenant_id": "ok_t", "tenant_name": "x", "admin_email": "nope"}"#,
            422,
        ),
        (
            "application/json",
            r#"{"tenant_id": "ok_t", "tenant_name": "x", "admin_email": "a@b.kr", "application_kind": "free"}"#,
            422,
        ),
        ("text/plain", r#"{"tenant_id": "ok_t"}"#, 400),
    ];
    for (ct, body, status) in cases {
        let resp = app
            .post("/api/tenant/create")
            .header("X-API-Key", API_KEY)
            .header("Content-Type", *ct)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_json_error(resp, *status).await;
    }
    let big = format!(
        r#"{{"tenant_id": "ok_t", "tenant_name": "{}", "admin_email": "a@b.kr"}}"#,
        "x".repeat(70_000)
    );
    let resp = app
        .post("/api/tenant/create")
        .header("X-API-Key", API_KEY)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 413).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        0
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    assert_json_error(app.get("/api/nope").send().await.unwrap(), 404).await;
    assert_json_error(app.get("/").send().await.unwrap(), 404).await;
    let resp = app
        .request(reqwest::Method::DELETE, "/api/health")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers().get("allow").unwrap(), "GET,HEAD");
    assert_json_error(resp, 405).await;
}

#[tokio::test]
async fn ready_answers_200_with_postgres_and_503_without() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/ready").send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // The same router over a pool whose Postgres is not there.
    let mut state = app.state.clone();
    state.db = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/none")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, mtpaas::app(state)).await });
    let started = std::time::Instant::now();
    let resp = app
        .client
        .get(format!("http://{addr}/api/ready"))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let body = assert_json_error(resp, 503).await;
    assert_eq!(body["code"], "database_unavailable");
    // Health needs no database.
    let health = app
        .client
        .get(format!("http://{addr}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
