//! The tenant-scoped connection: where a connection's `search_path` is set to one
//! tenant, for one message or one transaction, and nothing else can reach tenant data.
//!
//! - `conn`: [`TenantTx`] (a write transaction under the tenant's path) and the reads
//!   (`read`, `read_wire`, `read_tenant`), with the proof that no path leaks.
//! - `pools`: [`TenantConns`], the connections tenant work goes over (a home connection
//!   per tenant, borrowing within a limit, one waiting line).
//! - `wire`: reads over connections of their own in the extended protocol.
//! - `prepared`: [`PreparedRead`], a read as every read path takes it.
//!
//! It stands on `db` (connect options) and `tenant_id`, below every domain module.

pub mod conn;
pub mod pools;
pub mod prepared;
pub mod wire;

use secrecy::ExposeSecret;

pub use conn::TenantTx;
pub use pools::{TenantConn, TenantConns, TenantConnsConfig};
pub use prepared::PreparedRead;

use crate::config::Config;
use wire::{WireConn, WireOptions};

/// Every tenant connection a server holds, besides the central pool: the ones
/// transactions take, and the ones reads go over.
#[derive(Clone)]
pub struct TenantConnections {
    /// Write transactions (and reads, when `reads` is `None`).
    pub writes: TenantConns,
    /// Reads over the extended protocol (`wire`, in every `sslmode`); `None` when
    /// `DB_WIRE_READS=false`, and reads take `writes` through sqlx.
    pub reads: Option<TenantConns<WireConn>>,
}

impl TenantConnections {
    /// `DB_TENANT_CONNECTIONS` of each kind, opened lazily.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let opts = crate::db::connect_options(config)?;
        let reads = match config.db_wire_reads {
            true => Some(TenantConns::new(
                WireOptions::from_config(&opts, config.database_url.expose_secret())?,
                conns_config(config),
            )),
            false => None,
        };
        Ok(Self {
            writes: TenantConns::new(opts, conns_config(config)),
            reads,
        })
    }
}

fn conns_config(config: &Config) -> TenantConnsConfig {
    TenantConnsConfig {
        connections: config.db_tenant_connections.max(1) as usize,
        acquire_timeout: config.db_acquire_timeout,
        max_lifetime: config.db_max_lifetime,
        borrow_limit: config.db_conn_tenants as usize,
    }
}
