//! `SuperAdmin`: the operator. `Authorization: Bearer <SUPERADMIN_TOKEN>` (compared in
//! constant time), or a JWT signed with `JWT_SECRET` whose claims say role `superadmin`
//! and name no tenant. A tenant user's token — whatever its role — never passes: it
//! carries a `tenant` claim and its role is `admin` or `member`. Without an
//! `Authorization` header, the operator console's cookie session counts instead
//! (`console_session`: CSRF and origin checks for state-changing methods).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::jwt::JwtKeys;
use crate::auth::{console_session, constant_time_eq};
use crate::config::Config;
use crate::error::Error;

/// The role an operator's JWT carries.
pub const ROLE: &str = "superadmin";

/// The claims of an operator's JWT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuperAdminClaims {
    /// Who the operator is (shown nowhere but logs).
    pub sub: String,
    pub role: String,
    pub exp: i64,
    pub iat: i64,
    /// Must be absent: an operator is not bound to a tenant. A token naming a tenant
    /// was issued for that tenant's users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

impl SuperAdminClaims {
    pub fn new(sub: &str, now: i64, ttl_secs: i64) -> Self {
        Self {
            sub: sub.to_owned(),
            role: ROLE.to_owned(),
            iat: now,
            exp: now + ttl_secs,
            tenant: None,
        }
    }
}

/// Signs an operator's JWT with `JWT_SECRET` (HS256), e.g. for a short-lived CLI session.
pub fn issue_token(secret: &SecretString, claims: &SuperAdminClaims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .expect("HS256 encoding cannot fail")
}

/// Extractor: the caller is the operator.
#[derive(Debug, Clone)]
pub struct SuperAdmin {
    /// `token` for the static token, else the JWT's subject.
    pub subject: String,
}

fn unauthorized() -> Error {
    Error::unauthorized(
        "invalid_superadmin_credentials",
        "Superadmin credentials are missing or invalid",
    )
}

/// Checks an operator's credential: the static token (in constant time) or a superadmin
/// JWT naming no tenant. The console's sign-in checks with this too.
pub fn verify_credential(config: &Config, jwt: &JwtKeys, token: &str) -> Option<SuperAdmin> {
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    let expected = config.superadmin_token.expose_secret().as_bytes();
    if constant_time_eq(token.as_bytes(), expected) {
        return Some(SuperAdmin {
            subject: "token".to_owned(),
        });
    }
    match jwt.verify::<SuperAdminClaims>(token) {
        Some(c) if c.role == ROLE && c.tenant.is_none() => Some(SuperAdmin { subject: c.sub }),
        _ => None,
    }
}

impl<S> FromRequestParts<S> for SuperAdmin
where
    S: Send + Sync,
    Arc<Config>: FromRef<S>,
    Arc<JwtKeys>: FromRef<S>,
    PgPool: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let config = Arc::<Config>::from_ref(state);
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            // No header: the console's cookie session, if there is one.
            let db = PgPool::from_ref(state);
            return match console_session::authenticate(parts, &config, &db).await? {
                Some(s) => Ok(SuperAdmin { subject: s.subject }),
                None => Err(unauthorized()),
            };
        };
        let header = header.to_str().map_err(|_| unauthorized())?;
        let (scheme, token) = header.split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        verify_credential(&config, &Arc::<JwtKeys>::from_ref(state), token).ok_or_else(unauthorized)
    }
}
