//! The only ways a handler reaches tenant data: a prepared read ([`read`]) or a
//! transaction ([`TenantTx`]), each with `search_path` set to `"<tenant>", public` for
//! that message or transaction alone.
//!
//! # Why no tenant `search_path` can leak to the next pool user
//!
//! The path is set with `SET LOCAL`, which Postgres scopes to the transaction: it ends
//! with `COMMIT` or `ROLLBACK`, never later. A connection goes back to the pool only in
//! one of three ways:
//! 1. [`TenantTx::commit`] / [`TenantTx::rollback`] finished: the transaction is over, so
//!    the path is back to the connection's default.
//! 2. The `TenantTx` is dropped with its transaction possibly open — a handler error, a
//!    panic, or the request future dropped mid-query because the client went away or a
//!    timeout fired. `Drop` takes the connection out of the pool's hands and spawns a
//!    task that first drains whatever the cancelled query left on the wire, then sends
//!    `ROLLBACK`, and returns the connection only if that succeeded. If it fails or takes
//!    more than a few seconds the connection is closed instead, and Postgres discards the
//!    session with its transaction. Nothing else holds the connection meanwhile.
//! 3. The task runtime is gone (shutdown): the connection is closed.
//!
//! sqlx's own `Transaction` is not used because a future dropped while its `BEGIN` is
//! still in flight returns the connection to the pool inside an open transaction; here
//! the guard is armed before the first byte is sent.
//!
//! # Reads: one message, one round trip, a cached plan, nothing left behind
//!
//! A read ([`read`]) is sent as one simple-protocol message:
//! `SET LOCAL search_path TO "<tenant>", public; EXECUTE "<read>:<tenant>"(<ints>)`.
//! Postgres runs the statements of one such message as one implicit transaction, and
//! `SET LOCAL` lasts until that transaction ends — at the end of the message, whatever
//! happens to the request future. The connection never holds a tenant path between
//! messages, so there is nothing to undo: a request cancelled at any point returns a
//! connection that sqlx drains of the pending replies on its next use, and that next use
//! cannot see the tenant. The cost is one round trip per request, the least any request
//! that reads the database can cost.
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
//! message), and `COMMIT` (or `ROLLBACK`). Acquiring from the pool adds none
//! (`test_before_acquire` is off; broken connections surface as errors and are replaced).
//! The tenant's status comes from the in-memory directory, not the database. Its
//! statements take bound parameters (prepared), which is why they cannot share the
//! read's single message. A session-level `SET` would need a `RESET` round trip on
//! release instead of the `COMMIT`, with a window in which a cancelled request leaves it
//! set.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Either, Executor, PgConnection, PgPool, Postgres};

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenancy::directory::TenantStatus;
use crate::tenancy::id::TenantId;
use crate::tenancy::resolve::ResolvedTenant;

/// How long a dropped transaction may take to roll back before its connection is closed.
const ROLLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A transaction on one pooled connection with the tenant's `search_path`.
pub struct TenantTx {
    conn: Option<PoolConnection<Postgres>>,
    /// True from before `BEGIN` is sent until `COMMIT`/`ROLLBACK` has been answered.
    open: bool,
    tenant: TenantId,
}

impl TenantTx {
    /// Acquires a connection and starts the tenant's transaction (one round trip).
    pub async fn begin(pool: &PgPool, tenant: &TenantId) -> Result<Self, sqlx::Error> {
        Self::begin_on(pool.acquire().await?, tenant).await
    }

    /// [`Self::begin`] on a connection already acquired (e.g. from `TenantPools`).
    pub async fn begin_on(
        conn: PoolConnection<Postgres>,
        tenant: &TenantId,
    ) -> Result<Self, sqlx::Error> {
        let mut tx = TenantTx {
            conn: Some(conn),
            open: true, // armed before anything is sent: see the module docs
            tenant: tenant.clone(),
        };
        let sql = format!(
            "BEGIN; SET LOCAL search_path TO {}, public",
            tenant.quoted()
        );
        // Simple protocol: both statements in one message, one round trip.
        tx.conn_mut().execute(sqlx::raw_sql(&sql)).await?;
        Ok(tx)
    }

    /// Starts the tenant's transaction and, in the same round trip, reads the role of
    /// user `user_id` (`None`: no such user, e.g. deleted since the token was issued).
    /// The id is an integer, so inlining it into the simple-protocol message is safe.
    pub async fn begin_as_user(
        conn: PoolConnection<Postgres>,
        tenant: &TenantId,
        user_id: i64,
    ) -> Result<(Self, Option<String>), sqlx::Error> {
        let mut tx = TenantTx {
            conn: Some(conn),
            open: true,
            tenant: tenant.clone(),
        };
        let sql = format!(
            "BEGIN; SET LOCAL search_path TO {}, public; \
             SELECT role FROM user_mst WHERE id = {user_id}",
            tenant.quoted()
        );
        let row = tx.conn_mut().fetch_optional(sqlx::raw_sql(&sql)).await?;
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

/// A read-only statement in a tenant's schema, prepared on each connection once per
/// tenant ([`read`]).
pub struct PreparedRead {
    /// `[a-z_]{1,12}`: the server-side statement is `"<name>:<tenant>"` (at most 63 bytes).
    pub name: &'static str,
    /// The parameters' types, e.g. `"bigint, integer"` (at least one).
    pub params: &'static str,
    /// The statement: unqualified table names, parameters `$1`…
    pub sql: &'static str,
}

/// Runs `read` in `tenant`'s schema with integer arguments (`None` is NULL), in one
/// round trip when this connection has prepared it for this tenant before (see the
/// module docs).
pub async fn read(
    mut conn: PoolConnection<Postgres>,
    tenant: &TenantId,
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
    let statement = format!("\"{}:{}\"", read.name, tenant.as_str());
    let args = args
        .iter()
        .map(|a| a.map_or_else(|| "NULL".to_owned(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let path = format!("SET LOCAL search_path TO {}, public", tenant.quoted());
    let execute = format!("EXECUTE {statement}({args})");
    let first = rows_of(&mut conn, &format!("{path}; {execute}")).await;
    // Not prepared on this connection for this tenant yet (26000), or "cached plan must
    // not change result type" after a migration changed a column (0A000).
    let deallocate = match &first {
        Err(e) if has_sqlstate(e, "26000") => String::new(),
        Err(e) if has_sqlstate(e, "0A000") => format!("DEALLOCATE {statement}; "),
        _ => return first,
    };
    let prepare = format!("PREPARE {statement}({}) AS {}", read.params, read.sql);
    rows_of(
        &mut conn,
        &format!("{deallocate}{path}; {prepare}; {execute}"),
    )
    .await
}

/// The rows of a simple-protocol message (only its last statement returns any).
async fn rows_of(conn: &mut PgConnection, message: &str) -> Result<Vec<PgRow>, sqlx::Error> {
    let mut replies = conn.fetch_many(sqlx::raw_sql(message));
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
                        conn.close_on_drop();
                    }
                    // Dropping `conn` here returns it (rolled back) or closes it.
                });
            }
            Err(_) => conn.close_on_drop(),
        }
    }
}

/// The request's tenant, checked to exist and be active (from the in-memory directory).
#[derive(Debug, Clone)]
pub struct ActiveTenant(pub TenantId);

impl FromRequestParts<AppState> for ActiveTenant {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let resolved = parts
            .extensions
            .get::<ResolvedTenant>()
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("tenant resolution layer missing")))?;
        let Some(id) = resolved.tenant else {
            return Err(Error::bad_request(
                "tenant_required",
                "No tenant: send the X-Tenant-ID header",
            ));
        };
        check_status(state, &id).await?;
        Ok(ActiveTenant(id))
    }
}

/// Refuses a tenant that is unknown (404), suspended (403) or deleted (410).
pub async fn check_status(state: &AppState, id: &TenantId) -> Result<()> {
    match state.directory.status(id).await? {
        Some(TenantStatus::Active) => Ok(()),
        Some(TenantStatus::Suspended) => Err(Error::forbidden(
            "tenant_suspended",
            format!("Tenant {id} is suspended"),
        )),
        Some(TenantStatus::Deleted | TenantStatus::Purged) => Err(Error::Gone {
            code: "tenant_deleted",
            detail: format!("Tenant {id} has been deleted"),
        }),
        None => Err(Error::not_found(
            "tenant_not_found",
            format!("Tenant {id} not found"),
        )),
    }
}

/// Extractor: an active tenant and its open transaction. Handlers finish it with
/// `db.commit().await?`; dropping it rolls back.
pub struct TenantDb(pub TenantTx);

impl FromRequestParts<AppState> for TenantDb {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let ActiveTenant(id) = ActiveTenant::from_request_parts(parts, state).await?;
        Ok(TenantDb(TenantTx::begin(&state.db, &id).await?))
    }
}

impl Deref for TenantDb {
    type Target = TenantTx;
    fn deref(&self) -> &TenantTx {
        &self.0
    }
}

impl DerefMut for TenantDb {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.0
    }
}

impl TenantDb {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }
}
