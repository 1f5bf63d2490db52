//! The HTTP surface: one module per resource, each with its own `router()`, merged
//! here under `/api`, plus the layers every request goes through.

pub mod auth;
pub mod chat;
pub mod console;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod superadmin;
pub mod tenants;
pub mod users;
pub mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, Response, StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::{BODY_LIMIT, Config};
use crate::error::error_body;
use crate::state::AppState;
use crate::tenancy::resolve;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: routes, tenant resolution, and the cross-cutting layers.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(health::router())
        .merge(openapi::router())
        .merge(tenants::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(chat::router())
        .merge(webhooks::router())
        .merge(superadmin::router())
        .merge(console::router())
        .merge(metrics::api_router());

    let timeout = state.config.request_timeout;
    let config = state.config.clone();
    Router::new()
        .nest("/api", api)
        .merge(metrics::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            (state.directory.clone(), state.usage.clone()),
            crate::usage::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.config.clone(),
            resolve::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::map_response(json_errors))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                    HeaderName::from_static("x-api-key"),
                    HeaderName::from_static("x-webhook-secret"),
                    HeaderName::from_static("webhook-signature"),
                    HeaderName::from_static(crate::auth::console_session::CSRF_HEADER),
                ]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(move |req: &Request<Body>| make_span(&config, req))
                        // One line per request, inside its span (request and tenant id).
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    timeout,
                )),
        )
        .layer(middleware::from_fn(metrics::layer))
        .with_state(state)
}

/// The span every line of a request is logged in, tower-http's own included: its
/// request id and its tenant (`resolve::log_label`) are known when it opens.
fn make_span(config: &Config, req: &Request<Body>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id,
        tenant_id = %resolve::log_label(config, req.headers(), req.uri()),
    )
}

async fn not_found() -> impl IntoResponse {
    error_body(StatusCode::NOT_FOUND, "not_found", "Not found")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked");
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal server error",
    )
}

/// Gives every error response without a JSON body (axum's 405, a timeout, a body
/// limit hit outside a JSON extractor) the contract's `{"detail","code"}` body.
async fn json_errors(resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let detail = status.canonical_reason().unwrap_or("Error");
    let mut out = error_body(status, code, detail);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = resp.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The time a graceful shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
