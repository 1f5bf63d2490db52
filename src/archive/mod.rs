//! Operations on whole tenant schemas as data: `backup` (pg_dump per tenant, restore
//! under the same or a new id) and `purge` (retention: back up, then drop the schema of
//! tenants deleted long enough ago).

pub mod backup;
pub mod purge;
