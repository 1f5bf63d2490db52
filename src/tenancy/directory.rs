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
    statuses: RwLock<Statuses>,
}

/// The statuses, and when this process last set each one itself (a count of its sets).
/// A reload reads the database, then writes what it read; if this process committed and
/// set a change of that tenant in between, what the reload read may be older, so it is
/// not written (the change's own NOTIFY brings a later reload).
#[derive(Default)]
struct Statuses {
    status: HashMap<TenantId, TenantStatus>,
    set_at: HashMap<TenantId, u64>,
    sets: u64,
}

impl Statuses {
    fn set(&mut self, id: &TenantId, status: TenantStatus) {
        self.sets += 1;
        self.status.insert(id.clone(), status);
        self.set_at.insert(id.clone(), self.sets);
    }

    /// Taken before a reload reads the database.
    fn mark(&self) -> u64 {
        self.sets
    }

    /// What a reload of one tenant read, as of `mark`; the status now held.
    fn loaded(
        &mut self,
        id: &TenantId,
        status: Option<TenantStatus>,
        mark: u64,
    ) -> Option<TenantStatus> {
        match self.set_at.get(id) {
            Some(&at) if at > mark => return self.status.get(id).copied(),
            Some(_) => {
                self.set_at.remove(id);
            }
            None => {}
        }
        match status {
            Some(s) => self.status.insert(id.clone(), s),
            None => self.status.remove(id),
        };
        status
    }

    /// What a reload of every tenant read, as of `mark`.
    fn loaded_all(&mut self, mut fresh: HashMap<TenantId, TenantStatus>, mark: u64) {
        self.set_at.retain(|_, at| *at > mark);
        for id in self.set_at.keys() {
            match self.status.get(id) {
                Some(s) => fresh.insert(id.clone(), *s),
                None => fresh.remove(id),
            };
        }
        self.status = fresh;
    }
}

impl TenantDirectory {
    pub fn new(pool: PgPool, central: &TenantId) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                tenants_table: format!("{}.tenants", central.quoted()),
                statuses: RwLock::new(Statuses::default()),
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
            .status
            .get(id)
            .copied()
    }

    /// Records a status this process just committed (its own NOTIFY will follow).
    pub fn set(&self, id: &TenantId, status: TenantStatus) {
        self.inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set(id, status);
    }

    pub fn len(&self) -> usize {
        self.inner
            .statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .status
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
        for s in map.status.values() {
            *out.entry(*s).or_insert(0) += 1;
        }
        out
    }

    pub async fn reload_one(&self, id: &TenantId) -> Result<Option<TenantStatus>, sqlx::Error> {
        let sql = format!(
            "SELECT status FROM {} WHERE tenant_id = $1",
            self.inner.tenants_table
        );
        let mark = self.mark();
        let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.inner.pool)
            .await?;
        let status = row.and_then(|(s,)| TenantStatus::parse(&s));
        Ok(self
            .inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .loaded(id, status, mark))
    }

    pub async fn reload_all(&self) -> Result<(), sqlx::Error> {
        let sql = format!("SELECT tenant_id, status FROM {}", self.inner.tenants_table);
        let mark = self.mark();
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.inner.pool)
            .await?;
        let mut fresh = HashMap::with_capacity(rows.len());
        for (id, status) in rows {
            if let (Ok(id), Some(s)) = (TenantId::parse(&id), TenantStatus::parse(&status)) {
                fresh.insert(id, s);
            }
        }
        self.inner
            .statuses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .loaded_all(fresh, mark);
        Ok(())
    }

    fn mark(&self) -> u64 {
        self.inner
            .statuses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .mark()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[test]
    fn a_reload_that_read_before_a_local_change_does_not_undo_it() {
        let t = id("univ_a");
        let mut m = Statuses::default();
        m.set(&t, TenantStatus::Active);
        // The listener starts reloading after the reinstatement's NOTIFY and reads
        // `active`; meanwhile this process deletes the tenant and sets it.
        let mark = m.mark();
        m.set(&t, TenantStatus::Deleted);
        assert_eq!(
            m.loaded(&t, Some(TenantStatus::Active), mark),
            Some(TenantStatus::Deleted)
        );
        assert_eq!(m.status.get(&t), Some(&TenantStatus::Deleted));
        // The deletion's own NOTIFY reloads after the set: what it reads is written.
        let mark = m.mark();
        assert_eq!(
            m.loaded(&t, Some(TenantStatus::Deleted), mark),
            Some(TenantStatus::Deleted)
        );
        assert!(
            m.set_at.is_empty(),
            "stamps older than a reload are dropped"
        );
        // A later change from another replica is taken as read.
        let mark = m.mark();
        assert_eq!(m.loaded(&t, None, mark), None);
        assert!(m.status.is_empty());
    }

    #[test]
    fn a_full_reload_keeps_changes_set_while_it_read() {
        let (a, b, c) = (id("univ_a"), id("univ_b"), id("univ_c"));
        let mut m = Statuses::default();
        m.set(&a, TenantStatus::Active);
        let mark = m.mark();
        m.set(&b, TenantStatus::Suspended);
        let fresh = HashMap::from([
            (a.clone(), TenantStatus::Suspended),
            (b.clone(), TenantStatus::Active),
            (c.clone(), TenantStatus::Active),
        ]);
        m.loaded_all(fresh, mark);
        assert_eq!(
            m.status.get(&a),
            Some(&TenantStatus::Suspended),
            "read after its set"
        );
        assert_eq!(
            m.status.get(&b),
            Some(&TenantStatus::Suspended),
            "set while reading"
        );
        assert_eq!(m.status.get(&c), Some(&TenantStatus::Active));
        assert_eq!(m.set_at.len(), 1);
    }
}
