//! The extractors that admit a request to a tenant: [`ActiveTenant`] (the resolved
//! tenant exists and is active, from the in-memory directory) and [`TenantDb`] (that,
//! plus its open transaction under the tenant's `search_path`).

use std::ops::{Deref, DerefMut};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sqlx::PgPool;

use crate::error::{Error, Result};
use crate::tenancy::directory::{TenantDirectory, TenantStatus};
use crate::tenancy::resolve::ResolvedTenant;
use crate::tenant_db::TenantTx;
use crate::tenant_id::TenantId;

/// The request's tenant, checked to exist and be active (from the in-memory directory).
#[derive(Debug, Clone)]
pub struct ActiveTenant(pub TenantId);

impl<S> FromRequestParts<S> for ActiveTenant
where
    S: Send + Sync,
    TenantDirectory: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let resolved = parts
            .extensions
            .get::<ResolvedTenant>()
            .cloned()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("tenant resolution layer missing")))?;
        let Some(id) = resolved.tenant else {
            return Err(Error::bad_request(
                "tenant_required",
                "No tenant: send the X-Tenant-ID header",
            ));
        };
        check_status(&TenantDirectory::from_ref(state), &id).await?;
        Ok(ActiveTenant(id))
    }
}

/// Refuses a tenant that is unknown (404), suspended (403) or deleted (410).
pub async fn check_status(directory: &TenantDirectory, id: &TenantId) -> Result<()> {
    match directory.status(id).await? {
        Some(TenantStatus::Active) => Ok(()),
        Some(TenantStatus::Suspended) => Err(Error::forbidden(
            "tenant_suspended",
            format!("Tenant {id} is suspended"),
        )),
        Some(TenantStatus::Deleted | TenantStatus::Purged) => Err(Error::Gone {
            code: "tenant_deleted",
            detail: format!("Tenant {id} has been deleted"),
        }),
        None => Err(Error::not_found(
            "tenant_not_found",
            format!("Tenant {id} not found"),
        )),
    }
}

/// Extractor: an active tenant and its open transaction. Handlers finish it with
/// `db.commit().await?`; dropping it rolls back.
pub struct TenantDb(pub TenantTx);

impl<S> FromRequestParts<S> for TenantDb
where
    S: Send + Sync,
    TenantDirectory: FromRef<S>,
    PgPool: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let ActiveTenant(id) = ActiveTenant::from_request_parts(parts, state).await?;
        Ok(TenantDb(
            TenantTx::begin(&PgPool::from_ref(state), &id).await?,
        ))
    }
}

impl Deref for TenantDb {
    type Target = TenantTx;
    fn deref(&self) -> &TenantTx {
        &self.0
    }
}

impl DerefMut for TenantDb {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.0
    }
}

impl TenantDb {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.0.commit().await
    }
}
