//! Tenant-scoped connections: `DB_TENANT_CONNECTIONS` connections held by mtpaas itself
//! (not a sqlx pool), each tenant with a home connection chosen by a hash of its id.
//!
//! Why a home connection: each Postgres backend caches the catalog entries (relations,
//! indexes, types) of every schema it has touched, and keeps the reads prepared on it
//! for each tenant (`tenant_db::conn::read`). A backend that meets a schema for the first
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
//! take the request does it wait: in one queue for all connections, first come first
//! served, and a connection coming back goes to the first waiter it may serve by the
//! same rules (its home, a tenant it has served, or any while under the limit). Waiting
//! for the home connection alone would queue requests behind one busy connection while
//! another frees up first: that costs tail latency, as separate checkout lines do.
//!
//! The same routing holds two kinds of connection ([`Open`]): sqlx's, for write
//! transactions, and `tenant_db::wire`'s, for reads; a server has one set of each.
//!
//! Why not a sqlx pool: a pool cannot pick a connection by what it has served, and
//! sqlx pings every connection it takes back (one more round trip per request). A
//! connection here goes back by dropping its guard: a read is one complete message
//! (`tenant_db::conn::read`) and a write transaction is finished or rolled back before
//! its guard is dropped (`tenant_db::conn::TenantTx`), so there is nothing to check.
//! A connection that failed (not an SQL error: I/O, protocol) is closed and the next
//! user opens a new one; connections older than `DB_MAX_LIFETIME_SECS` (less a random
//! part of up to a quarter, so that they are not all replaced at once) are replaced,
//! which also resets their caches. A connection is opened on a task of its own that
//! holds its slot, so a request that goes away meanwhile does not abort the open.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

use crate::tenant_db::wire::{WireConn, WireOptions};
use crate::tenant_id::TenantId;

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
    /// Held only to take or give back a slot, never across an `.await`.
    state: Mutex<State<C>>,
    /// How many slots there are (fixed).
    size: usize,
    opts: C::Options,
    acquire_timeout: Duration,
    max_lifetime: Duration,
    /// A connection takes other tenants' requests only while it has served fewer.
    borrow_limit: usize,
    /// Connections open now (for `/metrics`).
    open: AtomicUsize,
    next_waiter: AtomicU64,
}

struct State<C: Open> {
    /// `Some` while the slot is idle, `None` while someone holds it.
    idle: Vec<Option<Slot<C>>>,
    /// Requests no idle slot could take, oldest first.
    waiters: VecDeque<Waiter<C>>,
}

struct Waiter<C: Open> {
    id: u64,
    tenant: TenantId,
    home: usize,
    tx: oneshot::Sender<SlotGuard<C>>,
}

struct Slot<C> {
    /// This connection's place: the home of the tenants with `slot_of(t) == index`.
    index: usize,
    conn: Option<C>,
    opened: Instant,
    /// When it is replaced: `DB_MAX_LIFETIME_SECS` less up to a quarter, drawn at
    /// random for each connection, so that connections opened together (at start-up)
    /// are not all replaced, and all start with cold caches, at the same moment.
    lifetime: Duration,
    /// A message was started on it and not seen to its end ([`TenantConn::begin_message`]):
    /// its next user closes it rather than read another user's leftover replies.
    interrupted: bool,
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

    /// Whether this connection may take a request of `tenant` (module docs).
    fn may_serve(&self, tenant: &TenantId, home: usize, borrow_limit: usize) -> bool {
        self.index == home || self.borrowed < borrow_limit || self.served.contains(tenant)
    }
}

/// A slot taken out of the pool; dropping it gives it back (to the first waiter it may
/// serve, else to the idle ones), wherever it is dropped — even inside a channel whose
/// receiver gave up.
struct SlotGuard<C: Open> {
    slot: Option<Slot<C>>,
    conns: TenantConns<C>,
}

impl<C: Open> Drop for SlotGuard<C> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.conns.give_back(slot);
        }
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
        let idle = (0..n)
            .map(|index| {
                Some(Slot {
                    index,
                    conn: None,
                    opened: Instant::now(),
                    lifetime: config.max_lifetime,
                    interrupted: false,
                    served: HashSet::new(),
                    borrowed: 0,
                })
            })
            .collect();
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    idle,
                    waiters: VecDeque::new(),
                }),
                size: n,
                opts,
                acquire_timeout: config.acquire_timeout,
                max_lifetime: config.max_lifetime,
                borrow_limit: config.borrow_limit,
                open: AtomicUsize::new(0),
                next_waiter: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<C>> {
        // A panic while holding the lock leaves the state consistent (each step is a
        // single move), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection for `tenant`: its home connection or one it may borrow (module
    /// docs), opened if need be. `PoolTimedOut` after `DB_ACQUIRE_TIMEOUT_MS`.
    pub async fn acquire(&self, tenant: &TenantId) -> Result<TenantConn<C>, sqlx::Error> {
        let inner = &self.inner;
        let home = slot_of(tenant.as_str(), inner.size);
        let deadline = tokio::time::Instant::now() + inner.acquire_timeout;
        let taken = {
            let mut state = self.state();
            match self.take_idle(&mut state, tenant, home) {
                Some(slot) => Ok(slot),
                None => {
                    let (tx, rx) = oneshot::channel();
                    let id = inner.next_waiter.fetch_add(1, Ordering::Relaxed);
                    state.waiters.push_back(Waiter {
                        id,
                        tenant: tenant.clone(),
                        home,
                        tx,
                    });
                    Err((id, rx))
                }
            }
        };
        let guard = match taken {
            Ok(slot) => SlotGuard {
                slot: Some(slot),
                conns: self.clone(),
            },
            Err((id, mut rx)) => match tokio::time::timeout_at(deadline, &mut rx).await {
                Ok(Ok(guard)) => guard,
                // Not reached: a waiter's sender is dropped only after sending.
                Ok(Err(_)) => return Err(sqlx::Error::PoolTimedOut),
                Err(_) => {
                    // Timed out: leave the queue, unless a slot was sent meanwhile.
                    self.state().waiters.retain(|w| w.id != id);
                    match rx.try_recv() {
                        Ok(guard) => guard,
                        Err(_) => return Err(sqlx::Error::PoolTimedOut),
                    }
                }
            },
        };
        let mut conn = TenantConn {
            guard,
            tenant: tenant.clone(),
        };
        let slot = conn.slot_mut();
        if slot.conn.as_ref().is_some_and(|c| {
            slot.interrupted || !c.is_usable() || slot.opened.elapsed() > slot.lifetime
        }) {
            conn.discard();
        }
        if conn.slot_mut().conn.is_none() {
            // Opened on a task of its own, holding the slot: a request dropped meanwhile
            // does not abort it (an aborted open costs Postgres a backend start for
            // nothing, and the next user starts over).
            let conns = self.clone();
            let TenantConn { guard, tenant } = conn;
            let task = tokio::spawn(async move {
                let mut guard = guard;
                let inner = &conns.inner;
                let opened = tokio::time::timeout_at(deadline, C::open(&inner.opts))
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??;
                let slot = guard.slot.as_mut().expect("held");
                slot.conn = Some(opened);
                slot.opened = Instant::now();
                slot.lifetime = jittered(inner.max_lifetime);
                slot.reset();
                inner.open.fetch_add(1, Ordering::Relaxed);
                Ok::<_, sqlx::Error>(guard)
            });
            let guard = task
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("opening a connection: {e}")))??;
            return Ok(TenantConn { guard, tenant });
        }
        Ok(conn)
    }

    /// Without waiting: the home connection if idle, else an idle one that has served
    /// `tenant`, else an idle one that has served fewer other homes' tenants than the
    /// borrowing limit.
    fn take_idle(&self, state: &mut State<C>, tenant: &TenantId, home: usize) -> Option<Slot<C>> {
        let n = state.idle.len();
        if state.idle[home].is_some() {
            return state.idle[home].take();
        }
        let mut fallback = None;
        for i in 1..n {
            let at = (home + i) % n;
            let Some(slot) = &state.idle[at] else {
                continue;
            };
            if slot.served.contains(tenant) {
                return state.idle[at].take();
            }
            if fallback.is_none() && slot.borrowed < self.inner.borrow_limit {
                fallback = Some(at); // keep looking for one that has served the tenant
            }
        }
        fallback.and_then(|at| state.idle[at].take())
    }

    /// A slot coming back: to the first waiter it may serve, else idle.
    fn give_back(&self, slot: Slot<C>) {
        let mut slot = slot;
        let mut state = self.state();
        let limit = self.inner.borrow_limit;
        let mut i = 0;
        while i < state.waiters.len() {
            let w = &state.waiters[i];
            if !slot.may_serve(&w.tenant, w.home, limit) {
                i += 1;
                continue;
            }
            let w = state.waiters.remove(i).expect("index in range");
            let guard = SlotGuard {
                slot: Some(slot),
                conns: self.clone(),
            };
            match w.tx.send(guard) {
                Ok(()) => return,
                // That waiter gave up: take the slot back without dropping the guard
                // here (its drop would give it back again, under this lock).
                Err(mut guard) => slot = guard.slot.take().expect("just put there"),
            }
        }
        let index = slot.index;
        state.idle[index] = Some(slot);
    }

    /// (open, in use, maximum) connections, for `/metrics`.
    pub fn stats(&self) -> (usize, usize, usize) {
        let busy = self.state().idle.iter().filter(|s| s.is_none()).count();
        let open = self.inner.open.load(Ordering::Relaxed);
        (open, busy.min(open), self.inner.size)
    }
}

/// One tenant connection, held until dropped; derefs to the connection.
pub struct TenantConn<C: Open = PgConnection> {
    guard: SlotGuard<C>,
    tenant: TenantId,
}

impl<C: Open> TenantConn<C> {
    /// The tenant this connection was acquired for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn slot_mut(&mut self) -> &mut Slot<C> {
        self.guard.slot.as_mut().expect("held until dropped")
    }

    fn slot(&self) -> &Slot<C> {
        self.guard.slot.as_ref().expect("held until dropped")
    }

    /// Records that this connection served its tenant (its reads are prepared here).
    pub fn served(&mut self) {
        let n = self.guard.conns.inner.size;
        let tenant = self.tenant.clone();
        let slot = self.slot_mut();
        if !slot.served.contains(&tenant) {
            if slot_of(tenant.as_str(), n) != slot.index {
                slot.borrowed += 1;
            }
            slot.served.insert(tenant);
        }
    }

    /// Marks a message as started: until [`Self::end_message`], the connection counts
    /// as interrupted, and a next user closes it (a future dropped mid-message).
    pub fn begin_message(&mut self) {
        self.slot_mut().interrupted = true;
    }

    /// The message started by [`Self::begin_message`] was seen to its end.
    pub fn end_message(&mut self) {
        self.slot_mut().interrupted = false;
    }

    /// Closes the connection (it failed, or is in an unknown state): the next user of
    /// this slot opens a new one.
    pub fn discard(&mut self) {
        let slot = self.guard.slot.as_mut().expect("held until dropped");
        if slot.conn.take().is_some() {
            self.guard.conns.inner.open.fetch_sub(1, Ordering::Relaxed);
        }
        slot.interrupted = false;
        slot.reset();
    }
}

impl<C: Open> Deref for TenantConn<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.slot().conn.as_ref().expect("open until discarded")
    }
}

impl<C: Open> DerefMut for TenantConn<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.slot_mut().conn.as_mut().expect("open until discarded")
    }
}

/// `lifetime` less a random part of up to a quarter of it.
fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - rand::random::<f64>() * 0.25)
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

    #[test]
    fn lifetimes_are_spread_over_the_last_quarter() {
        let full = Duration::from_secs(600);
        let drawn: Vec<Duration> = (0..200).map(|_| jittered(full)).collect();
        assert!(drawn.iter().all(|d| *d <= full && *d >= full.mul_f64(0.75)));
        let (min, max) = (drawn.iter().min().unwrap(), drawn.iter().max().unwrap());
        assert!(*max - *min > Duration::from_secs(60), "{min:?}..{max:?}");
        assert_eq!(jittered(Duration::ZERO), Duration::ZERO);
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

    /// Takes slot `i` out of the pool as a user would (busy until the guard drops).
    fn hold(c: &TenantConns<PgConnection>, i: usize) -> SlotGuard<PgConnection> {
        let slot = c.state().idle[i].take().expect("idle");
        SlotGuard {
            slot: Some(slot),
            conns: c.clone(),
        }
    }

    fn edit(c: &TenantConns<PgConnection>, i: usize, f: impl FnOnce(&mut Slot<PgConnection>)) {
        f(c.state().idle[i].as_mut().expect("idle"));
    }

    fn take(c: &TenantConns<PgConnection>, t: &TenantId) -> Option<Slot<PgConnection>> {
        let home = slot_of(t.as_str(), c.inner.size);
        let mut state = c.state();
        c.take_idle(&mut state, t, home)
    }

    #[tokio::test]
    async fn a_busy_home_lends_to_a_connection_that_served_the_tenant_first() {
        let c = conns(4, 2);
        let t = tid("univ_a");
        let home = slot_of(t.as_str(), 4);
        let _busy = hold(&c, home);
        // One idle connection under the limit, one that served the tenant.
        let served = (home + 2) % 4;
        edit(&c, served, |s| {
            s.served.insert(t.clone());
        });
        for other in [(home + 1) % 4, (home + 3) % 4] {
            edit(&c, other, |s| {
                s.served.insert(tid("x1"));
                s.borrowed = 1;
            });
        }
        let slot = take(&c, &t).expect("an idle connection");
        assert!(
            slot.served.contains(&t),
            "took a connection that had not served it"
        );
    }

    #[tokio::test]
    async fn full_connections_do_not_take_new_tenants_and_the_request_waits() {
        let c = conns(3, 1);
        let t = tid("univ_b");
        let home = slot_of(t.as_str(), 3);
        let busy = hold(&c, home);
        for i in 1..3 {
            edit(&c, (home + i) % 3, |s| {
                s.served.insert(tid("x2"));
                s.borrowed = 1;
            });
        }
        assert!(take(&c, &t).is_none());
        // Waiting times out while no connection may take it (503 upstream), and the
        // waiter leaves the queue.
        let err = c.acquire(&t).await.err().expect("timed out");
        assert!(matches!(err, sqlx::Error::PoolTimedOut), "{err:?}");
        assert!(c.state().waiters.is_empty());
        // A connection back under the limit takes the tenant.
        let under = (home + 2) % 3;
        edit(&c, under, |s| s.borrowed = 0);
        let slot = take(&c, &t).expect("the connection under the limit");
        assert_eq!(slot.index, under);
        c.give_back(slot);
        drop(busy);
        // Free again: the home connection is taken first.
        assert_eq!(take(&c, &t).map(|s| s.index), Some(home));
    }

    /// A tenant whose home among `n` is `home`.
    fn homed(n: usize, home: usize, skip: &str) -> TenantId {
        (0..)
            .map(|i| format!("h{home}_{i}"))
            .find(|t| t != skip && slot_of(t, n) == home)
            .map(|t| tid(&t))
            .unwrap()
    }

    /// `acquire` of `t` on its own task: which slot it was handed (the connection then
    /// fails to open: no server here), or a timeout.
    fn wait_for(c: &TenantConns<PgConnection>, t: &TenantId) -> tokio::task::JoinHandle<bool> {
        let (c, t) = (c.clone(), t.clone());
        tokio::spawn(async move {
            match c.acquire(&t).await {
                Err(sqlx::Error::PoolTimedOut) => false,
                Err(_) => true, // handed a slot, then could not connect
                Ok(_) => unreachable!("nothing listens on port 1"),
            }
        })
    }

    #[tokio::test]
    async fn a_connection_coming_back_goes_to_the_first_waiter_it_may_serve() {
        let c = TenantConns::<PgConnection>::new(
            "postgres://nobody@127.0.0.1:1/none".parse().unwrap(),
            TenantConnsConfig {
                connections: 2,
                acquire_timeout: Duration::from_secs(10),
                max_lifetime: Duration::from_secs(60),
                borrow_limit: 1,
            },
        );
        let a = homed(2, 0, "");
        let b = homed(2, 1, "");
        let mut held: Vec<_> = (0..2).map(|i| hold(&c, i)).collect();
        for g in &mut held {
            let s = g.slot.as_mut().unwrap();
            s.served.insert(tid("x3"));
            s.borrowed = 1; // full: each takes only its own tenants
        }
        let queued = |n| {
            let c = c.clone();
            async move {
                while c.state().waiters.len() != n {
                    tokio::task::yield_now().await;
                }
            }
        };
        let wait_a = wait_for(&c, &a);
        queued(1).await;
        let wait_b = wait_for(&c, &b);
        queued(2).await;
        // b's home comes back: a waits longer but may not take it, b may.
        drop(held.pop());
        assert!(wait_b.await.unwrap(), "b was handed its home");
        assert_eq!(c.state().waiters.len(), 1);
        // b's connection failed and came back: still not for a, so it stays idle.
        assert!(c.state().idle[1].is_some());
        // a's home comes back: a gets it.
        drop(held.pop());
        assert!(wait_a.await.unwrap(), "a was handed its home");

        // Under the borrowing limit a connection goes to the oldest waiter, home or not.
        let mut held: Vec<_> = (0..2).map(|i| hold(&c, i)).collect();
        for g in &mut held {
            g.slot.as_mut().unwrap().borrowed = 0;
        }
        let a2 = homed(2, 0, a.as_str());
        let wait_a2 = wait_for(&c, &a2);
        queued(1).await;
        let wait_b2 = wait_for(&c, &b);
        queued(2).await;
        drop(held.pop()); // slot 1, under the limit: not a2's home
        assert!(
            wait_a2.await.unwrap(),
            "the oldest waiter took a connection it may borrow"
        );
        drop(held.pop());
        assert!(wait_b2.await.unwrap());
    }

    #[tokio::test]
    async fn a_slot_sent_to_a_waiter_that_gave_up_comes_back() {
        let c = conns(1, 1);
        let t = tid("univ_e");
        let busy = hold(&c, 0);
        let c2 = c.clone();
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { c2.acquire(&t2).await.map(|_| ()) });
        while c.state().waiters.is_empty() {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        drop(busy); // its waiter is gone: the slot goes back to the idle ones
        assert!(c.state().idle[0].is_some());
        assert!(c.state().waiters.is_empty());
        assert_eq!(c.stats().1, 0);
    }
}
