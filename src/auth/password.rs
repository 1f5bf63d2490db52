//! Password hashing (argon2id, OWASP parameters) and one-time setup tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How long a setup token is valid.
pub const SETUP_TOKEN_TTL_HOURS: i64 = 72;

fn argon2() -> Argon2<'static> {
    // OWASP: argon2id, m=19 MiB, t=2, p=1.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params"),
    )
}

/// Checks a new password's length (8..=256 characters).
pub fn validate_new_password(p: &str) -> Result<()> {
    let n = p.chars().count();
    if n < 8 {
        return Err(Error::unprocessable(
            "weak_password",
            "Password must be at least 8 characters",
        ));
    }
    if n > 256 {
        return Err(Error::unprocessable(
            "invalid_field",
            "Password must be at most 256 characters",
        ));
    }
    Ok(())
}

/// Hashes on a blocking thread: argon2 is deliberately slow.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(anyhow::anyhow!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(anyhow::anyhow!("hashing task failed: {e}")))?
}

/// A hash of a random password nobody knows, verified when a user is unknown or has
/// no password, so that a login takes the same time whether the account exists or not.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let (random, _) = new_setup_token();
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(random.as_bytes(), &salt)
        .expect("hashing a random password")
        .to_string()
});

/// Verifies on a blocking thread; `None` verifies against a dummy hash and fails.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let real = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    })
    .await
    .unwrap_or(false)
}

/// A new setup token and the hash that is stored.
pub fn new_setup_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse".into(), Some(h)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn password_rules() {
        assert!(validate_new_password("1234567").is_err());
        assert!(validate_new_password("12345678").is_ok());
        assert!(validate_new_password(&"x".repeat(257)).is_err());
    }

    #[test]
    fn setup_tokens_are_random_and_hashed() {
        let (a, ha) = new_setup_token();
        let (b, _) = new_setup_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a), ha);
    }
}
