//! The market's applications from its MySQL (seed 5.2), failure bounds, and demo expiry.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtpaas::market::demo_expiry;
use mtpaas::schema::migrate::lock_key;
use serde_json::{Value, json};
use sqlx::mysql::MySqlPool;
use sqlx::{Connection, Executor, MySqlConnection};

use crate::helpers::{API_KEY, SUPERADMIN_TOKEN, TestApp, assert_json_error};

/// The test machine's MariaDB, without a database name.
fn mysql_base() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A market database of one test, with the tables the seed's queries use.
pub struct Market {
    pub url: String,
    pub pool: MySqlPool,
}

impl Market {
    pub async fn fresh() -> Market {
        static CLEANED: OnceLock<()> = OnceLock::new();
        let mut admin = MySqlConnection::connect(&mysql_base())
            .await
            .expect("MariaDB is running on 127.0.0.1:3306");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if CLEANED.set(()).is_ok() {
            let old: Vec<(String,)> = sqlx::query_as(
                "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata \
                 WHERE schema_name LIKE 'mtpaas!_m!_%' ESCAPE '!'",
            )
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
                            "DROP DATABASE IF EXISTS `{name}`"
                        )))
                        .await;
                }
            }
        }
        let name = format!("mtpaas_m_{now}_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
            )))
            .await
            .unwrap();
        let url = format!("{}/{name}", mysql_base());
        let pool = MySqlPool::connect(&url).await.unwrap();
        // As the market has them: ENUM kinds and statuses, DATETIME times.
        pool.execute(sqlx::raw_sql(
            "CREATE TABLE users ( \
                 id INT AUTO_INCREMENT PRIMARY KEY, \
                 email VARCHAR(255) NOT NULL UNIQUE, \
                 university_name VARCHAR(255) NULL, \
                 role ENUM('user', 'admin') NOT NULL DEFAULT 'user', \
                 created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP \
             ); \
             CREATE TABLE services ( \
                 id INT AUTO_INCREMENT PRIMARY KEY, \
                 title VARCHAR(255) NOT NULL, \
                 description TEXT NULL \
             ); \
             CREATE TABLE service_applications ( \
                 id INT AUTO_INCREMENT PRIMARY KEY, \
                 user_id INT NOT NULL, \
                 service_id INT NOT NULL, \
                 kind ENUM('demo', 'service') NOT NULL, \
                 status ENUM('requested', 'approved', 'completed', 'rejected') NOT NULL DEFAULT 'requested', \
                 created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, \
                 demo_expires_at DATETIME NULL, \
                 FOREIGN KEY (user_id) REFERENCES users (id), \
                 FOREIGN KEY (service_id) REFERENCES services (id) \
             );",
        ))
        .await
        .unwrap();
        Market { url, pool }
    }

    pub async fn service(&self, title: &str) -> i64 {
        sqlx::query("INSERT INTO services (title) VALUES (?)")
            .bind(title)
            .execute(&self.pool)
            .await
            .unwrap()
            .last_insert_id() as i64
    }

    pub async fn user(&self, email: &str, university: &str) -> i64 {
        sqlx::query("INSERT INTO users (email, university_name) VALUES (?, ?)")
            .bind(email)
            .bind(university)
            .execute(&self.pool)
            .await
            .unwrap()
            .last_insert_id() as i64
    }

    /// An application; `created` and `expires` are SQL expressions (e.g. `NOW() - INTERVAL 1 DAY`).
    pub async fn application(
        &self,
        user: i64,
        service: i64,
        kind: &str,
        status: &str,
        created: &str,
        expires: &str,
    ) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO service_applications (user_id, service_id, kind, status, created_at, demo_expires_at) \
             VALUES (?, ?, ?, ?, {created}, {expires})"
        )))
        .bind(user)
        .bind(service)
        .bind(kind)
        .bind(status)
        .execute(&self.pool)
        .await
        .unwrap()
        .last_insert_id() as i64
    }
}

/// A server whose market is `url`; demo expiry runs only when a test calls it.
async fn app_with_market(
    url: &str,
    f: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> TestApp {
    let url = url.to_owned();
    TestApp::spawn_with(move |env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), url);
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
        f(env);
    })
    .await
}

async fn applications(app: &TestApp) -> reqwest::Response {
    app.get("/api/tenant/superadmin/applications")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn create_for(app: &TestApp, tenant: &str, app_id: i64, kind: &str) {
    let mut body = TestApp::create_body(tenant, app_id);
    body["application_kind"] = json!(kind);
    let resp = app.create_tenant_raw(&body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn applications_of_this_service_come_newest_first_with_their_tenants() {
    let market = Market::fresh().await;
    let keli = market.service("KELI Tutor").await;
    let other = market.service("Other Service").await;
    let u1 = market.user("prof@gwangju.ac.kr", "광주대학교").await;
    let u2 = market.user("admin@test.ac.kr", "테스트대학교").await;
    let oldest = market
        .application(
            u1,
            keli,
            "service",
            "completed",
            "NOW() - INTERVAL 3 DAY",
            "NULL",
        )
        .await;
    let demo = market
        .application(
            u2,
            keli,
            "demo",
            "approved",
            "NOW() - INTERVAL 2 DAY",
            "NOW() + INTERVAL 12 DAY",
        )
        .await;
    let newest = market
        .application(
            u2,
            keli,
            "service",
            "requested",
            "NOW() - INTERVAL 1 DAY",
            "NULL",
        )
        .await;
    let _elsewhere = market
        .application(u1, other, "service", "completed", "NOW()", "NULL")
        .await;
    let app = app_with_market(&market.url, |_| {}).await;
    create_for(&app, "univ_8", oldest, "service").await;

    let resp = applications(&app).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let apps = body["applications"].as_array().unwrap();
    let ids: Vec<i64> = apps.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![newest, demo, oldest], "{body}");

    let d = &apps[1];
    assert_eq!(d["kind"], "demo");
    assert_eq!(d["status"], "approved");
    assert_eq!(d["email"], "admin@test.ac.kr");
    assert_eq!(d["university_name"], "테스트대학교");
    assert!(d["created_at"].is_string(), "{d}");
    assert!(d["demo_expires_at"].is_string(), "{d}");
    assert!(d["tenant"].is_null(), "no tenant was created for it: {d}");
    assert!(apps[0]["demo_expires_at"].is_null());

    let o = &apps[2];
    assert_eq!(o["university_name"], "광주대학교");
    assert_eq!(
        o["tenant"],
        json!({"tenant_id": "univ_8", "status": "active"})
    );

    // The title filter is a setting: another replica selling "Other Service".
    let other_app = TestApp::spawn_on(&app.database_url, |env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), market.url.clone());
        env.insert("SERVICE_MARKET_SERVICE_TITLE".into(), "Other".into());
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
    })
    .await;
    let body: Value = applications(&other_app).await.json().await.unwrap();
    assert_eq!(body["applications"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["applications"][0]["id"], _elsewhere);
}

#[tokio::test]
async fn the_title_is_matched_literally_not_as_a_pattern() {
    let market = Market::fresh().await;
    let s = market.service("KELI Tutor").await;
    let u = market.user("a@b.ac.kr", "A").await;
    market
        .application(u, s, "service", "approved", "NOW()", "NULL")
        .await;
    // `_` and `%` would match anything if they were passed on as wildcards.
    for title in ["KELI_Tutor", "K%r"] {
        let app = app_with_market(&market.url, |env| {
            env.insert("SERVICE_MARKET_SERVICE_TITLE".into(), title.into());
        })
        .await;
        let body: Value = applications(&app).await.json().await.unwrap();
        assert_eq!(body["applications"], json!([]), "{title}: {body}");
    }
}

#[tokio::test]
async fn applications_need_the_superadmin() {
    let market = Market::fresh().await;
    let app = app_with_market(&market.url, |_| {}).await;
    let resp = app
        .get("/api/tenant/superadmin/applications")
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 401).await;
    let resp = app
        .get("/api/tenant/superadmin/applications")
        .header("X-API-Key", API_KEY)
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 401).await;
}

#[tokio::test]
async fn without_a_market_database_the_route_says_so() {
    let app = TestApp::spawn().await;
    let body = assert_json_error(applications(&app).await, 503).await;
    assert_eq!(body["code"], "market_db_not_configured");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("SERVICE_MARKET_DATABASE_URL")
    );
}

#[tokio::test]
async fn an_unreachable_market_gives_503_within_the_timeout() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = app_with_market(&format!("mysql://root@127.0.0.1:{port}/market"), |env| {
        env.insert("SERVICE_MARKET_DB_TIMEOUT_MS".into(), "2000".into());
    })
    .await;
    let started = Instant::now();
    let body = assert_json_error(applications(&app).await, 503).await;
    let took = started.elapsed();
    assert_eq!(body["code"], "market_db_unavailable", "{body}");
    assert_eq!(
        body["detail"],
        "Could not connect to the service market database within 2000 ms (is it running and reachable?)"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    // The rest of the service is unaffected.
    let resp = app.get("/api/ready").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_hanging_market_gives_503_within_the_timeout_and_nothing_else_waits() {
    // Accepts connections and never says a word (not even MySQL's greeting).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        }
    });
    let app = app_with_market(&format!("mysql://root@127.0.0.1:{port}/market"), |env| {
        env.insert("SERVICE_MARKET_DB_TIMEOUT_MS".into(), "800".into());
    })
    .await;
    app.create_tenant("univ_8", 8).await;

    let started = Instant::now();
    let hanging = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/api/tenant/superadmin/applications");
        async move {
            client
                .get(url)
                .bearer_auth(SUPERADMIN_TOKEN)
                .send()
                .await
                .unwrap()
        }
    });
    // While the market hangs, the rest of the service answers at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = Instant::now();
    let list = app
        .get("/api/tenant/superadmin/tenants")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );

    let resp = hanging.await.unwrap();
    let took = started.elapsed();
    let body = assert_json_error(resp, 503).await;
    assert_eq!(body["code"], "market_db_unavailable", "{body}");
    assert_eq!(
        body["detail"],
        "Could not connect to the service market database within 800 ms (is it running and reachable?)"
    );
    assert!(took >= Duration::from_millis(750), "took {took:?}");
    assert!(took < Duration::from_millis(2000), "took {took:?}");

    // Again: a second call is bounded just the same (no connection is left stuck).
    let started = Instant::now();
    assert_json_error(applications(&app).await, 503).await;
    assert!(started.elapsed() < Duration::from_millis(2000));
    silent.abort();
}

#[tokio::test]
async fn a_market_query_that_hangs_is_cut_at_the_timeout_and_the_next_one_works() {
    let market = Market::fresh().await;
    let s = market.service("KELI Tutor").await;
    let u = market.user("a@b.ac.kr", "A").await;
    market
        .application(u, s, "service", "approved", "NOW()", "NULL")
        .await;
    let app = app_with_market(&market.url, |env| {
        env.insert("SERVICE_MARKET_DB_TIMEOUT_MS".into(), "700".into());
    })
    .await;
    assert_eq!(applications(&app).await.status(), 200);

    // Another session holds a write lock: the market accepts the query and sits on it.
    let mut locker = MySqlConnection::connect(&market.url).await.unwrap();
    locker
        .execute("LOCK TABLES service_applications WRITE")
        .await
        .unwrap();
    let started = Instant::now();
    let body = assert_json_error(applications(&app).await, 503).await;
    let took = started.elapsed();
    assert_eq!(body["code"], "market_db_timeout", "{body}");
    assert_eq!(
        body["detail"],
        "The service market database did not answer within 700 ms"
    );
    assert!(took >= Duration::from_millis(650), "took {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");

    // Once the market answers again, so does the route (no half-read connection is reused).
    locker.execute("UNLOCK TABLES").await.unwrap();
    let resp = applications(&app).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["applications"].as_array().unwrap().len(), 1);
}

/// Demo tenants: expired (suspended), not yet expired, converted to a service in the
/// market, and one an operator already suspended.
struct DemoFixture {
    market: Market,
    app: TestApp,
}

async fn demo_fixture() -> DemoFixture {
    let market = Market::fresh().await;
    let s = market.service("KELI Tutor").await;
    let u = market.user("demo@univ.ac.kr", "데모대학교").await;
    let past = "NOW() - INTERVAL 1 HOUR";
    let expired = market
        .application(u, s, "demo", "approved", "NOW() - INTERVAL 15 DAY", past)
        .await;
    let running = market
        .application(u, s, "demo", "approved", "NOW()", "NOW() + INTERVAL 14 DAY")
        .await;
    let converted = market
        .application(
            u,
            s,
            "service",
            "completed",
            "NOW() - INTERVAL 15 DAY",
            past,
        )
        .await;
    let held = market
        .application(u, s, "demo", "approved", "NOW() - INTERVAL 15 DAY", past)
        .await;
    let app = app_with_market(&market.url, |_| {}).await;
    create_for(&app, "demo_expired", expired, "demo").await;
    create_for(&app, "demo_running", running, "demo").await;
    create_for(&app, "demo_converted", converted, "demo").await;
    create_for(&app, "demo_held", held, "demo").await;
    let resp = app
        .post("/api/tenant/superadmin/tenants/demo_held/suspend")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    DemoFixture { market, app }
}

async fn status_of(app: &TestApp, tenant: &str) -> String {
    sqlx::query_scalar("SELECT status::text FROM hltutor.tenants WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn expired_demos_get_their_tenants_suspended_once_with_history() {
    let DemoFixture { market: _m, app } = demo_fixture().await;

    let suspended = demo_expiry::run_once(&app.state.demo_expiry_job())
        .await
        .unwrap();
    let names: Vec<&str> = suspended.iter().map(|t| t.as_str()).collect();
    assert_eq!(names, vec!["demo_expired"]);
    assert_eq!(status_of(&app, "demo_expired").await, "suspended");
    assert_eq!(status_of(&app, "demo_running").await, "active");
    assert_eq!(status_of(&app, "demo_converted").await, "active");

    let row: Value = app
        .get("/api/tenant/superadmin/tenants/demo_expired")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        row["suspended_reason"]
            .as_str()
            .unwrap()
            .starts_with("Demo period expired"),
        "{row}"
    );
    let history: Value = app
        .get("/api/tenant/superadmin/tenants/demo_expired/history")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["event"], "suspended");
    assert_eq!(last["actor"], "system");

    // The tenant's users are refused at once.
    let resp = app
        .get("/api/users")
        .header("X-Tenant-ID", "demo_expired")
        .bearer_auth(app.token("demo_expired", 1, "admin"))
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 403).await;

    // A second run finds nothing more to do and writes nothing.
    assert!(
        demo_expiry::run_once(&app.state.demo_expiry_job())
            .await
            .unwrap()
            .is_empty()
    );
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hltutor.tenant_events WHERE event = 'suspended' AND actor = 'system'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn demo_expiry_runs_on_one_replica_at_a_time() {
    let DemoFixture { market, app } = demo_fixture().await;
    let replica = TestApp::spawn_on(&app.database_url, |env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), market.url.clone());
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
    })
    .await;

    // While another run holds the job's lock, a run does nothing.
    let mut tx = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key("mtpaas:demo-expiry:hltutor"))
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(
        demo_expiry::run_once(&app.state.demo_expiry_job())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(status_of(&app, "demo_expired").await, "active");
    tx.rollback().await.unwrap();

    // Both replicas at once: the tenant is suspended once, with one event.
    let (job_a, job_b) = (app.state.demo_expiry_job(), replica.state.demo_expiry_job());
    let (a, b) = tokio::join!(demo_expiry::run_once(&job_a), demo_expiry::run_once(&job_b));
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 1);
    assert_eq!(status_of(&app, "demo_expired").await, "suspended");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM hltutor.tenant_events WHERE tenant_id = 'demo_expired' AND event = 'suspended'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn the_server_runs_demo_expiry_on_its_own() {
    let market = Market::fresh().await;
    let s = market.service("KELI Tutor").await;
    let u = market.user("demo@univ.ac.kr", "데모대학교").await;
    let expired = market
        .application(
            u,
            s,
            "demo",
            "approved",
            "NOW()",
            "NOW() - INTERVAL 1 MINUTE",
        )
        .await;
    let app = TestApp::spawn_with(|env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), market.url.clone());
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "1".into());
    })
    .await;
    create_for(&app, "demo_auto", expired, "demo").await;
    let id = mtpaas::tenancy::TenantId::parse("demo_auto").unwrap();
    for _ in 0..50 {
        if app.state.directory.cached(&id).map(|s| s.as_str()) == Some("suspended") {
            assert_eq!(status_of(&app, "demo_auto").await, "suspended");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the background job never suspended demo_auto");
}

#[tokio::test]
async fn a_market_outage_does_not_stop_demo_expiry_for_good() {
    let DemoFixture { market, app } = demo_fixture().await;
    // The market's table is gone for a moment: the run fails cleanly, changes nothing.
    market
        .pool
        .execute("RENAME TABLE service_applications TO sa_away")
        .await
        .unwrap();
    let err = demo_expiry::run_once(&app.state.demo_expiry_job())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), 503);
    assert_eq!(status_of(&app, "demo_expired").await, "active");
    market
        .pool
        .execute("RENAME TABLE sa_away TO service_applications")
        .await
        .unwrap();
    assert_eq!(
        demo_expiry::run_once(&app.state.demo_expiry_job())
            .await
            .unwrap()
            .len(),
        1
    );
}
