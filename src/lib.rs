//! mtpaas: the multi-tenant layer for AI services sold on the service market.
//!
//! `Application::build` connects, migrates and binds; `http::app` is the router.

// Layers, top to bottom; each imports only from the layers below it.
// Entry points: the HTTP surface and the operator commands, over the shared state.
pub mod cli;
pub mod http;
pub mod state;
// The domain: tenants, who may call what, the service market, usage, the AI backend;
// operations on whole tenant schemas, and how tenant schemas are built.
pub mod ai;
pub mod archive;
pub mod auth;
pub mod market;
pub mod schema;
pub mod tenancy;
pub mod usage;
// The database: the central pool, the tenant-scoped connection, the Citus cluster.
pub mod cluster;
pub mod db;
pub mod tenant_db;
// The base: settings, errors, telemetry, and the value types config parses.
pub mod config;
pub mod error;
pub mod signature;
pub mod telemetry;
pub mod tenant_id;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use crate::config::Config;
use crate::state::AppState;
use crate::tenancy::TenantDirectory;

pub use crate::http::app;

/// A built server: connected, migrated, listening, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to Postgres, migrates the central and template schemas, loads the
    /// tenant directory and binds `HOST:PORT` (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr).await?;
        Self::build_with_listener(config, listener).await
    }

    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let pool = db::connect(&config).await?;
        schema::migrate::migrate_all(&pool, &config).await?;
        let tenant_db = tenant_db::TenantConnections::from_config(&config)?;
        let directory = TenantDirectory::new(pool.clone(), &config.central_schema);
        directory.reload_all().await?;
        let state = AppState {
            jwt: Arc::new(auth::jwt::JwtKeys::new(&config.jwt_secret)),
            http: reqwest::Client::builder()
                .timeout(config.ai_timeout)
                .build()?,
            login_throttle: Arc::new(auth::throttle::LoginThrottle::per_minute(10)),
            usage: usage::UsageCounter::new(),
            market: market::db::connect_lazy(&config)?,
            config,
            db: pool,
            tenant_db,
            directory,
        };
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { listener, state } = self;
        let listen = tokio::spawn(state.directory.clone().listen());
        let throttle = state.login_throttle.clone();
        let sweep = tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                throttle.sweep();
            }
        });
        let (stop_flusher, stop) = tokio::sync::watch::channel(false);
        let flusher = tokio::spawn(usage::run_flusher(
            state.usage.clone(),
            state.db.clone(),
            state.config.central_schema.clone(),
            state.config.usage_flush_interval,
            stop,
        ));
        let upkeep = tokio::spawn(http::metrics::run_upkeep());
        let demo_expiry = match (&state.market, state.config.demo_expiry_interval) {
            (Some(_), Some(every)) => Some(tokio::spawn(market::demo_expiry::run_every(
                state.demo_expiry_job(),
                every,
            ))),
            _ => None,
        };
        let purge = state.config.purge_in_server.then(|| {
            tokio::spawn(archive::purge::run_in_server(
                state.db.clone(),
                state.config.clone(),
            ))
        });
        let app = http::app(state.clone());
        tracing::info!(addr = %listener.local_addr()?, "mtpaas listening");
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        // Drained: no request is counting any more. The flusher writes what is left
        // before the pool closes.
        let _ = stop_flusher.send(true);
        if flusher.await.is_err() {
            usage::final_flush(&state.usage, &state.db, &state.config.central_schema).await;
        }
        if let Some(job) = demo_expiry {
            job.abort();
        }
        upkeep.abort();
        listen.abort();
        sweep.abort();
        if let Some(p) = purge {
            p.abort();
        }
        if let Some(m) = &state.market {
            m.close().await;
        }
        state.db.close().await;
        served.map_err(Into::into)
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; draining");
}
