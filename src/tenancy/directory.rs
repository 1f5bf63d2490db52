//! The in-memory tenant status cache every tenant-scoped request is checked against.
//!
//! Loaded from the central `tenants` table at start-up and kept current by Postgres
//! `LISTEN/NOTIFY`: every status change commits a `pg_notify(CHANNEL, tenant_id)` in the
//! same transaction, and every replica's listener reloads that tenant's row, so a
//! suspension takes effect everywhere within milliseconds. When the listener loses its
//! connection it reloads everything on reconnect, so no change is missed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::tenant_id::{TenantId, quote_ident};

/// The channel status changes are announced on.
pub const CHANNEL: &str = "mtpaas_tenants";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
    Deleted,
    Purged,
}

impl TenantStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "deleted" => Self::Deleted,
            "purged" => Self::Purged,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
            Self::Purged => "purged",
        }
    }
}

#[derive(Clone)]
pub struct TenantDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    tenants_table: String,
    statuses: RwLock<HashMap<TenantId, TenantStatus>>,
}

impl TenantDirectory {
    pub fn new(pool: PgPool, central: &TenantId) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                tenants_table: format!("{}.tenants", central.quoted()),
                statuses: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The status of a tenant: from memory, or from the database on a miss (a tenant
    /// created a moment ago on another replica). `None`: no such tenant.
    pub async fn status(&self, id: &TenantId) -> Result<Option<TenantStatus>, sqlx::Error> {
        if let Some(s) = self.cached(id) {
            return Ok(Some(s));
        }
        self.reload_one(id).await
    }

    pub fn cached(&self, id: &TenantId) -> Option<TenantStatus> {
        self.inner
            .statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// Records a status this process just committed (its own NOTIFY will follow).
    pub fn set(&self, id: &TenantId, status: TenantStatus) {
        self.inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), status);
    }

    pub fn len(&self) -> usize {
        self.inner
            .statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts of tenants by status, for metrics.
    pub fn counts(&self) -> HashMap<TenantStatus, usize> {
        let map = self
            .inner
            .statuses
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut out = HashMap::new();
        for s in map.values() {
            *out.entry(*s).or_insert(0) += 1;
        }
        out
    }

    pub async fn reload_one(&self, id: &TenantId) -> Result<Option<TenantStatus>, sqlx::Error> {
        let sql = format!(
            "SELECT status FROM {} WHERE tenant_id = $1",
            self.inner.tenants_table
        );
        let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.inner.pool)
            .await?;
        let status = row.and_then(|(s,)| TenantStatus::parse(&s));
        let mut map = self
            .inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match status {
            Some(s) => map.insert(id.clone(), s),
            None => map.remove(id),
        };
        Ok(status)
    }

    pub async fn reload_all(&self) -> Result<(), sqlx::Error> {
        let sql = format!("SELECT tenant_id, status FROM {}", self.inner.tenants_table);
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.inner.pool)
            .await?;
        let mut fresh = HashMap::with_capacity(rows.len());
        for (id, status) in rows {
            if let (Ok(id), Some(s)) = (TenantId::parse(&id), TenantStatus::parse(&status)) {
                fresh.insert(id, s);
            }
        }
        *self
            .inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Follows status changes until the process ends. Reconnects with a pause after
    /// any failure, reloading everything each time it (re)connects. Its connection is
    /// opened with the central pool's options (`sslmode`, certificates: `crate::db`).
    pub async fn listen(self) {
        loop {
            match self.listen_once().await {
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "tenant status listener lost; reconnecting"),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn listen_once(&self) -> Result<(), sqlx::Error> {
        // A pool of one of its own, as `PgListener::connect` makes from a URL, but with
        // the central pool's options: it reconnects, and takes none of the pool's.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with((*self.inner.pool.connect_options()).clone())
            .await?;
        let mut listener = PgListener::connect_with(&own).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        self.reload_all().await?;
        loop {
            // `try_recv` returns None when the connection was lost.
            match listener.try_recv().await? {
                Some(n) => {
                    if let Ok(id) = TenantId::parse(n.payload()) {
                        self.reload_one(&id).await?;
                    }
                }
                None => {
                    self.reload_all().await?;
                }
            }
        }
    }
}

/// The statement that announces a change of `tenant_id`'s row ($1); run it inside the
/// transaction that changes the row, so it is delivered exactly when that commits.
pub const NOTIFY_SQL: &str = "SELECT pg_notify('mtpaas_tenants', $1)";

/// `"central".tenants`, for SQL built elsewhere.
pub fn tenants_table(central: &TenantId) -> String {
    format!("{}.{}", central.quoted(), quote_ident("tenants"))
}
