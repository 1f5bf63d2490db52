//! `MarketWebhook`: a delivery from the service market, authenticated.
//!
//! Accepted when it carries `X-Webhook-Secret` equal to `SERVICE_MARKET_WEBHOOK_SECRET`
//! (compared in constant time; not with `WEBHOOK_REQUIRE_SIGNATURE=true`), or a valid
//! Standard Webhooks signature with a `WEBHOOK_SIGNING_SECRET`. Anything else is
//! `401 {"detail":"Invalid webhook secret"}` (the `code` says which check failed). With
//! neither secret configured every delivery is refused with a 503: there is no default.
//!
//! The guard owns the body because a signature covers its exact bytes; handlers parse
//! it with `market::webhook::Payload`. The body limit (`config::BODY_LIMIT`) applies: a
//! larger one is a 413.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use secrecy::ExposeSecret;

use crate::auth::constant_time_eq;
use crate::config::{BODY_LIMIT, Config};
use crate::error::Error;
use crate::signature::{HEADER_ID, HEADER_SIGNATURE, Verifier, valid_id};

pub const HEADER_STATIC_SECRET: &str = "x-webhook-secret";

/// How a delivery proved it came from the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAuth {
    StaticSecret,
    Signature,
}

impl WebhookAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StaticSecret => "static-secret",
            Self::Signature => "signature",
        }
    }
}

/// Extractor: an authenticated market delivery and its raw body.
#[derive(Debug)]
pub struct MarketWebhook {
    pub body: Bytes,
    pub auth: WebhookAuth,
    /// `webhook-id`, when sent (always, when signed).
    pub webhook_id: Option<String>,
    /// The signed `webhook-timestamp` (unix seconds), when signed.
    pub signed_at: Option<i64>,
}

fn refused(code: &'static str) -> Error {
    Error::unauthorized(code, "Invalid webhook secret")
}

impl<S> FromRequest<S> for MarketWebhook
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let cfg = Arc::<Config>::from_ref(state);
        let signing = cfg.webhook_signing_secret.as_ref();
        let static_secret = cfg
            .webhook_secret
            .as_ref()
            .filter(|_| !cfg.webhook_require_signature);
        if signing.is_none() && static_secret.is_none() {
            return Err(Error::unavailable(
                "webhooks_not_configured",
                "Webhooks are not configured on this server: set SERVICE_MARKET_WEBHOOK_SECRET \
                 or WEBHOOK_SIGNING_SECRET",
            ));
        }

        let headers = req.headers().clone();
        let given = headers
            .get(HEADER_STATIC_SECRET)
            .map(|v| v.as_bytes())
            .filter(|v| !v.is_empty());
        let static_ok = match (static_secret, given) {
            (Some(expected), Some(given)) => {
                constant_time_eq(given, expected.expose_secret().as_bytes())
            }
            _ => false,
        };
        let signed = signing.is_some() && headers.contains_key(HEADER_SIGNATURE);
        if !static_ok && !signed {
            tracing::warn!(
                secret_sent = given.is_some(),
                "webhook refused: no valid secret or signature"
            );
            return Err(if cfg.webhook_require_signature && given.is_some() {
                refused("webhook_signature_required")
            } else {
                refused("invalid_webhook_secret")
            });
        }

        let body =
            Bytes::from_request(req, state)
                .await
                .map_err(|r| match r.status().as_u16() {
                    413 => Error::PayloadTooLarge {
                        detail: format!(
                            "Request body is too large (limit {} KiB)",
                            BODY_LIMIT / 1024
                        ),
                    },
                    _ => Error::bad_request("unreadable_body", r.body_text()),
                })?;

        if static_ok {
            let webhook_id = match headers.get(HEADER_ID) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .filter(|s| valid_id(s))
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            Error::bad_request(
                                "invalid_webhook_id",
                                "webhook-id must be 1 to 255 visible ASCII characters",
                            )
                        })?,
                ),
            };
            return Ok(MarketWebhook {
                body,
                auth: WebhookAuth::StaticSecret,
                webhook_id,
                signed_at: None,
            });
        }

        let secrets = signing.map(|s| s.expose_secret()).unwrap_or_default();
        let verifier = Verifier::from_secrets(secrets).map_err(|e| {
            Error::Internal(anyhow::anyhow!("WEBHOOK_SIGNING_SECRET is unusable: {e}"))
        })?;
        match verifier.verify(&headers, &body) {
            Ok(s) => Ok(MarketWebhook {
                body,
                auth: WebhookAuth::Signature,
                webhook_id: Some(s.id),
                signed_at: Some(s.timestamp),
            }),
            Err(e) => {
                tracing::warn!(reason = %e, "webhook refused: signature");
                Err(refused(e.code()))
            }
        }
    }
}
