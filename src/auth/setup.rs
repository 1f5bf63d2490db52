//! One-time setup tokens: issued for users without a password, redeemed once within
//! 72 hours to set one.

use sqlx::PgPool;

use crate::auth::password::{SETUP_TOKEN_TTL_HOURS, new_setup_token, token_hash};
use crate::error::Result;
use crate::tenant_id::TenantId;

/// Issues a new setup token for the admin `email` of `tenant` if that admin has no
/// password yet (the market repeated a create whose answer it lost).
pub async fn reissue_for_admin(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
    email: &str,
) -> Result<Option<String>> {
    let (token, hash) = new_setup_token();
    let sql = format!(
        "WITH u AS (SELECT id FROM {t}.user_mst \
                    WHERE lower(email) = lower($3) AND role = 'admin' AND password_hash IS NULL) \
         INSERT INTO {c}.setup_tokens (token_hash, tenant_id, user_id, expires_at) \
         SELECT $1, $2, id, now() + make_interval(hours => $4) FROM u RETURNING user_id",
        t = tenant.quoted(),
        c = central.quoted(),
    );
    let issued: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&hash)
        .bind(tenant.as_str())
        .bind(email)
        .bind(SETUP_TOKEN_TTL_HOURS as i32)
        .fetch_optional(pool)
        .await?;
    Ok(issued.map(|_| token))
}

/// Issues a setup token for `user_id` inside an open transaction.
pub async fn issue(
    conn: &mut sqlx::PgConnection,
    central: &TenantId,
    tenant: &TenantId,
    user_id: i64,
) -> Result<String> {
    let (token, hash) = new_setup_token();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}.setup_tokens (token_hash, tenant_id, user_id, expires_at) \
         VALUES ($1, $2, $3, now() + make_interval(hours => $4))",
        central.quoted()
    )))
    .bind(&hash)
    .bind(tenant.as_str())
    .bind(user_id)
    .bind(SETUP_TOKEN_TTL_HOURS as i32)
    .execute(conn)
    .await?;
    Ok(token)
}

/// Redeems a token: marks it used and returns its tenant and user, or `None` when it is
/// unknown, expired or already used. Runs inside the caller's transaction so that the
/// password is set in the same commit.
pub async fn redeem(
    conn: &mut sqlx::PgConnection,
    central: &TenantId,
    token: &str,
) -> Result<Option<(String, i64)>> {
    let row: Option<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.setup_tokens SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() \
         RETURNING tenant_id, user_id",
        central.quoted()
    )))
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await?;
    Ok(row)
}

/// The link a new user follows to set a password.
pub fn setup_url(public_base_url: &str, tenant: &TenantId, token: &str) -> String {
    format!("{public_base_url}/setup-password?tenant={tenant}&token={token}")
}
