//! Tenant-scoped connections come from one of `DB_POOL_SHARDS` pools, chosen by a hash
//! of the tenant id, so a tenant's requests always land on the same few connections.
//!
//! Why: each Postgres backend caches the catalog entries (relations, indexes, types) of
//! every schema it has touched, and a backend that meets a schema for the first time
//! pays catalog lookups before it can plan. With one shared pool and thousands of
//! tenants, every connection meets every schema: caches miss often and grow to the size
//! of the whole database on each backend. With `S` shards each backend meets only `1/S`
//! of the schemas, so it misses `S` times less often and its cache is `S` times smaller.
//! By default there are as many shards as connections (`DB_MAX_CONNECTIONS`): each
//! tenant has one home connection, whose backend also keeps the tenant's prepared reads
//! (`tenancy::conn::read`).
//! Central queries (the tenant directory, usage, webhooks, provisioning) keep their own
//! pool. `DB_POOL_SHARDS=1` puts every tenant on the central pool.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use crate::tenancy::TenantId;

#[derive(Clone)]
pub struct TenantPools {
    shards: Arc<[PgPool]>,
}

impl TenantPools {
    /// `shards` must not be empty.
    pub fn new(shards: Vec<PgPool>) -> Self {
        assert!(!shards.is_empty(), "at least one pool");
        Self {
            shards: shards.into(),
        }
    }

    /// The pool that serves `tenant`: the same one for the life of the process.
    pub fn for_tenant(&self, tenant: &TenantId) -> &PgPool {
        &self.shards[shard_of(tenant.as_str(), self.shards.len())]
    }

    /// A connection of `tenant`'s pool. Only that pool, even when it is busy and others
    /// are idle: borrowing would spread each tenant over every connection again, and
    /// measured with 10,000 tenants that cost more than the waiting it saves.
    pub async fn acquire(
        &self,
        tenant: &TenantId,
    ) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        self.for_tenant(tenant).acquire().await
    }

    pub fn shards(&self) -> &[PgPool] {
        &self.shards
    }
}

/// Which of `n` shards serves `tenant`. Only stable within one build, which is all that
/// is needed: each replica routes on its own.
fn shard_of(tenant: &str, n: usize) -> usize {
    let mut h = DefaultHasher::new();
    tenant.hash(&mut h);
    (h.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_always_maps_to_the_same_shard_and_shards_share_the_tenants() {
        let n = 4;
        let mut counts = [0usize; 4];
        for i in 0..10_000 {
            let t = format!("t{i:05}");
            let s = shard_of(&t, n);
            assert_eq!(s, shard_of(&t, n));
            counts[s] += 1;
        }
        // Each shard within 10 % of an even share.
        for c in counts {
            assert!((2_250..=2_750).contains(&c), "{counts:?}");
        }
        assert_eq!(shard_of("anything", 1), 0);
    }
}
