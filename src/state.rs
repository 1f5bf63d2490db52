//! The one `Clone` state every handler gets, and its parts for the extractors
//! (`FromRef`): the domain's guards ask for the part they need, never for `AppState`.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;
use sqlx::mysql::MySqlPool;

use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Config;
use crate::tenancy::TenantDirectory;
use crate::tenant_db::TenantConnections;
use crate::usage::UsageCounter;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The central pool: the tenant directory, provisioning, usage, webhooks, operators.
    pub db: PgPool,
    /// Where tenant-scoped connections come from (`tenant_db`).
    pub tenant_db: TenantConnections,
    pub directory: TenantDirectory,
    pub jwt: Arc<JwtKeys>,
    pub http: reqwest::Client,
    pub login_throttle: Arc<LoginThrottle>,
    /// API calls counted in memory, flushed in batches (`usage`).
    pub usage: UsageCounter,
    /// The service market's MySQL, connected lazily; `None` when not configured.
    pub market: Option<MySqlPool>,
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(s: &AppState) -> Self {
        s.config.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(s: &AppState) -> Self {
        s.db.clone()
    }
}

impl FromRef<AppState> for TenantDirectory {
    fn from_ref(s: &AppState) -> Self {
        s.directory.clone()
    }
}

impl FromRef<AppState> for TenantConnections {
    fn from_ref(s: &AppState) -> Self {
        s.tenant_db.clone()
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(s: &AppState) -> Self {
        s.jwt.clone()
    }
}

impl AppState {
    /// What demo expiry (`market::demo_expiry`) works with.
    pub fn demo_expiry_job(&self) -> crate::market::demo_expiry::Job {
        crate::market::demo_expiry::Job {
            db: self.db.clone(),
            config: self.config.clone(),
            directory: self.directory.clone(),
            market: self.market.clone(),
        }
    }
}
