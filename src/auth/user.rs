//! `TenantUser`: a signed-in user of the request's tenant.
//!
//! The extractor checks, without touching the database: the tenant exists and is active
//! (404/403/410, from the in-memory directory); a token is present as
//! `Authorization: Bearer` or the `access_token` cookie (401); it verifies (401); it was
//! issued in this tenant (403). The last check — the user still exists in this tenant's
//! `user_mst` (401) — rides on the request's first round trip: [`TenantUser::read_as`]
//! (each read filters on the user) or [`TenantUser::begin`] (the message that opens a
//! write transaction), so authentication adds no round trip.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use postgres_types::Type;
use sqlx::FromRow;
use sqlx::postgres::PgRow;

use crate::auth::jwt::{Claims, JwtKeys};
use crate::error::{Error, Result};
use crate::tenancy::resolve::cookie_value;
use crate::tenancy::{ActiveTenant, TenantDirectory};
use crate::tenant_db::conn::{self, TenantTx};
use crate::tenant_db::wire::{FromWireRow, WireConn};
use crate::tenant_db::{PreparedRead, TenantConnections, TenantConns};
use crate::tenant_id::TenantId;

/// The cookie a login sets.
pub const TOKEN_COOKIE: &str = "access_token";

pub struct TenantUser {
    pub tenant: TenantId,
    pub user_id: i64,
    pub claims: Claims,
    conns: TenantConns,
    reads: Option<TenantConns<WireConn>>,
}

/// A row type of a tenant read: mapped from a `tenant_db::wire` row, or from sqlx's when
/// reads go through sqlx (`DB_WIRE_READS=false`).
pub trait ReadRow: for<'r> FromRow<'r, PgRow> + FromWireRow + Send + 'static {}
impl<T: for<'r> FromRow<'r, PgRow> + FromWireRow + Send + 'static> ReadRow for T {}

/// Declares a read's row type: the struct, `FromRow` for the sqlx path, and its
/// `FromWireRow`, which reads the columns in the order of the fields.
macro_rules! read_row {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_attr:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(sqlx::FromRow)]
        $vis struct $name {
            $($(#[$field_attr])* $field_vis $field: $ty),*
        }

        impl $crate::tenant_db::wire::FromWireRow for $name {
            fn from_wire_row(
                row: &$crate::tenant_db::wire::WireRow,
            ) -> Result<Self, sqlx::Error> {
                let mut next = 0;
                let mut column = || {
                    next += 1;
                    next - 1
                };
                Ok(Self {
                    $($field: row.get(column())?),*
                })
            }
        }
    };
}
pub(crate) use read_row;

read_row! {
    /// Only whether a row came back ([`ME`] for [`TenantUser::ensure_exists`]).
    struct UserId {
        #[allow(dead_code)]
        id: i64,
    }
}

/// A signed-in user's open write transaction in their tenant.
pub struct UserTx {
    pub user_id: i64,
    /// The role as stored now, not as when the token was issued.
    pub role: String,
    pub db: TenantTx,
}

impl UserTx {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

fn user_gone() -> Error {
    Error::unauthorized("user_not_found", "The user of this token no longer exists")
}

/// The signed-in user's own row: `GET /api/auth/me`, and the check behind an empty read.
pub const ME: PreparedRead = PreparedRead {
    name: "me",
    params: &[Type::INT8],
    sql: "SELECT id, email, name, role, created_at FROM user_mst WHERE id = $1",
};

impl TenantUser {
    /// Runs `read` in the user's tenant with `$1` = the user's id and `more` after it,
    /// each row mapped to `T`: one round trip (see `tenant_db::conn`).
    ///
    /// A read must return no rows when the user no longer exists (filter on `$1`, e.g.
    /// `WHERE user_id = $1` under a foreign key, or `EXISTS (… WHERE id = $1)`). An empty
    /// answer is then told apart by reading [`ME`]: gone → 401 `user_not_found`.
    pub async fn read_as<T: ReadRow>(
        &self,
        read: &'static PreparedRead,
        more: &[Option<i64>],
    ) -> Result<Vec<T>> {
        let rows: Vec<T> = self.read_unchecked_as(read, more).await?;
        if rows.is_empty() {
            self.ensure_exists().await?;
        }
        Ok(rows)
    }

    /// Runs `read` like [`Self::read_as`] but without the check that the user still
    /// exists: the caller checks, e.g. by finding the user among the rows, and
    /// otherwise calls [`Self::ensure_exists`].
    ///
    /// The read goes over a read connection (`tenant_db::wire`), or through sqlx when
    /// there are none, on a task of its own so that it runs to its end (a few
    /// milliseconds) even when the request is dropped meanwhile: the connection goes back
    /// between messages, never half sent or half read (were the task itself dropped
    /// mid-read, `conn::read_tenant` finishes the read on drop). Reads in the request's
    /// own task measured worse in full benchmark runs (p99 1.38x and 1.69x the baseline
    /// against 0.91x: BENCHMARKS.md).
    pub async fn read_unchecked_as<T: ReadRow>(
        &self,
        read: &'static PreparedRead,
        more: &[Option<i64>],
    ) -> Result<Vec<T>> {
        let mut args = Vec::with_capacity(1 + more.len());
        args.push(Some(self.user_id));
        args.extend_from_slice(more);
        let tenant = self.tenant.clone();
        let task = match self.reads.clone() {
            Some(reads) => tokio::spawn(async move {
                let rows = conn::read_tenant(&reads, &tenant, read, &args).await?;
                rows.iter().map(T::from_wire_row).collect::<Result<_, _>>()
            }),
            None => {
                let conns = self.conns.clone();
                tokio::spawn(async move {
                    let mut conn = conns.acquire(&tenant).await?;
                    let rows = conn::read(&mut conn, read, &args).await?;
                    rows.iter().map(T::from_row).collect::<Result<_, _>>()
                })
            }
        };
        let rows = task
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("tenant read task failed: {e}")))??;
        Ok(rows)
    }

    /// 401 `user_not_found` unless the user still exists (one round trip).
    pub async fn ensure_exists(&self) -> Result<()> {
        let me: Vec<UserId> = self.read_unchecked_as(&ME, &[]).await?;
        if me.is_empty() {
            return Err(user_gone());
        }
        Ok(())
    }

    /// Opens the tenant's transaction for a write, reading the user's current role in
    /// the same round trip.
    pub async fn begin(self) -> Result<UserTx> {
        let (db, role) =
            TenantTx::begin_as_user(self.conns.acquire(&self.tenant).await?, self.user_id).await?;
        let role = role.ok_or_else(user_gone)?;
        Ok(UserTx {
            user_id: self.user_id,
            role,
            db,
        })
    }
}

/// The bearer token or the session cookie of a request.
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    cookie_value(&parts.headers, TOKEN_COOKIE)
}

impl<S> FromRequestParts<S> for TenantUser
where
    S: Send + Sync,
    TenantDirectory: FromRef<S>,
    TenantConnections: FromRef<S>,
    Arc<JwtKeys>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let ActiveTenant(tenant) = ActiveTenant::from_request_parts(parts, state).await?;
        let token = request_token(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::unauthorized("not_authenticated", "Not authenticated"))?;
        let claims: Claims = Arc::<JwtKeys>::from_ref(state)
            .verify(&token)
            .ok_or_else(|| Error::unauthorized("invalid_token", "Invalid or expired token"))?;
        if claims.tenant != tenant.as_str() {
            return Err(Error::forbidden(
                "tenant_mismatch",
                "This token belongs to another tenant",
            ));
        }
        let user_id = claims
            .user_id()
            .ok_or_else(|| Error::unauthorized("invalid_token", "Invalid or expired token"))?;
        let TenantConnections { writes, reads } = TenantConnections::from_ref(state);
        Ok(TenantUser {
            conns: writes,
            reads,
            tenant,
            user_id,
            claims,
        })
    }
}
