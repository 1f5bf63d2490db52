//! The one `Clone` state every handler gets.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;
use sqlx::mysql::MySqlPool;

use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Config;
use crate::tenancy::wire::WireConn;
use crate::tenancy::{TenantConns, TenantDirectory};
use crate::usage::UsageCounter;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The central pool: the tenant directory, provisioning, usage, webhooks, operators.
    pub db: PgPool,
    /// Where tenant-scoped connections come from ([`TenantConns::acquire`]).
    pub tenant_conns: TenantConns,
    /// Where tenant reads go (`tenancy::wire`); `None` when Postgres requires TLS, and
    /// reads take `tenant_conns`.
    pub tenant_reads: Option<TenantConns<WireConn>>,
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
