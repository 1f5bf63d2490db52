//! `TenantUser`: a signed-in user of the request's tenant, with that tenant's
//! transaction already open.
//!
//! Checks, in order: the tenant exists and is active (404/403/410, from the in-memory
//! directory); a token is present as `Authorization: Bearer` or the `access_token`
//! cookie (401); it verifies (401); it was issued in this tenant (403); the user still
//! exists in this tenant's `user_mst` (401) — read in the same round trip that opens
//! the transaction, so authentication adds no round trip.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::jwt::Claims;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::tenancy::conn::{ActiveTenant, TenantTx};
use crate::tenancy::resolve::cookie_value;

/// The cookie a login sets.
pub const TOKEN_COOKIE: &str = "access_token";

pub struct TenantUser {
    pub user_id: i64,
    /// The role as stored now, not as when the token was issued.
    pub role: String,
    pub claims: Claims,
    pub db: TenantTx,
}

impl TenantUser {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The bearer token or the session cookie of a request.
pub fn request_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    cookie_value(&parts.headers, TOKEN_COOKIE)
}

impl FromRequestParts<AppState> for TenantUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let ActiveTenant(tenant) = ActiveTenant::from_request_parts(parts, state).await?;
        let token = request_token(parts)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::unauthorized("not_authenticated", "Not authenticated"))?;
        let claims: Claims = state
            .jwt
            .verify(&token)
            .ok_or_else(|| Error::unauthorized("invalid_token", "Invalid or expired token"))?;
        if claims.tenant != tenant.as_str() {
            return Err(Error::forbidden(
                "tenant_mismatch",
                "This token belongs to another tenant",
            ));
        }
        let user_id = claims
            .user_id()
            .ok_or_else(|| Error::unauthorized("invalid_token", "Invalid or expired token"))?;
        let (db, role) = TenantTx::begin_as_user(&state.db, &tenant, user_id).await?;
        let Some(role) = role else {
            return Err(Error::unauthorized(
                "user_not_found",
                "The user of this token no longer exists",
            ));
        };
        Ok(TenantUser {
            user_id,
            role,
            claims,
            db,
        })
    }
}
