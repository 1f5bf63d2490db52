//! The OpenAPI 3.1 document, generated from the handlers' annotations, at
//! `/api/openapi.json`, and an interactive page at `/api/docs`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::{Scalar, Servable};

use crate::http::{auth, chat, health, tenants, users};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mtpaas",
        description = "Multi-tenant layer for AI services sold on the university service market. \
                       Errors are always `{\"detail\": \"…\", \"code\": \"…\"}`."
    ),
    paths(
        health::health,
        health::ready,
        tenants::create,
        auth::login,
        auth::setup_password,
        auth::me,
        auth::logout,
        users::list,
        users::create,
        users::remove,
        chat::history,
        chat::send,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "tenants", description = "Tenant lifecycle driven by the service market"),
        (name = "auth", description = "Tenant users' sign-in, bound to their tenant"),
        (name = "users", description = "The tenant's users"),
        (name = "chat", description = "The tenant's AI chat"),
    )
)]
pub struct ApiDoc;

/// The body of every error response.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the shape `error::error_body` writes
pub struct ErrorBody {
    /// A sentence for people.
    detail: String,
    /// A stable code for programs.
    code: String,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        c.add_security_scheme(
            "webhook_secret",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Webhook-Secret"))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn router() -> Router<AppState> {
    let doc = document();
    Router::new()
        .route("/openapi.json", get(move || async move { Json(doc) }))
        .merge(Scalar::with_url("/docs", document()))
}
