//! `TestApp`: a real mtpaas server on 127.0.0.1 with a database of its own.
#![allow(dead_code)] // helpers serve every test module; not each uses all

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mtpaas::Application;
use mtpaas::auth::jwt::Claims;
use mtpaas::config::Config;
use mtpaas::state::AppState;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use tokio::sync::oneshot;

pub const API_KEY: &str = "test_api_key_0123456789";
pub const WEBHOOK_SECRET: &str = "webhook_secret_12345";
pub const SUPERADMIN_TOKEN: &str = "superadmin_token_0123456789";
pub const JWT_SECRET: &str = "jwt_secret_for_tests_0123456789abcdef";

/// The server's Postgres, without a database name.
pub fn pg_base() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Creates a fresh database for one test; databases of runs over an hour old are dropped.
pub async fn fresh_database() -> String {
    static CLEANED: OnceLock<()> = OnceLock::new();
    let mut admin = PgConnection::connect(&format!("{}/postgres", pg_base()))
        .await
        .expect("Postgres is running on 127.0.0.1:5432");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if CLEANED.set(()).is_ok() {
        let old: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'mtpaas_t_%'")
                .fetch_all(&mut admin)
                .await
                .unwrap();
        for (name,) in old {
            let ts: u64 = name
                .split('_')
                .nth(2)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if now.saturating_sub(ts) > 3600 {
                let _ = admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .await;
            }
        }
    }
    let name = format!("mtpaas_t_{now}_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .unwrap();
    format!("{}/{name}", pg_base())
}

pub fn base_env(database_url: &str) -> HashMap<String, String> {
    [
        ("DATABASE_URL", database_url),
        ("HOST", "127.0.0.1"),
        ("PORT", "0"),
        ("TENANT_API_KEY", API_KEY),
        ("SERVICE_MARKET_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("SUPERADMIN_TOKEN", SUPERADMIN_TOKEN),
        ("JWT_SECRET", JWT_SECRET),
        ("PUBLIC_BASE_URL", "https://myservice.k-university.ai"),
        ("DB_MAX_CONNECTIONS", "5"),
        ("USAGE_FLUSH_INTERVAL_MS", "200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub database_url: String,
    /// A pool of the test's own on the same database, for arranging and checking.
    pub db: PgPool,
    pub state: AppState,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns a server on a fresh database, with settings changed by `f`.
    pub async fn spawn_with(f: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
        let database_url = fresh_database().await;
        Self::spawn_on(&database_url, f).await
    }

    /// Spawns a server on an existing database (a second replica).
    pub async fn spawn_on(
        database_url: &str,
        f: impl FnOnce(&mut HashMap<String, String>),
    ) -> TestApp {
        let mut env = base_env(database_url);
        f(&mut env);
        let config = Config::from_source(&env).expect("test config");
        let app = Application::build(config).await.expect("server builds");
        let port = app.local_addr().port();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(3)
            .connect(database_url)
            .await
            .unwrap();
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            database_url: database_url.to_owned(),
            db,
            state,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server gracefully and waits until it has finished.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// The seed's create payload for `tenant_id`, application `app_id`.
    pub fn create_body(tenant_id: &str, app_id: i64) -> Value {
        json!({
            "tenant_id": tenant_id,
            "tenant_name": format!("{tenant_id} 대학교"),
            "admin_email": format!("admin@{tenant_id}.ac.kr"),
            "admin_name": "관리자",
            "application_id": app_id,
            "application_kind": "service"
        })
    }

    pub async fn create_tenant_raw(&self, body: &Value) -> Response {
        self.post("/api/tenant/create")
            .header("X-API-Key", API_KEY)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a tenant and asserts it was created.
    pub async fn create_tenant(&self, tenant_id: &str, app_id: i64) -> Value {
        let resp = self
            .create_tenant_raw(&Self::create_body(tenant_id, app_id))
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "creating {tenant_id}: {body}");
        body
    }

    /// A token for user `user_id` of `tenant`, signed with the server's secret.
    pub fn token(&self, tenant: &str, user_id: i64, role: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.state
            .jwt
            .issue(&Claims::new(user_id, tenant, role, now))
    }

    /// Sets a tenant's status directly in the database, announcing it as the service
    /// does, and waits until this server has seen it.
    pub async fn set_status_in_db(&self, tenant: &str, status: &str) {
        let sql = "WITH u AS (UPDATE hltutor.tenants SET status = $2 WHERE tenant_id = $1) \
                   SELECT pg_notify('mtpaas_tenants', $1)";
        sqlx::query(sql)
            .bind(tenant)
            .bind(status)
            .execute(&self.db)
            .await
            .unwrap();
        let id = mtpaas::tenancy::TenantId::parse(tenant).unwrap();
        for _ in 0..100 {
            if self.state.directory.cached(&id).map(|s| s.as_str()) == Some(status) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the server never saw {tenant} become {status}");
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn schema_exists(&self, name: &str) -> bool {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        )
        .bind(name)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts a response is a JSON error with the given status, returning its body.
pub async fn assert_json_error(resp: Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "body: {text}");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["detail"].is_string(), "{body}");
    assert!(body["code"].is_string(), "{body}");
    body
}

/// Password every onboarded admin gets in tests.
pub const ADMIN_PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub async fn setup_password(&self, tenant: &str, token: &str, password: &str) -> Response {
        self.post("/api/auth/setup-password")
            .header("X-Tenant-ID", tenant)
            .json(&json!({ "token": token, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn login_raw(&self, tenant: &str, email: &str, password: &str) -> Response {
        self.post("/api/auth/login")
            .header("X-Tenant-ID", tenant)
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, tenant: &str, email: &str, password: &str) -> String {
        let resp = self.login_raw(tenant, email, password).await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "login {email}@{tenant}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a tenant through the API, sets its admin's password with the setup
    /// token from the create response, logs in, and returns the admin's token.
    pub async fn onboard(&self, tenant: &str, app_id: i64) -> String {
        let created = self.create_tenant(tenant, app_id).await;
        let setup = created["setup_token"].as_str().expect("setup token");
        let resp = self.setup_password(tenant, setup, ADMIN_PASSWORD).await;
        assert_eq!(resp.status(), 200);
        self.login(tenant, &format!("admin@{tenant}.ac.kr"), ADMIN_PASSWORD)
            .await
    }

    /// An admin (with `token`) creates a user with a password; returns the user's id.
    pub async fn add_user(&self, tenant: &str, token: &str, email: &str, password: &str) -> i64 {
        let resp = self
            .post("/api/users")
            .header("X-Tenant-ID", tenant)
            .bearer_auth(token)
            .json(&json!({ "email": email, "name": email, "password": password }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["user"]["id"].as_i64().unwrap()
    }
}
