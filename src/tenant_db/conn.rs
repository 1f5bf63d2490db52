//! The only ways a handler reaches tenant data: a prepared read ([`read`]) or a
//! transaction ([`TenantTx`]), each with `search_path` set to `"<tenant>", public` for
//! that message or transaction alone.
//!
//! # Why no tenant `search_path` can leak to the next user of a connection
//!
//! The path is set with `SET LOCAL`, which Postgres scopes to the transaction: it ends
//! with `COMMIT` or `ROLLBACK`, never later. Tenant connections are held by
//! `tenant_db::pools::TenantConns` (a pool's connections are handled the same way); a
//! connection goes to its next user only in one of these ways:
//! 1. A read ([`read`], [`read_wire`]) finished: its one message was one implicit
//!    transaction, over when Postgres answered. A read dropped mid-message (the request
//!    went away) is still one transaction on the server; its connection goes on only
//!    after the rest of the reply is read — by a task started on drop for a read
//!    connection ([`read_tenant`]; closed if that fails); a sqlx connection is closed
//!    by its next user instead (its reads run on a task of their own, so this is rare).
//! 2. [`TenantTx::commit`] / [`TenantTx::rollback`] finished: the transaction is over, so
//!    the path is back to the connection's default.
//! 3. The `TenantTx` is dropped with its transaction possibly open — a handler error, a
//!    panic, or the request future dropped mid-query because the client went away or a
//!    timeout fired. `Drop` keeps the connection and spawns a task that first drains
//!    whatever the cancelled query left on the wire, then sends `ROLLBACK`, and lets the
//!    connection go only if that succeeded. If it fails or takes more than a few seconds
//!    the connection is closed instead, and Postgres discards the session with its
//!    transaction. Nothing else holds the connection meanwhile.
//! 4. The task runtime is gone (shutdown): the connection is closed.
//!
//! A connection that failed (I/O or protocol error, not an SQL error) is closed, never
//! handed on. sqlx's own `Transaction` is not used because a future dropped while its
//! `BEGIN` is still in flight returns the connection inside an open transaction; here
//! the guard is armed before the first byte is sent.
//!
//! # Reads: one message, one round trip, a cached plan, nothing left behind
//!
//! Reads normally go over connections of their own in the extended protocol
//! ([`read_wire`], `tenant_db::wire`): `set_config('search_path', …, true)` and the read
//! prepared for the tenant, pipelined under one `Sync`, so one implicit transaction, the
//! path local to it; a statement is prepared in the same message as its first use (no
//! extra round trip), rows come in binary. The guarantees below hold the same way.
//! With `DB_WIRE_READS=false`, reads use sqlx:
//!
//! A read ([`read`]) is sent as one simple-protocol message:
//! `SET LOCAL search_path TO "<tenant>", public; EXECUTE "<read>:<tenant>"(<ints>)`.
//! Postgres runs the statements of one such message as one implicit transaction, and
//! `SET LOCAL` lasts until that transaction ends — at the end of the message, whatever
//! happens to the request future. The connection never holds a tenant path between
//! messages, so there is nothing to undo and nothing to check when it is handed on (no
//! ping, no `RESET`). The cost is one round trip per request: setting the path and
//! reading in separate round trips, or resetting it afterwards, would cost more, and a
//! path left set between requests is exactly the leak this module exists to prevent.
//!
//! The statement is prepared on the server once per connection and tenant (`PREPARE`,
//! sent in the same message the first time: a miss costs one more round trip), always
//! under that tenant's path, so Postgres reuses its plan instead of parsing and planning
//! each request: a plan cached by Postgres is kept only while `search_path` is the one it
//! was made under. Arguments are integers inlined into the message (never text a client
//! sent); identifiers come quoted from `TenantId`.
//!
//! # Writes: round trips
//!
//! A tenant-scoped write costs exactly two round trips on top of its own queries:
//! `BEGIN; SET LOCAL search_path TO "<tenant>", public` sent as one simple-protocol
//! message (one round trip for both statements; with the user's role read in the same
//! message), and `COMMIT` (or `ROLLBACK`). Taking the connection adds none. The
//! tenant's status comes from the in-memory directory, not the database. Its
//! statements take bound parameters (prepared), which is why they cannot share the
//! read's single message. A session-level `SET` would need a `RESET` round trip on
//! release instead of the `COMMIT`, with a window in which a cancelled request leaves it
//! set.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Either, Executor, PgConnection, PgPool, Postgres};

use crate::tenant_db::pools::{TenantConn, TenantConns};
use crate::tenant_db::prepared::PreparedRead;
use crate::tenant_db::wire::{WireConn, WireRow};
use crate::tenant_id::TenantId;

/// How long a dropped transaction may take to roll back before its connection is closed.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A transaction on one pooled connection with the tenant's `search_path`.
pub struct TenantTx {
    conn: Option<Held>,
    /// True from before `BEGIN` is sent until `COMMIT`/`ROLLBACK` has been answered.
    open: bool,
    tenant: TenantId,
}

impl TenantTx {
    /// Acquires a connection and starts the tenant's transaction (one round trip).
    pub async fn begin(pool: &PgPool, tenant: &TenantId) -> Result<Self, sqlx::Error> {
        Self::begin_held(Held::Pool(pool.acquire().await?), tenant.clone()).await
    }

    /// [`Self::begin`] on a tenant connection, in the tenant it was acquired for.
    pub async fn begin_on(conn: TenantConn) -> Result<Self, sqlx::Error> {
        let tenant = conn.tenant().clone();
        Self::begin_held(Held::Tenant(conn), tenant).await
    }

    async fn begin_held(conn: Held, tenant: TenantId) -> Result<Self, sqlx::Error> {
        let mut tx = TenantTx {
            conn: Some(conn),
            open: true, // armed before anything is sent: see the module docs
            tenant,
        };
        let sql = format!(
            "BEGIN; SET LOCAL search_path TO {}, public",
            tx.tenant.quoted()
        );
        // Simple protocol: both statements in one message, one round trip.
        tx.conn_mut()
            .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await?;
        Ok(tx)
    }

    /// Starts the tenant's transaction and, in the same round trip, reads the role of
    /// user `user_id` (`None`: no such user, e.g. deleted since the token was issued).
    /// The id is an integer, so inlining it into the simple-protocol message is safe.
    pub async fn begin_as_user(
        conn: TenantConn,
        user_id: i64,
    ) -> Result<(Self, Option<String>), sqlx::Error> {
        let tenant = conn.tenant().clone();
        let mut tx = TenantTx {
            conn: Some(Held::Tenant(conn)),
            open: true,
            tenant,
        };
        let sql = format!(
            "BEGIN; SET LOCAL search_path TO {}, public; \
             SELECT role FROM user_mst WHERE id = {user_id}",
            tx.tenant.quoted()
        );
        let row = tx
            .conn_mut()
            .fetch_optional(sqlx::raw_sql(sqlx::AssertSqlSafe(sql)))
            .await?;
        let role = match row {
            Some(r) => Some(sqlx::Row::try_get::<String, _>(&r, 0)?),
            None => None,
        };
        Ok((tx, role))
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.conn_mut().execute(sqlx::raw_sql("COMMIT")).await?;
        self.open = false;
        Ok(())
    }

    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        self.conn_mut().execute(sqlx::raw_sql("ROLLBACK")).await?;
        self.open = false;
        Ok(())
    }

    fn conn_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

/// The connection under a [`TenantTx`]: a pool's or a tenant connection.
enum Held {
    Pool(PoolConnection<Postgres>),
    Tenant(TenantConn),
}

impl Held {
    /// Closes the connection instead of handing it to the next user.
    fn discard(&mut self) {
        match self {
            Held::Pool(c) => c.close_on_drop(),
            Held::Tenant(c) => c.discard(),
        }
    }
}

impl Deref for Held {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        match self {
            Held::Pool(c) => c,
            Held::Tenant(c) => c,
        }
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Held::Pool(c) => c,
            Held::Tenant(c) => c,
        }
    }
}

/// Runs `read` in the schema of the tenant `conn` was acquired for, with integer
/// arguments (`None` is NULL), in one round trip when this connection has prepared it
/// for this tenant before (see the module docs). A connection that failed (anything
/// but an SQL error) is closed.
pub async fn read(
    conn: &mut TenantConn,
    read: &PreparedRead,
    args: &[Option<i64>],
) -> Result<Vec<PgRow>, sqlx::Error> {
    // Dropped before its end, the read leaves replies on the wire that sqlx would hand
    // to the next user's query: the connection is closed instead (`TenantConns`).
    conn.begin_message();
    let result = read_on(conn, read, args).await;
    conn.end_message();
    match &result {
        Ok(_) => conn.served(),
        Err(e) if connection_failed(e) => conn.discard(),
        Err(_) => {} // an SQL error: the connection is fine
    }
    result
}

/// [`read`] over a read connection (`tenant_db::wire`): the same guarantees in one
/// extended-protocol message. A connection that failed is closed.
pub async fn read_wire(
    conn: &mut TenantConn<WireConn>,
    read: &PreparedRead,
    args: &[Option<i64>],
) -> Result<Vec<WireRow>, sqlx::Error> {
    let tenant = conn.tenant().clone();
    let result = conn.read(&tenant, read, args).await;
    match &result {
        Ok(_) => conn.served(),
        Err(e) if connection_failed(e) => conn.discard(),
        Err(_) => {}
    }
    result
}

/// Takes a read connection for `tenant` and runs `read` on it ([`read_wire`]). When
/// this future is dropped mid-read (the request went away, a timeout fired), the
/// connection is not handed on half-read: a task reads the rest of the reply
/// ([`WireConn::finish`]) and then gives it back, or closes it if that fails or takes
/// more than a few seconds. (`auth::user` also runs each read on a task of its own.)
pub async fn read_tenant(
    conns: &TenantConns<WireConn>,
    tenant: &TenantId,
    read: &PreparedRead,
    args: &[Option<i64>],
) -> Result<Vec<WireRow>, sqlx::Error> {
    let mut guard = FinishOnDrop(Some(conns.acquire(tenant).await?));
    let conn = guard.0.as_mut().expect("set above");
    let result = read_wire(conn, read, args).await;
    drop(guard.0.take()); // done: back at once
    result
}

/// Holds a read connection; dropped with a read in flight, finishes it (see
/// [`read_tenant`]).
struct FinishOnDrop(Option<TenantConn<WireConn>>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        if conn.is_usable() {
            return; // nothing in flight: back as is
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let finished = tokio::time::timeout(ROLLBACK_TIMEOUT, conn.finish())
                        .await
                        .is_ok_and(|r| r.is_ok());
                    if !finished {
                        conn.discard();
                    }
                });
            }
            Err(_) => conn.discard(),
        }
    }
}

/// The connection cannot be used again: I/O or protocol trouble, or Postgres ending
/// the session (e.g. `pg_terminate_backend` or a shutdown).
fn connection_failed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => crate::error::session_ended(d.as_ref()),
        _ => true,
    }
}

async fn read_on(
    conn: &mut TenantConn,
    read: &PreparedRead,
    args: &[Option<i64>],
) -> Result<Vec<PgRow>, sqlx::Error> {
    debug_assert!(
        !read.name.is_empty()
            && read.name.len() <= 12
            && read
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
    );
    debug_assert!(!args.is_empty());
    let tenant = conn.tenant().clone();
    let statement = format!("\"{}:{}\"", read.name, tenant.as_str());
    let args = args
        .iter()
        .map(|a| a.map_or_else(|| "NULL".to_owned(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let path = format!("SET LOCAL search_path TO {}, public", tenant.quoted());
    let execute = format!("EXECUTE {statement}({args})");
    let first = rows_of(conn, format!("{path}; {execute}")).await;
    // Not prepared on this connection for this tenant yet (26000), or "cached plan must
    // not change result type" after a migration changed a column (0A000).
    let deallocate = match &first {
        Err(e) if has_sqlstate(e, "26000") => String::new(),
        Err(e) if has_sqlstate(e, "0A000") => format!("DEALLOCATE {statement}; "),
        _ => return first,
    };
    let types = read
        .params
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ");
    let prepare = format!("PREPARE {statement}({types}) AS {}", read.sql);
    rows_of(conn, format!("{deallocate}{path}; {prepare}; {execute}")).await
}

/// The rows of a simple-protocol message (only its last statement returns any).
async fn rows_of(conn: &mut PgConnection, message: String) -> Result<Vec<PgRow>, sqlx::Error> {
    let mut replies = conn.fetch_many(sqlx::raw_sql(sqlx::AssertSqlSafe(message)));
    let mut rows = Vec::new();
    while let Some(reply) = replies.try_next().await? {
        if let Either::Right(row) = reply {
            rows.push(row);
        }
    }
    Ok(rows)
}

fn has_sqlstate(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some(code))
}

impl Deref for TenantTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn_mut()
    }
}

impl Drop for TenantTx {
    fn drop(&mut self) {
        if !self.open {
            return; // finished cleanly: the pool gets a connection with no tenant state
        }
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    // `execute` first drains any reply the cancelled query left pending.
                    let rolled_back = tokio::time::timeout(
                        ROLLBACK_TIMEOUT,
                        conn.execute(sqlx::raw_sql("ROLLBACK")),
                    )
                    .await
                    .is_ok_and(|r| r.is_ok());
                    if !rolled_back {
                        conn.discard();
                    }
                    // Dropping `conn` here returns it (rolled back) or closes it.
                });
            }
            Err(_) => conn.discard(),
        }
    }
}
