//! No tenant's `search_path` ever reaches another request, cancelled or not.

use std::time::Duration;

use futures::StreamExt;
use mtpaas::tenancy::TenantId;
use mtpaas::tenant_db::TenantTx;
use postgres_types::Type;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::TestApp;

/// What a pooled connection looks like to its next user.
async fn assert_clean(conn: &mut sqlx::PgConnection) {
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(path, "\"$user\", public");
    // Not inside a transaction left open by someone else: SAVEPOINT only works in one.
    let in_tx = sqlx::raw_sql("SAVEPOINT probe")
        .execute(&mut *conn)
        .await
        .is_ok();
    assert!(!in_tx, "connection returned inside an open transaction");
    let err = sqlx::query("SELECT count(*) FROM user_mst")
        .execute(&mut *conn)
        .await;
    assert!(err.is_err(), "a tenant table is visible without a tenant");
}

#[tokio::test]
async fn a_transaction_dropped_mid_query_never_leaks_its_search_path() {
    let app = TestApp::spawn().await;
    app.create_tenant("leak_a", 1).await;
    let tenant = TenantId::parse("leak_a").unwrap();
    // One connection: whatever the next user gets is the connection the dropped one had.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&app.database_url)
        .await
        .unwrap();
    for round in 0..20 {
        let mut tx = TenantTx::begin(&pool, &tenant).await.unwrap();
        // Cancel a query while the server is still running it.
        let slow = sqlx::query("SELECT pg_sleep(0.2), count(*) FROM user_mst").execute(&mut *tx);
        let cut = Duration::from_millis(5 + (round % 5) * 10);
        assert!(tokio::time::timeout(cut, slow).await.is_err());
        drop(tx);
        let mut conn = pool.acquire().await.unwrap();
        assert_clean(&mut conn).await;
    }
    // Dropped while BEGIN itself may still be in flight.
    for _ in 0..50 {
        let _ =
            tokio::time::timeout(Duration::from_micros(50), TenantTx::begin(&pool, &tenant)).await;
        let mut conn = pool.acquire().await.unwrap();
        assert_clean(&mut conn).await;
    }
    // A one-message read dropped while the server runs it (first while it is being
    // prepared, then prepared), one that fails, and plain ones, on one tenant
    // connection (`TenantConns`, as the server holds them): its next user is checked.
    use mtpaas::tenant_db::PreparedRead;
    use mtpaas::tenant_db::TenantConns;
    use mtpaas::tenant_db::conn::read;
    use mtpaas::tenant_db::pools::TenantConnsConfig;
    let conns = TenantConns::new(
        app.database_url.parse().unwrap(),
        TenantConnsConfig {
            connections: 1,
            acquire_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(600),
            borrow_limit: 200,
        },
    );
    const SLOW: PreparedRead = PreparedRead {
        name: "slow",
        params: &[Type::INT8],
        sql: "SELECT pg_sleep(0.2), count(*) FROM user_mst WHERE id = $1",
    };
    const BROKEN: PreparedRead = PreparedRead {
        name: "broken",
        params: &[Type::INT8],
        sql: "SELECT 1 / (id - $1) FROM user_mst",
    };
    const EMAILS: PreparedRead = PreparedRead {
        name: "emails",
        params: &[Type::INT8],
        sql: "SELECT email FROM user_mst WHERE id >= $1 ORDER BY id",
    };
    for round in 0..20 {
        let mut conn = conns.acquire(&tenant).await.unwrap();
        let slow = read(&mut conn, &SLOW, &[Some(1)]);
        let cut = Duration::from_millis(2 + (round % 5) * 10);
        assert!(tokio::time::timeout(cut, slow).await.is_err());
        drop(conn);
        assert_clean(&mut conns.acquire(&tenant).await.unwrap()).await;
    }
    for _ in 0..2 {
        let mut conn = conns.acquire(&tenant).await.unwrap();
        assert!(read(&mut conn, &BROKEN, &[Some(1)]).await.is_err());
        drop(conn);
        assert_clean(&mut conns.acquire(&tenant).await.unwrap()).await;
    }
    for _ in 0..3 {
        let mut conn = conns.acquire(&tenant).await.unwrap();
        let rows = read(&mut conn, &EMAILS, &[Some(1)]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            sqlx::Row::get::<String, _>(&rows[0], 0),
            "admin@leak_a.ac.kr"
        );
        assert!(
            read(&mut conn, &EMAILS, &[Some(2)])
                .await
                .unwrap()
                .is_empty()
        );
        drop(conn);
        assert_clean(&mut conns.acquire(&tenant).await.unwrap()).await;
    }
    // A migration that changes a column's type under a prepared read: Postgres refuses
    // the cached plan ("must not change result type"); the read prepares it again.
    sqlx::query("ALTER TABLE leak_a.user_mst ALTER COLUMN email TYPE text")
        .execute(&app.db)
        .await
        .unwrap();
    let rows = read(
        &mut conns.acquire(&tenant).await.unwrap(),
        &EMAILS,
        &[Some(1)],
    )
    .await
    .unwrap();
    assert_eq!(
        sqlx::Row::get::<String, _>(&rows[0], 0),
        "admin@leak_a.ac.kr"
    );
    // The same read for another tenant on the same connection is its own statement.
    app.create_tenant("leak_b", 2).await;
    let other = TenantId::parse("leak_b").unwrap();
    for _ in 0..3 {
        for (t, email) in [
            (&tenant, "admin@leak_a.ac.kr"),
            (&other, "admin@leak_b.ac.kr"),
        ] {
            let rows = read(&mut conns.acquire(t).await.unwrap(), &EMAILS, &[Some(1)])
                .await
                .unwrap();
            assert_eq!(sqlx::Row::get::<String, _>(&rows[0], 0), email);
        }
        assert_clean(&mut conns.acquire(&tenant).await.unwrap()).await;
    }
    // And a transaction that ends normally leaves nothing either.
    let mut tx = TenantTx::begin(&pool, &tenant).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM user_mst")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    assert_clean(&mut pool.acquire().await.unwrap()).await;
}

#[tokio::test]
async fn hundreds_of_concurrent_and_cancelled_requests_only_ever_see_their_own_rows() {
    let app = TestApp::spawn_with(|env| {
        env.insert("DB_MAX_CONNECTIONS".into(), "3".into());
    })
    .await;
    let tenants: Vec<String> = (0..24).map(|i| format!("iso_{i:02}")).collect();
    for (i, t) in tenants.iter().enumerate() {
        app.create_tenant(t, i as i64 + 1).await;
        // Same ids in every tenant; emails say whose row it is.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {t}.user_mst (email, name) SELECT 'u' || g || '@{t}.kr', '{t}' FROM generate_series(1, 15) g"
        )))
        .execute(&app.db)
        .await
        .unwrap();
    }
    let requests = 800;
    let results = futures::stream::iter(0..requests)
        .map(|i| {
            let t = tenants[i % tenants.len()].clone();
            let token = app.token(&t, 1, "admin");
            // Every third request gives up after 1–15 ms: mid-query on a busy pool.
            let timeout = if i % 3 == 0 {
                Duration::from_millis(1 + (i as u64 % 15))
            } else {
                Duration::from_secs(20)
            };
            let req = app
                .get("/api/users")
                .header("X-Tenant-ID", &t)
                .bearer_auth(token)
                .timeout(timeout);
            async move {
                match req.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.json::<Value>().await {
                            Ok(body) => Some((t, status, body)),
                            Err(_) => None, // cut while reading
                        }
                    }
                    Err(_) => None,
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let completed: Vec<_> = results.into_iter().flatten().collect();
    assert!(
        completed.len() > requests / 2,
        "only {} completed",
        completed.len()
    );
    let mut rows_checked = 0;
    for (t, status, body) in &completed {
        assert_eq!(*status, 200, "{t}: {body}");
        assert_eq!(body["tenant_id"], t.as_str());
        let users = body["users"].as_array().unwrap();
        assert_eq!(users.len(), 16, "{t}: {body}");
        for u in users {
            let email = u["email"].as_str().unwrap();
            assert!(
                email.ends_with(&format!("@{t}.kr")) || email == format!("admin@{t}.ac.kr"),
                "{t} saw {email}"
            );
            rows_checked += 1;
        }
    }
    assert!(rows_checked > 0);
    // Every connection of the server's pool is clean now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = app.state.db.acquire().await.unwrap();
        assert_clean(&mut c).await;
        held.push(c);
    }
}

#[tokio::test]
async fn tenant_connections_are_replaced_after_their_lifetime_and_when_they_fail() {
    use mtpaas::tenant_db::PreparedRead;
    use mtpaas::tenant_db::conn::read;
    use mtpaas::tenant_db::pools::TenantConnsConfig;
    use mtpaas::tenant_db::{TenantConn, TenantConns};
    const EMAILS: PreparedRead = PreparedRead {
        name: "emails",
        params: &[Type::INT8],
        sql: "SELECT email FROM user_mst WHERE id >= $1 ORDER BY id",
    };
    async fn backend_pid(c: &mut TenantConn) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut **c)
            .await
            .unwrap()
    }
    let app = TestApp::spawn().await;
    app.create_tenant("life_a", 1).await;
    let tenant = TenantId::parse("life_a").unwrap();
    let conns = |max_lifetime| {
        TenantConns::new(
            app.database_url.parse().unwrap(),
            TenantConnsConfig {
                connections: 1,
                acquire_timeout: Duration::from_secs(5),
                max_lifetime,
                borrow_limit: 200,
            },
        )
    };

    // Past its lifetime a connection is closed and a new one opened, ready to read.
    let short = conns(Duration::ZERO);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut c = short.acquire(&tenant).await.unwrap();
        seen.push(backend_pid(&mut c).await);
        let rows = read(&mut c, &EMAILS, &[Some(1)]).await.unwrap();
        assert_eq!(rows.len(), 1);
    }
    seen.dedup();
    assert_eq!(
        seen.len(),
        3,
        "each acquire past the lifetime opens a new connection"
    );
    assert_eq!(short.stats().0, 1, "the old ones are closed");

    // A connection whose backend went away is closed after the failed read; the next
    // user gets a new one and reads.
    let long = conns(Duration::from_secs(600));
    let mut c = long.acquire(&tenant).await.unwrap();
    let pid = backend_pid(&mut c).await;
    drop(c);
    let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = long.acquire(&tenant).await.unwrap();
    assert!(read(&mut c, &EMAILS, &[Some(1)]).await.is_err());
    drop(c);
    assert_eq!(long.stats().0, 0, "the failed connection is closed");
    let mut c = long.acquire(&tenant).await.unwrap();
    assert_ne!(backend_pid(&mut c).await, pid);
    let rows = read(&mut c, &EMAILS, &[Some(1)]).await.unwrap();
    assert_eq!(
        sqlx::Row::get::<String, _>(&rows[0], 0),
        "admin@life_a.ac.kr"
    );
}

/// The read connections (`tenant_db::wire`): the path is set for the read's own message
/// and gone after it, whatever happens to the read.
#[tokio::test]
async fn wire_reads_set_the_tenant_path_for_their_message_only() {
    use mtpaas::tenant_db::PreparedRead;
    use mtpaas::tenant_db::conn::read_wire;

    use mtpaas::tenant_db::TenantConn;
    use mtpaas::tenant_db::wire::WireConn;
    const EMAILS: PreparedRead = PreparedRead {
        name: "emails",
        params: &[Type::INT8],
        sql: "SELECT email, created_at FROM user_mst WHERE id >= $1 ORDER BY id",
    };
    const SLOW: PreparedRead = PreparedRead {
        name: "slow",
        params: &[Type::INT8],
        sql: "SELECT pg_sleep(0.2)::text, count(*) FROM user_mst WHERE id = $1",
    };
    const BROKEN: PreparedRead = PreparedRead {
        name: "broken",
        params: &[Type::INT8, Type::INT4],
        sql: "SELECT 1 / (id - $1) FROM user_mst LIMIT $2",
    };
    const PID: PreparedRead = PreparedRead {
        name: "pid",
        params: &[Type::INT8],
        sql: "SELECT pg_backend_pid()::bigint + $1",
    };
    async fn emails(c: &mut TenantConn<WireConn>) -> Vec<String> {
        let rows = read_wire(c, &EMAILS, &[Some(1)]).await.unwrap();
        let mut out = Vec::new();
        for r in &rows {
            let _: chrono::DateTime<chrono::Utc> = r.get(1).unwrap();
            out.push(r.get::<String>(0).unwrap());
        }
        out
    }
    async fn assert_clean(c: &mut TenantConn<WireConn>) {
        assert_eq!(c.current_search_path().await.unwrap(), "\"$user\", public");
    }

    let app = TestApp::spawn().await;
    app.create_tenant("wire_a", 1).await;
    app.create_tenant("wire_b", 2).await;
    let (a, b) = (
        TenantId::parse("wire_a").unwrap(),
        TenantId::parse("wire_b").unwrap(),
    );
    let conns = wire_conns(&app);

    // Two tenants alternating on one connection: each read sees its own tenant only,
    // and the connection holds no path between reads.
    for _ in 0..3 {
        for (t, email) in [(&a, "admin@wire_a.ac.kr"), (&b, "admin@wire_b.ac.kr")] {
            let mut c = conns.acquire(t).await.unwrap();
            assert_eq!(emails(&mut c).await, vec![email.to_owned()]);
            assert_clean(&mut c).await;
        }
    }
    // Arguments: a NULL and a value the statement rejects (an SQL error): the
    // connection stays open and clean.
    let mut c = conns.acquire(&a).await.unwrap();
    assert!(
        read_wire(&mut c, &EMAILS, &[None])
            .await
            .unwrap()
            .is_empty()
    );
    let err = read_wire(&mut c, &BROKEN, &[Some(1), Some(5)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, sqlx::Error::Database(d) if d.code().as_deref() == Some("22012")),
        "{err:?}"
    );
    let err = read_wire(&mut c, &BROKEN, &[Some(0), Some(i64::MAX)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, sqlx::Error::Database(d) if d.code().as_deref() == Some("22003")),
        "{err:?}"
    );
    assert_clean(&mut c).await;
    assert_eq!(conns.stats().0, 1);
    drop(c);
    // A tenant without a schema: the prepare fails, nothing is kept.
    let ghost = TenantId::parse("wire_ghost").unwrap();
    let mut c = conns.acquire(&ghost).await.unwrap();
    let err = read_wire(&mut c, &EMAILS, &[Some(1)]).await.unwrap_err();
    assert!(
        matches!(&err, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01")),
        "{err:?}"
    );
    assert_clean(&mut c).await;
    drop(c);

    // Reads cut short while Postgres runs them (first while being prepared): the
    // connection is closed, and its next user gets a new, clean one.
    for round in 0..6 {
        let mut c = conns.acquire(&a).await.unwrap();
        let cut = Duration::from_millis(2 + (round % 3) * 20);
        let slow = read_wire(&mut c, &SLOW, &[Some(1)]);
        assert!(tokio::time::timeout(cut, slow).await.is_err());
        drop(c);
        let mut c = conns.acquire(&a).await.unwrap();
        assert_clean(&mut c).await;
        assert_eq!(emails(&mut c).await, vec!["admin@wire_a.ac.kr".to_owned()]);
    }

    // A migration changes a column's type under a prepared read: prepared again.
    let mut c = conns.acquire(&a).await.unwrap();
    assert_eq!(emails(&mut c).await.len(), 1);
    sqlx::raw_sql("ALTER TABLE wire_a.user_mst ALTER COLUMN email TYPE text")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(emails(&mut c).await, vec!["admin@wire_a.ac.kr".to_owned()]);
    drop(c);

    // Postgres ends the session: the failed connection is closed, the next one reads.
    let mut c = conns.acquire(&a).await.unwrap();
    let pid = read_wire(&mut c, &PID, &[Some(0)]).await.unwrap()[0]
        .get::<i64>(0)
        .unwrap();
    drop(c);
    let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1::int)")
        .bind(pid)
        .fetch_one(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = conns.acquire(&a).await.unwrap();
    assert!(read_wire(&mut c, &PID, &[Some(0)]).await.is_err());
    drop(c);
    assert_eq!(conns.stats().0, 0, "the failed connection is closed");
    let mut c = conns.acquire(&a).await.unwrap();
    let pid2 = read_wire(&mut c, &PID, &[Some(0)]).await.unwrap()[0]
        .get::<i64>(0)
        .unwrap();
    assert_ne!(pid, pid2);
    // A column read as the wrong type is an error, not a panic.
    assert!(
        read_wire(&mut c, &EMAILS, &[Some(1)]).await.unwrap()[0]
            .get::<i64>(0)
            .is_err()
    );
}

/// With `DB_WIRE_READS=false` reads go through sqlx on the tenant connections: the
/// same answers.
#[tokio::test]
async fn reads_through_sqlx_give_the_same_answers() {
    for wire in ["true", "false"] {
        let app = TestApp::spawn_with(|env| {
            env.insert("DB_WIRE_READS".into(), wire.into());
        })
        .await;
        app.create_tenant("both_a", 1).await;
        sqlx::raw_sql(
            "INSERT INTO both_a.chat_his (user_id, message, reply) VALUES (1, 'q1', 'r1'), (1, 'q2', 'r2')",
        )
        .execute(&app.db)
        .await
        .unwrap();
        let token = app.token("both_a", 1, "admin");
        let get = |path: &'static str| {
            app.get(path)
                .header("X-Tenant-ID", "both_a")
                .bearer_auth(&token)
                .send()
        };
        let users: Value = get("/api/users").await.unwrap().json().await.unwrap();
        assert_eq!(
            users["users"][0]["email"], "admin@both_a.ac.kr",
            "{wire}: {users}"
        );
        assert!(
            users["users"][0]["created_at"]
                .as_str()
                .unwrap()
                .contains('T')
        );
        let me: Value = get("/api/auth/me").await.unwrap().json().await.unwrap();
        assert_eq!(me["id"], 1, "{wire}: {me}");
        let chat: Value = get("/api/chat").await.unwrap().json().await.unwrap();
        let messages = chat["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2, "{wire}: {chat}");
        assert_eq!(messages[0]["message"], "q1");
        assert_eq!(messages[1]["reply"], "r2");
        let metrics = app
            .get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            metrics.contains("pool=\"tenant_reads\""),
            wire == "true",
            "{wire}"
        );
        // A user deleted since the token was issued: 401 on every read.
        sqlx::raw_sql("DELETE FROM both_a.user_mst WHERE id = 1")
            .execute(&app.db)
            .await
            .unwrap();
        for path in ["/api/users", "/api/auth/me", "/api/chat"] {
            assert_eq!(get(path).await.unwrap().status(), 401, "{wire} {path}");
        }
    }
}

/// A request dropped while its connection is being opened does not abort the open:
/// the connection is kept for the next user (an aborted open costs Postgres a backend
/// start for nothing, and under cancellations the next user would start over).
#[tokio::test]
async fn an_open_is_finished_when_its_request_goes_away() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::parse("open_a").unwrap();
    for _ in 0..5 {
        let conns = wire_conns(&app);
        let cut = tokio::time::timeout(Duration::from_micros(300), conns.acquire(&tenant)).await;
        assert!(cut.is_err(), "opened within 300 µs");
        let mut waited = 0;
        while conns.stats().0 == 0 && waited < 50 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        assert_eq!(conns.stats().0, 1, "the open was aborted");
        let mut c = conns.acquire(&tenant).await.unwrap();
        assert_eq!(c.current_search_path().await.unwrap(), "\"$user\", public");
    }
}

/// A read dropped while Postgres runs it (the request went away) is finished on a task:
/// the same connection, clean, goes to the next user; nothing is reopened.
#[tokio::test]
async fn a_dropped_read_is_finished_and_its_connection_kept() {
    use mtpaas::tenant_db::PreparedRead;
    use mtpaas::tenant_db::conn::read_tenant;

    const SLOW: PreparedRead = PreparedRead {
        name: "slow",
        params: &[Type::INT8],
        sql: "SELECT pg_backend_pid()::bigint, count(*) FROM user_mst, pg_sleep(0.2) WHERE id = $1",
    };
    const EMAILS: PreparedRead = PreparedRead {
        name: "emails",
        params: &[Type::INT8],
        sql: "SELECT email, pg_backend_pid()::bigint FROM user_mst WHERE id >= $1 ORDER BY id",
    };
    let app = TestApp::spawn().await;
    app.create_tenant("fin_a", 1).await;
    app.create_tenant("fin_b", 2).await;
    let (a, b) = (
        TenantId::parse("fin_a").unwrap(),
        TenantId::parse("fin_b").unwrap(),
    );
    let conns = wire_conns(&app);
    let first = read_tenant(&conns, &a, &EMAILS, &[Some(1)]).await.unwrap();
    let pid: i64 = first[0].get(1).unwrap();
    for round in 0..6u64 {
        // Prepared (after the first round) and not: cut while Postgres sleeps.
        let cut = Duration::from_millis(20 + round * 15);
        let slow = read_tenant(&conns, &a, &SLOW, &[Some(1)]);
        assert!(tokio::time::timeout(cut, slow).await.is_err());
        // The next user waits for the finishing task, then gets the same backend with
        // no path set and its own tenant's rows.
        let rows = read_tenant(&conns, &b, &EMAILS, &[Some(1)]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<String>(0).unwrap(), "admin@fin_b.ac.kr");
        assert_eq!(
            rows[0].get::<i64>(1).unwrap(),
            pid,
            "round {round}: reopened"
        );
        let mut c = conns.acquire(&a).await.unwrap();
        assert_eq!(c.current_search_path().await.unwrap(), "\"$user\", public");
    }
    assert_eq!(conns.stats().0, 1);
}

/// One read connection (`tenant_db::wire`) to the app's database, as the server holds them.
fn wire_conns(app: &TestApp) -> mtpaas::tenant_db::TenantConns<mtpaas::tenant_db::wire::WireConn> {
    use mtpaas::tenant_db::pools::TenantConnsConfig;
    use mtpaas::tenant_db::wire::WireOptions;
    let opts =
        WireOptions::from_config(&app.database_url.parse().unwrap(), &app.database_url).unwrap();
    mtpaas::tenant_db::TenantConns::new(
        opts,
        TenantConnsConfig {
            connections: 1,
            acquire_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(600),
            borrow_limit: 200,
        },
    )
}
