//! The OpenAPI 3.1 document, generated from the handlers' annotations, at
//! `/api/openapi.json`, and an interactive page at `/api/docs`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_scalar::{Scalar, Servable};

use crate::http::{auth, chat, console, health, metrics, superadmin, tenants, users, webhooks};
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
        webhooks::user_deleted,
        webhooks::service_cancelled,
        webhooks::service_reinstated,
        webhooks::service_changed,
        superadmin::list,
        superadmin::one,
        superadmin::history,
        superadmin::usage_of,
        superadmin::suspend,
        superadmin::reinstate,
        superadmin::delete,
        superadmin::applications,
        metrics::scrape_as_operator,
        console::to_page,
        console::assets::index,
        console::assets::asset,
        console::session::sign_in,
        console::session::current_session,
        console::session::sign_out,
        console::tenants::overview,
        console::tenants::activity,
        console::tenants::schema,
        console::tenants::backups,
        console::tenants::backup_now,
        console::tenants::download,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "tenants", description = "Tenant lifecycle driven by the service market"),
        (name = "auth", description = "Tenant users' sign-in, bound to their tenant"),
        (name = "users", description = "The tenant's users"),
        (name = "chat", description = "The tenant's AI chat"),
        (name = "webhooks", description = "The service market's webhooks: the tenant lifecycle"),
        (name = "superadmin", description = "The operator's view and control of every tenant"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "console", description = "The operator console: its page, its cookie session, and what it shows beside the superadmin API"),
    )
)]
pub struct ApiDoc;

struct Security;

/// Answers any route may give besides its own: a bad tenant id or body (400), a body
/// over the limit (413), a body of the wrong shape (422), the database away (503).
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "Invalid tenant id, malformed JSON or query"),
    ("413", "Request body too large"),
    ("422", "Well-formed JSON of the wrong shape"),
    (
        "503",
        "The database is unavailable or the request timed out",
    ),
];

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                for (code, description) in COMMON_ERRORS {
                    if op.responses.responses.contains_key(*code) {
                        continue;
                    }
                    let resp = ResponseBuilder::new()
                        .description(*description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build();
                    op.responses.responses.insert(code.to_string(), resp.into());
                }
            }
        }
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
            "webhook_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "webhook-signature",
                "Standard Webhooks: v1,<base64 HMAC-SHA256 of `webhook-id.webhook-timestamp.body`> \
                 with WEBHOOK_SIGNING_SECRET, plus the webhook-id and webhook-timestamp headers",
            ))),
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
