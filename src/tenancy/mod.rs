//! Tenancy: what a tenant is and how a request finds it.
//!
//! - `resolve`: the request's tenant, from `X-Tenant-ID`, `?tenant=`, the cookie, the
//!   subdomain or `DEFAULT_TENANT`, kept in a task-local and the request extensions.
//! - `directory`: the in-memory status cache every tenant-scoped request is checked
//!   against, kept current across replicas by `LISTEN/NOTIFY`.
//! - `lifecycle`: the one way a tenant's status changes (row, history event, notify).
//! - `guard`: the extractors that admit a request to an active tenant.
//!
//! The id itself, `TenantId`, sits below every layer (`crate::tenant_id`): the config
//! parses schema names with it too. The connection that reaches a tenant's data is
//! `crate::tenant_db`; how tenant schemas are built is `crate::schema`.

pub mod directory;
pub mod guard;
pub mod lifecycle;
pub mod resolve;

pub use crate::tenant_id::TenantId;
pub use directory::{TenantDirectory, TenantStatus};
pub use guard::{ActiveTenant, TenantDb};
pub use resolve::{ResolvedTenant, current_tenant};
