//! The service market's webhooks (seed 6.1, 6.2; DESIGN.md): the tenant lifecycle.
//!
//! `POST /api/tenant/webhook/{user-deleted, service-cancelled, service-reinstated,
//! service-changed}`. Who may call: [`MarketWebhook`]. What they do and in which
//! transaction: `market::lifecycle`. How payloads are read and which time orders
//! events: `market::webhook`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::auth::webhook::MarketWebhook;
use crate::error::{Error, Result};
use crate::market::lifecycle::{self, Change, Delivery, DeliveryKey};
use crate::market::webhook::{
    ApplicationEvent, Endpoint, KindChanged, Payload, UserDeleted, application_id, clean,
};
use crate::state::AppState;

/// Set on an answer replayed for a delivery seen before.
pub const REPLAYED_HEADER: &str = "webhook-replayed";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenant/webhook/user-deleted", post(user_deleted))
        .route("/tenant/webhook/service-cancelled", post(service_cancelled))
        .route(
            "/tenant/webhook/service-reinstated",
            post(service_reinstated),
        )
        .route("/tenant/webhook/service-changed", post(service_changed))
}

/// Seed 6.1: soft-delete every tenant whose `admin_email` is the departed member's.
#[utoipa::path(post, path = "/api/tenant/webhook/user-deleted", tag = "webhooks",
    request_body = UserDeleted, security(("webhook_secret" = []), ("webhook_signature" = [])),
    responses((status = 200, description = "{success, message, deleted_tenants}"),
              (status = 401), (status = 413), (status = 422)))]
pub async fn user_deleted(State(state): State<AppState>, hook: MarketWebhook) -> Result<Response> {
    let e = Endpoint::UserDeleted;
    let p = Payload::parse(&hook.body)?;
    let u: UserDeleted = p.typed()?;
    deliver(state, hook, p, e, true, || {
        let email = clean("email", &u.email, 200)?;
        if email.is_empty() {
            return Err(Error::unprocessable(
                "invalid_body",
                "Invalid body: email must not be empty",
            ));
        }
        Ok(Change::Delete {
            email,
            user_id: u.user_id,
        })
    })
    .await
}

// service-cancelled and service-reinstated: the same payload and answers; the
// application's tenants change to another status.
macro_rules! application_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $answer:literal, $e:expr, $change:ident) => {
        $(#[doc = $doc])*
        #[utoipa::path(post, path = $path, tag = "webhooks",
            request_body = ApplicationEvent, security(("webhook_secret" = []), ("webhook_signature" = [])),
            responses((status = 200, description = $answer),
                      (status = 401), (status = 413), (status = 422)))]
        pub async fn $name(State(state): State<AppState>, hook: MarketWebhook) -> Result<Response> {
            application_status(state, hook, $e, |application_id| Change::$change {
                application_id,
            })
            .await
        }
    };
}

application_route!(
    /// Seed 6.2: suspend the application's tenants (`suspended_at`, `suspended_reason`).
    service_cancelled,
    "/api/tenant/webhook/service-cancelled",
    "{success, suspended_tenants}",
    Endpoint::ServiceCancelled,
    Suspend
);

application_route!(
    /// The application's suspended tenants become active again, their data as it was.
    service_reinstated,
    "/api/tenant/webhook/service-reinstated",
    "{success, reinstated_tenants}",
    Endpoint::ServiceReinstated,
    Reinstate
);

/// An [`ApplicationEvent`] whose application's tenants change status (`change`), unless
/// it names another event.
async fn application_status(
    state: AppState,
    hook: MarketWebhook,
    e: Endpoint,
    change: fn(i32) -> Change,
) -> Result<Response> {
    let p = Payload::parse(&hook.body)?;
    let a: ApplicationEvent = p.typed()?;
    let application_id = application_id(a.application_id)?;
    deliver(state, hook, p, e, false, || Ok(change(application_id))).await
}

/// `{application_id, application_kind}`: demo → service conversion, and back.
#[utoipa::path(post, path = "/api/tenant/webhook/service-changed", tag = "webhooks",
    request_body = KindChanged, security(("webhook_secret" = []), ("webhook_signature" = [])),
    responses((status = 200, description = "{success, application_kind, changed_tenants}"),
              (status = 401), (status = 413), (status = 422)))]
pub async fn service_changed(
    State(state): State<AppState>,
    hook: MarketWebhook,
) -> Result<Response> {
    let e = Endpoint::ServiceChanged;
    let p = Payload::parse(&hook.body)?;
    let k: KindChanged = p.typed()?;
    let application_id = application_id(k.application_id)?;
    let kind = k.application_kind.trim();
    if kind != "demo" && kind != "service" {
        return Err(Error::unprocessable(
            "invalid_body",
            "Invalid body: application_kind must be 'demo' or 'service'",
        ));
    }
    deliver(state, hook, p, e, false, || {
        Ok(Change::SetKind {
            application_id,
            kind: kind.to_owned(),
        })
    })
    .await
}

/// Records and applies a delivery, answering as the first time if it came before. The
/// change is `change()`'s, unless the payload names another event (or none where
/// `event_required`): that is recorded and answered `success: false`.
async fn deliver(
    state: AppState,
    hook: MarketWebhook,
    p: Payload,
    endpoint: Endpoint,
    event_required: bool,
    change: impl FnOnce() -> Result<Change>,
) -> Result<Response> {
    let change = match p.unsupported_event(endpoint, event_required)? {
        Some(event) => Change::Unsupported { event },
        None => change()?,
    };
    let delivery = Delivery {
        endpoint,
        key: DeliveryKey::choose(hook.webhook_id, p.event_id()?, endpoint),
        event: p.event_name()?,
        time: p.event_time(endpoint, hook.signed_at, chrono::Utc::now())?,
        auth: hook.auth.as_str(),
    };
    // In a task of its own: a market that hangs up mid-way must not cut the
    // transaction short; the change is applied (and its answer stored) regardless.
    let answer = tokio::spawn(async move {
        lifecycle::apply(
            &state.db,
            &state.config.central_schema,
            &state.directory,
            &delivery,
            &change,
        )
        .await
    })
    .await
    .map_err(|e| Error::Internal(anyhow::anyhow!("webhook task failed: {e}")))??;
    let mut resp = (
        answer.status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    if answer.replayed {
        resp.headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(resp)
}
