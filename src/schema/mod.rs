//! Tenant schemas as structure: how they are built, migrated and checked.
//!
//! - `provision`: a new tenant — its schema cloned from the template (by running the
//!   template's own migrations in it), registry row, admin user and `created` event, in
//!   one transaction.
//! - `migrate`: the central schema's migrations, the template's, and the tenant
//!   migrations across every tenant schema, each schema's version kept centrally.
//! - `drift`: how a tenant schema differs from the template (`mtpaas check`).

pub mod drift;
pub mod migrate;
pub mod provision;
