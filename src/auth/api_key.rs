//! `X-API-Key`: the market's key for tenant creation.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use secrecy::ExposeSecret;

use crate::auth::constant_time_eq;
use crate::config::Config;
use crate::error::Error;

/// Extractor: the request carries `X-API-Key` equal to `TENANT_API_KEY`.
pub struct MarketApiKey;

impl<S> FromRequestParts<S> for MarketApiKey
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let given = parts
            .headers
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let config = Arc::<Config>::from_ref(state);
        let expected = config.tenant_api_key.expose_secret().as_bytes();
        if given.is_empty() || !constant_time_eq(given, expected) {
            return Err(Error::unauthorized("invalid_api_key", "Invalid API key"));
        }
        Ok(MarketApiKey)
    }
}
