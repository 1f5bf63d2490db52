//! `sslmode` as libpq means it, against the TLS Postgres of `scripts/pg-tls-server`
//! (started here when it is not running): a self-signed X.509 v1 certificate on :5497
//! (what Citus generates), a CA-signed one on :5498. Every connection the server
//! opens (central pool, LISTEN, tenant writes, tenant reads over `tenant_db::wire`)
//! is checked in Postgres's own `pg_stat_ssl`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtpaas::Application;
use mtpaas::config::Config;
use mtpaas::tenant_db::wire::{WireConn, WireOptions};
use serde_json::{Value, json};
use sqlx::postgres::PgSslMode;
use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::{TestApp, base_env};

const V1: u16 = 5497;
const CA: u16 = 5498;

fn certs() -> PathBuf {
    let dir = std::env::var("PG_TLS_DIR").unwrap_or_else(|_| "/var/tmp/mtpaas-pg-tls".into());
    PathBuf::from(dir).join("certs")
}

fn cert(name: &str) -> String {
    certs().join(name).display().to_string()
}

/// Starts the TLS server once per test process; `false` (with one printed line) when
/// this machine cannot run it (no initdb or openssl).
fn tls_server() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    *UP.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-tls-server");
        let out = std::process::Command::new(script)
            .arg("start")
            .output()
            .expect("scripts/pg-tls-server runs");
        let say = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => true,
            Some(2) => {
                println!("skipping the TLS tests: {}", say.trim());
                false
            }
            _ => panic!("scripts/pg-tls-server start failed: {}", say.trim()),
        }
    })
}

/// A fresh database on the TLS server at `port`; returns its URL without query.
async fn fresh_database(port: u16) -> String {
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    let mut admin = PgConnection::connect(&format!("{base}/postgres?sslmode=disable"))
        .await
        .expect("the TLS Postgres answers");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'mtpaas_tls_%'")
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
    let name = format!("mtpaas_tls_{now}_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .unwrap();
    format!("{base}/{name}")
}

fn config(database_url: &str) -> Config {
    let env = base_env(database_url);
    Config::from_source(&env).expect("test config")
}

/// `(application_name, ssl)` of the server's connections to the test's database.
async fn server_connections(app: &TestApp) -> Vec<(String, bool)> {
    let db = app
        .database_url
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let mut c = PgConnection::connect(&format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        port_of(&app.database_url)
    ))
    .await
    .unwrap();
    sqlx::query_as(
        "SELECT a.application_name, coalesce(s.ssl, false) FROM pg_stat_activity a \
         LEFT JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.datname = $1 AND a.application_name = 'mtpaas'",
    )
    .bind(db)
    .fetch_all(&mut c)
    .await
    .unwrap()
}

fn port_of(url: &str) -> u16 {
    url::Url::parse(url).unwrap().port().unwrap()
}

/// The tenant app's paths: a tenant created (central writes, its schema), its admin's
/// password set and logged in (tenant writes and reads), a user added (a write) and
/// listed (a read), a chat message posted and read.
async fn serve_a_tenant(app: &TestApp, tenant: &str) {
    let token = app.onboard(tenant, 7).await;
    app.add_user(tenant, &token, &format!("u@{tenant}.ac.kr"), "pass-word-1")
        .await;
    let resp = app
        .get("/api/users")
        .header("X-Tenant-ID", tenant)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["users"].as_array().map(Vec::len), Some(2), "{body}");
    let resp = app
        .post("/api/chat")
        .header("X-Tenant-ID", tenant)
        .bearer_auth(&token)
        .json(&json!({ "message": "hello over TLS" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = app
        .get("/api/chat")
        .header("X-Tenant-ID", tenant)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The status listener (its own connection) still follows changes.
    app.set_status_in_db(tenant, "suspended").await;
}

/// Asserts the server's reads went over `tenant_db::wire` connections and that every
/// connection it holds is (or is not) encrypted.
async fn assert_connections(app: &TestApp, encrypted: bool) {
    let reads = app
        .state
        .tenant_db
        .reads
        .as_ref()
        .expect("wire reads are on");
    assert!(reads.stats().0 >= 1, "a read connection was opened");
    let conns = server_connections(app).await;
    // The central pool, the listener, a tenant write and a tenant read connection.
    assert!(conns.len() >= 4, "{conns:?}");
    assert!(
        conns.iter().all(|(_, ssl)| *ssl == encrypted),
        "every connection {}encrypted: {conns:?}",
        if encrypted { "" } else { "un" }
    );
}

#[tokio::test]
async fn prefer_and_require_encrypt_every_connection_to_a_self_signed_v1_certificate() {
    if !tls_server() {
        return;
    }
    // No sslmode: libpq's default, prefer.
    for (query, tenant) in [("", "tls_prefer"), ("?sslmode=require", "tls_require")] {
        let url = fresh_database(V1).await + query;
        let app = TestApp::spawn_on(&url, |_| {}).await;
        serve_a_tenant(&app, tenant).await;
        assert_connections(&app, true).await;
    }
}

#[tokio::test]
async fn disable_never_encrypts() {
    if !tls_server() {
        return;
    }
    let url = fresh_database(V1).await + "?sslmode=disable";
    let app = TestApp::spawn_on(&url, |_| {}).await;
    serve_a_tenant(&app, "tls_disable").await;
    assert_connections(&app, false).await;
}

#[tokio::test]
async fn verify_full_with_the_right_root_certificate_connects() {
    if !tls_server() {
        return;
    }
    for (mode, tenant) in [("verify-full", "tls_vfull"), ("verify-ca", "tls_vca")] {
        let url =
            fresh_database(CA).await + &format!("?sslmode={mode}&sslrootcert={}", cert("ca.crt"));
        let app = TestApp::spawn_on(&url, |_| {}).await;
        serve_a_tenant(&app, tenant).await;
        assert_connections(&app, true).await;
    }
    // require with a root certificate verifies it, as libpq does: the CA's root does
    // not vouch for the self-signed v1 certificate.
    let url =
        fresh_database(V1).await + &format!("?sslmode=require&sslrootcert={}", cert("ca.crt"));
    let e = start_up_error(&url).await;
    assert!(e.contains("certificate verify failed"), "{e}");
}

/// Start-up against `url`, which must fail: its error, within seconds.
async fn start_up_error(url: &str) -> String {
    let started = Instant::now();
    let built = tokio::time::timeout(Duration::from_secs(15), Application::build(config(url)))
        .await
        .expect("start-up fails at once, it does not wait for a certificate to change");
    let e = match built {
        Ok(_) => panic!("started against {url}"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    e
}

#[tokio::test]
async fn verify_ca_with_a_wrong_or_no_root_certificate_stops_start_up_naming_the_problem() {
    if !tls_server() {
        return;
    }
    let v1 = fresh_database(V1).await;
    let ca = fresh_database(CA).await;
    for url in [
        // The v1 certificate is self-signed: no root but itself vouches for it.
        format!("{v1}?sslmode=verify-ca&sslrootcert={}", cert("ca.crt")),
        format!(
            "{ca}?sslmode=verify-ca&sslrootcert={}",
            cert("other-ca.crt")
        ),
        format!("{ca}?sslmode=verify-full&sslrootcert={}", cert("v1.crt")),
    ] {
        let e = start_up_error(&url).await;
        assert!(e.contains("sslmode=verify-"), "{e}");
        assert!(e.contains("certificate verify failed"), "{e}");
    }
    // No root certificate at all (nor libpq's default file): refused before connecting.
    let home = std::env::var("HOME").unwrap_or_default();
    if !PathBuf::from(&home).join(".postgresql/root.crt").exists() {
        let e = start_up_error(&format!("{ca}?sslmode=verify-ca")).await;
        assert!(e.contains("root certificate file"), "{e}");
        assert!(e.contains(".postgresql/root.crt"), "{e}");
    }
    // A root certificate file that is not there.
    let e = start_up_error(&format!(
        "{ca}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"
    ))
    .await;
    assert!(e.contains("\"/nonexistent/ca.crt\""), "{e}");
}

fn wire(url: &str) -> WireOptions {
    let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    WireOptions::from_config(&opts.application_name("mtpaas"), url).unwrap()
}

#[tokio::test]
async fn read_connections_retry_as_libpq_does_under_allow_and_prefer() {
    if !tls_server() {
        return;
    }
    let base = format!("127.0.0.1:{V1}/postgres");
    // mtpaas_plain is refused over TLS: prefer tries TLS, then again without.
    let o = wire(&format!("postgres://mtpaas_plain@{base}?sslmode=prefer"));
    assert!(matches!(o.ssl_mode(), PgSslMode::Prefer));
    let c = WireConn::connect(&o).await.unwrap();
    assert!(!c.is_encrypted());
    let e = WireConn::connect(&wire(&format!(
        "postgres://mtpaas_plain@{base}?sslmode=require"
    )))
    .await
    .err()
    .expect("refused over TLS");
    assert!(e.to_string().contains("pg_hba.conf"), "{e}");
    // mtpaas_scram is refused without TLS: allow tries plain, then again over TLS, where
    // it authenticates by SCRAM-SHA-256 bound to the TLS channel.
    let o = wire(&format!(
        "postgres://mtpaas_scram:scram-pass@{base}?sslmode=allow"
    ));
    let c = WireConn::connect(&o).await.unwrap();
    assert!(c.is_encrypted());
    let e = WireConn::connect(&wire(&format!(
        "postgres://mtpaas_scram:scram-pass@{base}?sslmode=disable"
    )))
    .await
    .err()
    .expect("refused without TLS");
    assert!(e.to_string().contains("pg_hba.conf"), "{e}");
    // And a wrong password over TLS is refused, not retried into a success.
    let e = WireConn::connect(&wire(&format!(
        "postgres://mtpaas_scram:wrong@{base}?sslmode=require"
    )))
    .await
    .err()
    .expect("wrong password");
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
}
