//! A tenant's status changes: suspend, reinstate, delete, purge. One function,
//! [`change_status`], changes the row, writes the history event and announces the
//! change (`pg_notify`) in the caller's transaction, so every replica's directory
//! follows exactly what was committed. Every change goes through it: the market's
//! deliveries (`market::lifecycle`), the superadmin API, the CLI, demo expiry and the
//! retention purge.
//!
//! Allowed transitions (anything else is a 409 `invalid_transition`):
//!
//! | from \ to  | active | suspended | deleted | purged |
//! |------------|--------|-----------|---------|--------|
//! | active     | no-op  | yes       | yes     | no     |
//! | suspended  | yes    | no-op     | yes     | no     |
//! | deleted    | yes    | no        | no-op   | yes    |
//! | purged     | no     | no        | no      | no-op  |
//!
//! A soft-deleted tenant keeps its schema until purged, so an operator may bring it
//! back (deleted → active); a suspension of a deleted tenant would hide the deletion
//! and is refused. A purged tenant has no schema left: nothing brings it back. A change
//! to the status the tenant already has changes nothing and writes no event, so a
//! retried call is harmless.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Acquire, FromRow, PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::tenancy::directory::{CHANNEL, TenantStatus, tenants_table};
use crate::tenant_id::TenantId;

/// The longest reason the registry's `*_reason` columns hold (`VARCHAR(255)`).
pub const MAX_REASON_CHARS: usize = 255;

/// A row of the central `tenants` table, as operators see it.
// `Time` is how its `TIMESTAMP` columns are read: as instants for the API
// (`TENANT_COLUMNS` casts them), or as written, `NaiveDateTime`, for the CLI
// (`cli::tenant`). The API's schema shows the instants.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
#[schema(bound = "")]
pub struct TenantRow<Time = DateTime<Utc>> {
    pub tenant_id: String,
    pub tenant_name: String,
    pub admin_email: Option<String>,
    pub admin_name: Option<String>,
    pub university_name: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    pub application_id: Option<i32>,
    pub application_kind: Option<String>,
    pub status: String,
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub created_at: Option<Time>,
    #[schema(value_type = DateTime<Utc>)]
    pub updated_at: Time,
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub suspended_at: Option<Time>,
    pub suspended_reason: Option<String>,
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub deleted_at: Option<Time>,
    pub deleted_reason: Option<String>,
}

/// The columns of [`TenantRow`], for `SELECT`/`RETURNING`. The registry's timestamps are
/// `TIMESTAMP` written with `NOW()`: read back in the session's time zone, as written.
pub const TENANT_COLUMNS: &str = "tenant_id, tenant_name, admin_email, admin_name, \
    university_name, contact, description, application_id, application_kind, status, \
    created_at::timestamptz AS created_at, updated_at::timestamptz AS updated_at, \
    suspended_at::timestamptz AS suspended_at, suspended_reason, \
    deleted_at::timestamptz AS deleted_at, deleted_reason";

/// What a status change did.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The row after the change.
    pub tenant: TenantRow,
    pub previous: TenantStatus,
    pub current: TenantStatus,
}

impl StatusChange {
    pub fn changed(&self) -> bool {
        self.previous != self.current
    }
}

/// The history event a change to `status` writes.
pub fn event_name(status: TenantStatus) -> &'static str {
    match status {
        TenantStatus::Active => "reinstated",
        TenantStatus::Suspended => "suspended",
        TenantStatus::Deleted => "deleted",
        TenantStatus::Purged => "purged",
    }
}

/// Whether `from` may become `to` (see the module table); `from == to` is a no-op.
pub fn transition_allowed(from: TenantStatus, to: TenantStatus) -> bool {
    use TenantStatus::*;
    matches!(
        (from, to),
        (Active, Suspended)
            | (Active, Deleted)
            | (Suspended, Active)
            | (Suspended, Deleted)
            | (Deleted, Active)
            | (Deleted, Purged)
    ) || from == to
}

/// Reads one tenant's row (`None`: no such tenant).
pub async fn get(
    conn: &mut PgConnection,
    central: &TenantId,
    tenant: &TenantId,
) -> Result<Option<TenantRow>> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM {} WHERE tenant_id = $1",
        tenants_table(central)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_optional(conn)
        .await?)
}

/// Who asks for a status change, and why.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// Written as the history event's actor: `superadmin`, `market`, `system`, `cli:…`.
    pub actor: &'a str,
    /// Kept in the registry's `suspended_reason` / `deleted_reason` (its first 255
    /// characters), and the event's detail unless `detail` is given.
    pub reason: Option<&'a str>,
    /// The event's detail when it says more than the reason (the market's names the
    /// delivery and the application).
    pub detail: Option<&'a str>,
}

impl<'a> Cause<'a> {
    pub fn new(actor: &'a str, reason: Option<&'a str>) -> Self {
        Self {
            actor,
            reason,
            detail: None,
        }
    }
}

/// Changes a tenant's status in its own transaction and returns the row after it.
///
/// The caller updates its own process's directory (`state.directory.set`) after this
/// returns; other replicas follow the committed `pg_notify`.
pub async fn set_status(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
    new_status: TenantStatus,
    cause: Cause<'_>,
) -> Result<TenantRow> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let change = change_status(&mut tx, central, tenant, new_status, cause).await?;
    tx.commit().await?;
    Ok(change.tenant)
}

/// Changes a tenant's status inside the caller's transaction: locks the row, checks the
/// transition, updates the row, writes the history event and queues the notification
/// (delivered when the caller commits). Unknown tenant → 404, refused transition → 409.
pub async fn change_status(
    tx: &mut PgConnection,
    central: &TenantId,
    tenant: &TenantId,
    new_status: TenantStatus,
    cause: Cause<'_>,
) -> Result<StatusChange> {
    let Cause { actor, reason, .. } = cause;
    let table = tenants_table(central);
    let current: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status FROM {table} WHERE tenant_id = $1 FOR UPDATE"
    )))
    .bind(tenant.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((current,)) = current else {
        return Err(Error::not_found(
            "tenant_not_found",
            format!("Tenant {tenant} not found"),
        ));
    };
    let previous = TenantStatus::parse(&current).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "tenant {tenant} has unknown status {current:?}"
        ))
    })?;
    if !transition_allowed(previous, new_status) {
        return Err(Error::conflict(
            "invalid_transition",
            format!(
                "Tenant {tenant} is {}; it cannot become {}",
                previous.as_str(),
                new_status.as_str()
            ),
        ));
    }
    if previous == new_status {
        let row = get(tx, central, tenant).await?.ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("tenant {tenant} vanished under its lock"))
        })?;
        return Ok(StatusChange {
            tenant: row,
            previous,
            current: new_status,
        });
    }

    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let column_reason: Option<String> = reason.map(|r| r.chars().take(MAX_REASON_CHARS).collect());
    let detail = match (previous, new_status, reason) {
        (TenantStatus::Deleted, TenantStatus::Active, Some(r)) => {
            format!("restored from deleted: {r}")
        }
        (TenantStatus::Deleted, TenantStatus::Active, None) => "restored from deleted".to_owned(),
        (_, _, r) => r.unwrap_or_default().to_owned(),
    };
    let detail = cause.detail.map_or(detail, str::to_owned);
    let events = format!("{}.tenant_events", central.quoted());
    // Suspending stamps suspended_*, deleting stamps deleted_*; back to active clears
    // both (the history keeps them), so the registry never shows a stale suspension.
    let sql = format!(
        "WITH updated AS ( \
             UPDATE {table} SET status = $2, updated_at = NOW(), \
               suspended_at = CASE $2 WHEN 'suspended' THEN NOW() WHEN 'active' THEN NULL ELSE suspended_at END, \
               suspended_reason = CASE $2 WHEN 'suspended' THEN $3 WHEN 'active' THEN NULL ELSE suspended_reason END, \
               deleted_at = CASE $2 WHEN 'deleted' THEN NOW() WHEN 'active' THEN NULL ELSE deleted_at END, \
               deleted_reason = CASE $2 WHEN 'deleted' THEN $3 WHEN 'active' THEN NULL ELSE deleted_reason END \
             WHERE tenant_id = $1 \
             RETURNING {TENANT_COLUMNS} \
         ), event AS ( \
             INSERT INTO {events} (tenant_id, event, actor, detail) VALUES ($1, $4, $5, $6) \
         ) \
         SELECT updated.* FROM updated CROSS JOIN pg_notify('{CHANNEL}', $1)"
    );
    let row: TenantRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(new_status.as_str())
        .bind(column_reason)
        .bind(event_name(new_status))
        .bind(actor)
        .bind(&detail)
        .fetch_one(&mut *tx)
        .await?;
    Ok(StatusChange {
        tenant: row,
        previous,
        current: new_status,
    })
}

/// Writes one history event per tenant (`details[i]` for `tenants[i]`) and announces
/// each tenant (`pg_notify`), in the caller's transaction: for what changes a tenant
/// besides its status (the market's kind changes).
pub async fn record_events(
    tx: &mut PgConnection,
    central: &TenantId,
    tenants: &[String],
    event: &str,
    actor: &str,
    details: &[String],
) -> Result<()> {
    if tenants.is_empty() {
        return Ok(());
    }
    let events = format!("{}.tenant_events", central.quoted());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH ev AS ( \
             INSERT INTO {events} (tenant_id, event, actor, detail) \
             SELECT t, $2, $3, d FROM unnest($1::text[], $4::text[]) AS u(t, d) \
         ) \
         SELECT pg_notify('{CHANNEL}', t) FROM unnest($1::text[]) AS t"
    )))
    .bind(tenants)
    .bind(event)
    .bind(actor)
    .bind(details)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use TenantStatus::*;

    #[test]
    fn transitions_follow_the_table() {
        for s in [Active, Suspended, Deleted, Purged] {
            assert!(transition_allowed(s, s), "{s:?} → itself is a no-op");
        }
        assert!(transition_allowed(Active, Suspended));
        assert!(transition_allowed(Suspended, Active));
        assert!(transition_allowed(Deleted, Active));
        assert!(transition_allowed(Deleted, Purged));
        assert!(!transition_allowed(Deleted, Suspended));
        assert!(!transition_allowed(Active, Purged));
        assert!(!transition_allowed(Suspended, Purged));
        for to in [Active, Suspended, Deleted] {
            assert!(!transition_allowed(Purged, to));
        }
    }

    #[test]
    fn events_are_named_after_the_new_status() {
        assert_eq!(event_name(Suspended), "suspended");
        assert_eq!(event_name(Active), "reinstated");
        assert_eq!(event_name(Deleted), "deleted");
    }
}
