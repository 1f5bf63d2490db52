//! Tenant-scoped connections: `DB_TENANT_CONNECTIONS` connections held by mtpaas itself
//! (not a sqlx pool), each tenant with a home connection chosen by a hash of its id.
//!
//! Why a home connection: each Postgres backend caches the catalog entries (relations,
//! indexes, types) of every schema it has touched, and keeps the reads prepared on it
//! for each tenant (`tenancy::conn::read`). A backend that meets a schema for the first
//! time pays catalog lookups and a `PREPARE` before it can answer. With one shared pool
//! and thousands of tenants every connection meets every schema: caches miss often and
//! grow to the size of the whole database on each backend. With a home connection per
//! tenant, each backend meets its own share of the schemas.
//!
//! Why borrowing: with only home connections, a request waits for its tenant's
//! connection while others are idle, which costs tail latency when a few tenants are
//! busy. So a request whose home connection is busy takes an idle connection that has
//! served its tenant before, or, failing that, an idle one that has served fewer than
//! `DB_CONN_TENANTS` tenants so far. With a few hundred tenants every connection ends up
//! serving every tenant (a shared pool); with thousands, connections fill up with their
//! own tenants and borrowing stops at those already served, so each backend's caches
//! stay bounded by its share plus `DB_CONN_TENANTS`. Only when no idle connection may
//! take the request does it wait, for its home connection.
//!
//! The same routing holds two kinds of connection ([`Open`]): sqlx's, for write
//! transactions, and `tenancy::wire`'s, for reads; a server has one set of each.
//!
//! Why not a sqlx pool: a pool cannot pick a connection by what it has served, and
//! sqlx pings every connection it takes back (one more round trip per request). A
//! connection here goes back by dropping its guard: a read is one complete message
//! (`tenancy::conn::read`) and a write transaction is finished or rolled back before
//! its guard is dropped (`tenancy::conn::TenantTx`), so there is nothing to check.
//! A connection that failed (not an SQL error: I/O, protocol) is closed and the next
//! user opens a new one; connections older than `DB_MAX_LIFETIME_SECS` are replaced,
//! which also resets their caches.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::tenancy::TenantId;
use crate::tenancy::wire::{WireConn, WireOptions};

/// A connection [`TenantConns`] can hold: sqlx's, for transactions, or a
/// [`WireConn`], for reads.
pub trait Open: Sized + Send + 'static {
    type Options: Send + Sync + 'static;
    fn open(opts: &Self::Options) -> impl Future<Output = Result<Self, sqlx::Error>> + Send;
    /// False when the connection must be closed before anyone uses it.
    fn is_usable(&self) -> bool {
        true
    }
}

impl Open for PgConnection {
    type Options = PgConnectOptions;
    fn open(opts: &PgConnectOptions) -> impl Future<Output = Result<Self, sqlx::Error>> + Send {
        PgConnection::connect_with(opts)
    }
}

impl Open for WireConn {
    type Options = WireOptions;
    fn open(opts: &WireOptions) -> impl Future<Output = Result<Self, sqlx::Error>> + Send {
        WireConn::connect(opts)
    }
    fn is_usable(&self) -> bool {
        WireConn::is_usable(self)
    }
}

/// The tenant connections of one server.
pub struct TenantConns<C: Open = PgConnection> {
    inner: Arc<Inner<C>>,
}

impl<C: Open> Clone for TenantConns<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<C: Open> {
    slots: Box<[Arc<Mutex<Slot<C>>>]>,
    opts: C::Options,
    acquire_timeout: Duration,
    max_lifetime: Duration,
    /// A connection takes other tenants' requests only while it has served fewer.
    borrow_limit: usize,
    /// Connections open now (for `/metrics`).
    open: AtomicUsize,
}

struct Slot<C> {
    /// This connection's place: the home of the tenants with `slot_of(t) == index`.
    index: usize,
    conn: Option<C>,
    opened: Instant,
    /// Tenants this connection has served since it was opened.
    served: HashSet<TenantId>,
    /// How many of them have another home.
    borrowed: usize,
}

impl<C> Slot<C> {
    fn reset(&mut self) {
        self.served.clear();
        self.borrowed = 0;
    }
}

/// Settings of [`TenantConns::new`].
pub struct TenantConnsConfig {
    pub connections: usize,
    pub acquire_timeout: Duration,
    pub max_lifetime: Duration,
    pub borrow_limit: usize,
}

impl<C: Open> TenantConns<C> {
    /// Connections open lazily, on first use.
    pub fn new(opts: C::Options, config: TenantConnsConfig) -> Self {
        let n = config.connections.max(1);
        let slots = (0..n)
            .map(|index| {
                Arc::new(Mutex::new(Slot {
                    index,
                    conn: None,
                    opened: Instant::now(),
                    served: HashSet::new(),
                    borrowed: 0,
                }))
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                slots,
                opts,
                acquire_timeout: config.acquire_timeout,
                max_lifetime: config.max_lifetime,
                borrow_limit: config.borrow_limit,
                open: AtomicUsize::new(0),
            }),
        }
    }

    /// A connection for `tenant`: its home connection or one it may borrow (module
    /// docs), opened if need be. `PoolTimedOut` after `DB_ACQUIRE_TIMEOUT_MS`.
    pub async fn acquire(&self, tenant: &TenantId) -> Result<TenantConn<C>, sqlx::Error> {
        let inner = &self.inner;
        let n = inner.slots.len();
        let home = slot_of(tenant.as_str(), n);
        let deadline = tokio::time::Instant::now() + inner.acquire_timeout;
        let guard = match self.try_acquire(tenant, home) {
            Some(g) => g,
            None => tokio::time::timeout_at(deadline, inner.slots[home].clone().lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?,
        };
        let mut conn = TenantConn {
            guard,
            tenant: tenant.clone(),
            conns: self.clone(),
        };
        if conn
            .guard
            .conn
            .as_ref()
            .is_some_and(|c| !c.is_usable() || conn.guard.opened.elapsed() > inner.max_lifetime)
        {
            conn.discard();
        }
        if conn.guard.conn.is_none() {
            let opened = tokio::time::timeout_at(deadline, C::open(&inner.opts))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??;
            conn.guard.conn = Some(opened);
            conn.guard.opened = Instant::now();
            conn.guard.reset();
            inner.open.fetch_add(1, Ordering::Relaxed);
        }
        Ok(conn)
    }

    /// Without waiting: the home connection if idle, else an idle one that has served
    /// `tenant`, else an idle one that has served fewer other homes' tenants than the
    /// borrowing limit.
    fn try_acquire(&self, tenant: &TenantId, home: usize) -> Option<OwnedMutexGuard<Slot<C>>> {
        let slots = &self.inner.slots;
        if let Ok(g) = slots[home].clone().try_lock_owned() {
            return Some(g);
        }
        let mut fallback = None;
        for i in 1..slots.len() {
            let Ok(g) = slots[(home + i) % slots.len()].clone().try_lock_owned() else {
                continue;
            };
            if g.served.contains(tenant) {
                return Some(g);
            }
            if fallback.is_none() && g.borrowed < self.inner.borrow_limit {
                fallback = Some(g); // keep looking for one that has served the tenant
            }
        }
        fallback
    }

    /// (open, in use, maximum) connections, for `/metrics`.
    pub fn stats(&self) -> (usize, usize, usize) {
        let busy = self
            .inner
            .slots
            .iter()
            .filter(|s| s.try_lock().is_err())
            .count();
        let open = self.inner.open.load(Ordering::Relaxed);
        (open, busy.min(open), self.inner.slots.len())
    }
}

/// One tenant connection, held until dropped; derefs to the connection.
pub struct TenantConn<C: Open = PgConnection> {
    guard: OwnedMutexGuard<Slot<C>>,
    tenant: TenantId,
    conns: TenantConns<C>,
}

impl<C: Open> TenantConn<C> {
    /// The tenant this connection was acquired for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Records that this connection served its tenant (its reads are prepared here).
    pub fn served(&mut self) {
        let slot = &mut *self.guard;
        if !slot.served.contains(&self.tenant) {
            slot.served.insert(self.tenant.clone());
            if slot_of(self.tenant.as_str(), self.conns.inner.slots.len()) != slot.index {
                slot.borrowed += 1;
            }
        }
    }

    /// Closes the connection (it failed, or is in an unknown state): the next user of
    /// this slot opens a new one.
    pub fn discard(&mut self) {
        if self.guard.conn.take().is_some() {
            self.conns.inner.open.fetch_sub(1, Ordering::Relaxed);
        }
        self.guard.reset();
    }
}

impl<C: Open> Deref for TenantConn<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.guard.conn.as_ref().expect("open until discarded")
    }
}

impl<C: Open> DerefMut for TenantConn<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.guard.conn.as_mut().expect("open until discarded")
    }
}

/// Which of `n` connections is `tenant`'s home. Only stable within one build, which is
/// all that is needed: each replica routes on its own.
fn slot_of(tenant: &str, n: usize) -> usize {
    let mut h = DefaultHasher::new();
    tenant.hash(&mut h);
    (h.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_always_has_the_same_home_and_homes_share_the_tenants() {
        let n = 4;
        let mut counts = [0usize; 4];
        for i in 0..10_000 {
            let t = format!("t{i:05}");
            let s = slot_of(&t, n);
            assert_eq!(s, slot_of(&t, n));
            counts[s] += 1;
        }
        // Each connection within 10 % of an even share.
        for c in counts {
            assert!((2_250..=2_750).contains(&c), "{counts:?}");
        }
        assert_eq!(slot_of("anything", 1), 0);
    }

    fn conns(n: usize, borrow_limit: usize) -> TenantConns<PgConnection> {
        TenantConns::new(
            "postgres://nobody@127.0.0.1:1/none".parse().unwrap(),
            TenantConnsConfig {
                connections: n,
                acquire_timeout: Duration::from_millis(50),
                max_lifetime: Duration::from_secs(60),
                borrow_limit,
            },
        )
    }

    fn tid(s: &str) -> TenantId {
        TenantId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_busy_home_lends_to_a_connection_that_served_the_tenant_first() {
        let c = conns(4, 2);
        let t = tid("univ_a");
        let home = slot_of(t.as_str(), 4);
        let _busy = c.inner.slots[home].clone().try_lock_owned().unwrap();
        // One idle connection under the limit, one that served the tenant.
        let served = (home + 2) % 4;
        c.inner.slots[served]
            .try_lock()
            .unwrap()
            .served
            .insert(t.clone());
        for other in [(home + 1) % 4, (home + 3) % 4] {
            let mut s = c.inner.slots[other].try_lock().unwrap();
            s.served.insert(tid("x1"));
            s.borrowed = 1;
        }
        let g = c.try_acquire(&t, home).expect("an idle connection");
        assert!(
            g.served.contains(&t),
            "took a connection that had not served it"
        );
    }

    #[tokio::test]
    async fn full_connections_do_not_take_new_tenants_and_the_request_waits_for_home() {
        let c = conns(3, 1);
        let t = tid("univ_b");
        let home = slot_of(t.as_str(), 3);
        let busy = c.inner.slots[home].clone().try_lock_owned().unwrap();
        for i in 1..3 {
            let mut s = c.inner.slots[(home + i) % 3].try_lock().unwrap();
            s.served.insert(tid("x2"));
            s.borrowed = 1;
        }
        assert!(c.try_acquire(&t, home).is_none());
        // Waiting for the home connection times out while it stays busy (503 upstream).
        let err = c.acquire(&t).await.err().expect("timed out");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
        // A connection back under the limit takes the tenant.
        let under = (home + 2) % 3;
        c.inner.slots[under].try_lock().unwrap().borrowed = 0;
        let g = c
            .try_acquire(&t, home)
            .expect("the connection under the limit");
        assert_eq!(g.index, under);
        drop(g);
        drop(busy);
        // Free again: the home connection is taken (and fails to connect here).
        assert!(c.try_acquire(&t, home).is_some());
    }
}
