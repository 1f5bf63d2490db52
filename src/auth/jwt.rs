//! JWTs for tenant users: HS256 with `JWT_SECRET`; claims name the user, the tenant the
//! token was issued in, the role and the expiry.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How long a login lasts.
pub const TOKEN_TTL_SECS: i64 = 8 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id in the tenant's `user_mst`.
    pub sub: String,
    /// The tenant the token was issued in; it is valid there only.
    pub tenant: String,
    pub role: String,
    pub exp: i64,
    pub iat: i64,
}

impl Claims {
    pub fn new(user_id: i64, tenant: &str, role: &str, now: i64) -> Self {
        Self {
            sub: user_id.to_string(),
            tenant: tenant.to_owned(),
            role: role.to_owned(),
            iat: now,
            exp: now + TOKEN_TTL_SECS,
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        self.sub.parse().ok()
    }
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
        }
    }

    pub fn issue(&self, claims: &Claims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 encoding cannot fail")
    }

    pub fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str) -> Option<T> {
        jsonwebtoken::decode::<T>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> JwtKeys {
        JwtKeys::new(&SecretString::from(s.to_owned()))
    }

    #[test]
    fn issued_tokens_verify_with_the_same_secret_only() {
        let now = chrono::Utc::now().timestamp();
        let k = keys("0123456789abcdef0123456789abcdef");
        let c = Claims::new(7, "univ_8", "admin", now);
        let t = k.issue(&c);
        assert_eq!(k.verify::<Claims>(&t), Some(c));
        assert_eq!(
            keys("another-secret-another-secret-xx").verify::<Claims>(&t),
            None
        );
        assert_eq!(k.verify::<Claims>("not.a.token"), None);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let c = Claims::new(7, "univ_8", "admin", 1_000_000);
        assert_eq!(k.verify::<Claims>(&k.issue(&c)), None);
    }
}
