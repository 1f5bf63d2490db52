//! Tenancy: what a tenant is (`TenantId`), how a request finds its tenant (`resolve`),
//! how tenant schemas are built (`migrate`, `provision`), how a tenant's status changes
//! (`lifecycle`), the in-memory status cache (`directory`) and the only ways to reach
//! tenant data (`conn`, with reads over `wire`).

pub mod backup;
pub mod conn;
pub mod directory;
pub mod drift;
pub mod id;
pub mod lifecycle;
pub mod migrate;
pub mod pools;
pub mod provision;
pub mod purge;
pub mod resolve;
pub mod wire;

pub use conn::{ActiveTenant, TenantDb, TenantTx};
pub use directory::{TenantDirectory, TenantStatus};
pub use id::TenantId;
pub use pools::{TenantConn, TenantConns};
pub use resolve::{ResolvedTenant, current_tenant};
