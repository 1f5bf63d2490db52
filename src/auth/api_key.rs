//! `X-API-Key`: the market's key for tenant creation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use secrecy::ExposeSecret;

use crate::auth::constant_time_eq;
use crate::error::Error;
use crate::state::AppState;

/// Extractor: the request carries `X-API-Key` equal to `TENANT_API_KEY`.
pub struct MarketApiKey;

impl FromRequestParts<AppState> for MarketApiKey {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let given = parts
            .headers
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let expected = state.config.tenant_api_key.expose_secret().as_bytes();
        if given.is_empty() || !constant_time_eq(given, expected) {
            return Err(Error::unauthorized("invalid_api_key", "Invalid API key"));
        }
        Ok(MarketApiKey)
    }
}
