//! Prometheus metrics at `GET /metrics`, for scrapers inside the deployment's network,
//! and at `GET /api/metrics` behind the superadmin guard: nginx forwards `/api` to the
//! world, and tenant counts are nobody else's business.
//!
//! Counters and histograms go through the `metrics` facade into one process-wide
//! Prometheus recorder. Gauges that describe one server's state (tenants by status,
//! pool saturation, usage not yet flushed) are read from that server's `AppState` at
//! scrape time and rendered beside them, so several servers in one process (the tests)
//! never overwrite each other's gauges.
//!
//! Every label value comes from a bounded set: the matched route template (never the
//! raw path), the method (known ones, else `OTHER`), the status code, tenant statuses,
//! and `&'static str` event/outcome names. No tenant id is ever a label.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::superadmin::SuperAdmin;
use crate::state::AppState;
use crate::tenancy::TenantStatus;

/// Latency buckets, in seconds: from a cached status check to a slow AI reply.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder's handle, installed on first use. `None` when another
/// recorder was installed first (metrics then go to that one).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .expect("non-empty buckets");
            match builder.install_recorder() {
                Ok(h) => {
                    describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "mtpaas_http_requests_total",
        "HTTP requests by method, matched route and status"
    );
    metrics::describe_histogram!(
        "mtpaas_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by method and matched route"
    );
    metrics::describe_counter!(
        "mtpaas_webhook_deliveries_total",
        "Market webhook deliveries by event and outcome"
    );
    metrics::describe_counter!(
        "mtpaas_usage_flushes_total",
        "Usage counter flushes to Postgres by outcome"
    );
    metrics::describe_counter!(
        "mtpaas_demo_expiry_suspended_total",
        "Tenants suspended because their demo expired"
    );
    metrics::describe_counter!(
        "mtpaas_market_db_errors_total",
        "Failed queries to the service market's MySQL, by kind"
    );
}

/// Counts one webhook delivery. `event` is the route's event (e.g. `user-deleted`),
/// `outcome` what became of it (e.g. `applied`, `duplicate`, `ignored`, `unauthorized`,
/// `invalid`, `error`): both fixed strings, never text from a payload.
pub fn webhook_delivery(event: &'static str, outcome: &'static str) {
    metrics::counter!("mtpaas_webhook_deliveries_total", "event" => event, "outcome" => outcome)
        .increment(1);
}

/// `/metrics`, open: mounted at the root, which nginx does not forward.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

/// `/metrics` for the `/api` tree: the same, for the operator only.
pub fn api_router() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape_as_operator))
}

#[utoipa::path(get, path = "/api/metrics", tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401)),
    security(("bearer" = [])))]
pub async fn scrape_as_operator(_op: SuperAdmin, state: State<AppState>) -> Response {
    scrape(state).await
}

/// Runs the recorder's upkeep (draining histogram samples) until the task is dropped.
pub async fn run_upkeep() {
    let Some(h) = handle() else { return };
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        h.run_upkeep();
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: counts and times every request by its matched route template.
pub async fn layer(req: Request, next: Next) -> Response {
    let _ = handle();
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("mtpaas_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("mtpaas_http_request_duration_seconds",
        "method" => method, "route" => route)
    .record(started.elapsed().as_secs_f64());
    resp
}

async fn scrape(State(state): State<AppState>) -> Response {
    let mut body = handle().map(|h| h.render()).unwrap_or_default();
    render_state_gauges(&state, &mut body);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// This server's gauges, in the Prometheus text format.
fn render_state_gauges(state: &AppState, out: &mut String) {
    let counts = state.directory.counts();
    gauge_header(
        out,
        "mtpaas_tenants",
        "Tenants by status (this replica's directory)",
    );
    for s in [
        TenantStatus::Active,
        TenantStatus::Suspended,
        TenantStatus::Deleted,
        TenantStatus::Purged,
    ] {
        let n = counts.get(&s).copied().unwrap_or(0);
        let _ = writeln!(out, "mtpaas_tenants{{status=\"{}\"}} {n}", s.as_str());
    }

    let mut pools: Vec<(&str, u32, usize, u32)> = vec![(
        "postgres",
        state.db.size(),
        state.db.num_idle(),
        state.db.options().get_max_connections(),
    )];
    let (open, in_use, max) = state.tenant_db.writes.stats();
    pools.push(("tenants", open as u32, open - in_use, max as u32));
    if let Some(reads) = &state.tenant_db.reads {
        let (open, in_use, max) = reads.stats();
        pools.push(("tenant_reads", open as u32, open - in_use, max as u32));
    }
    if let Some(m) = &state.market {
        pools.push((
            "market",
            m.size(),
            m.num_idle(),
            m.options().get_max_connections(),
        ));
    }
    gauge_header(
        out,
        "mtpaas_db_pool_connections",
        "Open pool connections by state (in_use near max: the pool is saturated)",
    );
    for (pool, size, idle, _) in &pools {
        let idle = u32::try_from(*idle).unwrap_or(u32::MAX).min(*size);
        let _ = writeln!(
            out,
            "mtpaas_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}} {idle}"
        );
        let _ = writeln!(
            out,
            "mtpaas_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}} {}",
            size - idle
        );
    }
    gauge_header(
        out,
        "mtpaas_db_pool_max_connections",
        "The most connections a pool may open",
    );
    for (pool, _, _, max) in &pools {
        let _ = writeln!(
            out,
            "mtpaas_db_pool_max_connections{{pool=\"{pool}\"}} {max}"
        );
    }

    gauge_header(
        out,
        "mtpaas_usage_pending_calls",
        "API calls counted in memory and not yet flushed",
    );
    let _ = writeln!(
        out,
        "mtpaas_usage_pending_calls {}",
        state.usage.pending_calls()
    );
}

fn gauge_header(out: &mut String, name: &str, help: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}
