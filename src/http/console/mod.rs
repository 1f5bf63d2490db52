//! The operator console under `/api/console/`: a page (HTML, CSS and JavaScript
//! embedded in the binary) over the superadmin API, its cookie session, and the few
//! routes of its own for what that API does not give (counts by status, per-row
//! activity, one tenant's drift check, backups).
//!
//! The page's actions call the existing `/api/tenant/superadmin/…` routes with the
//! session cookie and `X-CSRF-Token` (the `SuperAdmin` guard takes either that or a
//! Bearer header); the routes here call the same library functions as the CLI
//! (`schema::drift`, `archive::backup`). Every response of the console carries a strict
//! `Content-Security-Policy` and the other headers of `security_headers`.

pub mod assets;
pub mod session;
pub mod tenants;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

use crate::state::AppState;

use assets::{asset, index};
use session::{current_session, sign_in, sign_out};
use tenants::{activity, backup_now, backups, download, overview, schema};

/// The page's address.
pub const PAGE: &str = "/api/console/";

/// The console's Content-Security-Policy: nothing but this origin's own files; no
/// inline script or style, no framing, no plugins, and DOM sinks that take strings
/// (`innerHTML`) are closed by Trusted Types.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; font-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; \
    trusted-types 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(to_page))
        .route("/console/", get(index))
        .route("/console/assets/{version}/{file}", get(asset))
        .route(
            "/console/session",
            get(current_session).post(sign_in).delete(sign_out),
        )
        .route("/console/overview", get(overview))
        .route("/console/activity", get(activity))
        .route("/console/tenants/{id}/schema", get(schema))
        .route(
            "/console/tenants/{id}/backups",
            get(backups).post(backup_now),
        )
        .route("/console/backups/{run}/{file}", get(download))
        .layer(middleware::map_response(security_headers))
}

/// `/api/console` → the page (its relative links need the trailing slash).
#[utoipa::path(get, path = "/api/console", tag = "console",
    responses((status = 308, description = "Redirect to /api/console/")))]
pub async fn to_page() -> impl IntoResponse {
    Redirect::permanent(PAGE)
}

/// Adds the console's security headers to every response of its routes; JSON answers
/// are never stored by a browser or a proxy.
async fn security_headers(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}
