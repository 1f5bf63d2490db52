//! The operator console's sign-in session, kept in a cookie.
//!
//! Signing in (`POST /api/console/session`) checks the superadmin token (or a
//! superadmin JWT) exactly as the `SuperAdmin` guard does, then sets a cookie holding a
//! short-lived signed session token, never the credential itself:
//!
//! - the token is an HS256 JWT signed with a key derived from `JWT_SECRET` for this
//!   use only, so it never passes as a superadmin `Authorization: Bearer` JWT, and no
//!   other token passes as a console session;
//! - it names a row of the central `console_sessions` table, and counts only while that
//!   row is not ended or expired: signing out ends the session on every replica, even
//!   for someone who copied the cookie;
//! - the cookie is `HttpOnly; SameSite=Strict; Path=/`, and over https (`X-Forwarded-Proto:
//!   https` from nginx, or an https `PUBLIC_BASE_URL`) it is `Secure` and named with the
//!   `__Host-` prefix, so a tenant's page on a subdomain cannot plant one.
//!
//! A state-changing request (any method but GET and HEAD) authenticated by the cookie
//! must also come from the console's own origin (`Sec-Fetch-Site`, `Origin`) and carry
//! `X-CSRF-Token` equal to the session's CSRF value, which the page got from the
//! sign-in answer (or `GET /api/console/session`) and keeps in memory only. Callers
//! with an `Authorization` header are not affected by any of this.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::constant_time_eq;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::tenancy::resolve::cookie_value;
use sqlx::PgPool;

/// The cookie over plain http (development).
pub const COOKIE: &str = "mtpaas_console";
/// The cookie over https: `__Host-` makes the browser refuse one set by a subdomain or
/// for another path, or without `Secure`.
pub const SECURE_COOKIE: &str = "__Host-mtpaas_console";
/// The header a cookie-authenticated state-changing request carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
const AUDIENCE: &str = "mtpaas-console";

/// The claims of a console session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionClaims {
    /// The operator: `token` for the static token, else the superadmin JWT's subject.
    sub: String,
    /// The `console_sessions` row.
    sid: Uuid,
    csrf: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub subject: String,
    /// The value `X-CSRF-Token` must carry.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a request's console cookie did not authenticate it.
fn session_ended() -> Error {
    Error::unauthorized(
        "console_session_expired",
        "The console session has expired or was ended; sign in again",
    )
}

/// The signing key of session tokens: SHA-256 of `JWT_SECRET` under a label of its
/// own, so session tokens and superadmin JWTs cannot stand for each other.
fn signing_key(secret: &SecretString) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mtpaas console session v1\0");
    h.update(secret.expose_secret().as_bytes());
    h.finalize().into()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The first value of a header a proxy may have appended to (`a, b` → `a`), lower-cased.
fn first_forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(|v| {
        v.split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

/// Whether the browser reached us over https: nginx says so (`X-Forwarded-Proto`), or
/// the service's public address is https.
pub fn is_https(config: &Config, headers: &HeaderMap) -> bool {
    let forwarded = first_forwarded(headers, "x-forwarded-proto");
    match forwarded.as_deref() {
        Some("https") => true,
        Some("http") => false,
        _ => config
            .public_base_url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
    }
}

/// The cookie's name for this request.
pub fn cookie_name(https: bool) -> &'static str {
    if https { SECURE_COOKIE } else { COOKIE }
}

/// `Set-Cookie` for a session token (`max_age` 0 with an empty value clears it).
pub fn set_cookie(value: &str, max_age: i64, https: bool) -> HeaderValue {
    let mut c = format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}",
        cookie_name(https)
    );
    if https {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("session tokens are URL-safe base64")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(https: bool) -> HeaderValue {
    set_cookie("", 0, https)
}

/// The session token the request carries, if any. Over https only the `__Host-`
/// cookie counts.
fn presented_token(config: &Config, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, cookie_name(is_https(config, headers))).filter(|v| !v.is_empty())
}

/// Whether the request carries a console cookie at all.
pub fn has_cookie(config: &Config, headers: &HeaderMap) -> bool {
    presented_token(config, headers).is_some()
}

/// Starts a session for `subject`: records it and returns it with the cookie's value.
pub async fn start(config: &Config, db: &PgPool, subject: &str) -> Result<(Session, String)> {
    let now = Utc::now();
    let ttl = i64::try_from(config.console_session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    // `exp` counts whole seconds: rounded up, so a session lasts at least its TTL (the
    // cookie's Max-Age), never up to a second less.
    let now_secs = now.timestamp() + i64::from(now.timestamp_subsec_nanos() > 0);
    let exp = now_secs.saturating_add(ttl);
    let expires_at = Utc
        .timestamp_opt(exp, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("session expiry out of range"))?;
    let claims = SessionClaims {
        sub: subject.chars().take(200).collect(),
        sid: Uuid::new_v4(),
        csrf: random_hex(),
        aud: AUDIENCE.to_owned(),
        iat: now.timestamp(),
        exp,
    };
    let table = sessions_table(config);
    // Rows of sessions long over are dropped here, the only place sessions are made.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE expires_at < now() - interval '1 day'"
    )))
    .execute(db)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (session_id, subject, expires_at) VALUES ($1, $2, $3)"
    )))
    .bind(claims.sid)
    .bind(&claims.sub)
    .bind(expires_at)
    .execute(db)
    .await?;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&signing_key(&config.jwt_secret)),
    )
    .map_err(|e| anyhow::anyhow!("cannot sign a console session: {e}"))?;
    Ok((
        Session {
            id: claims.sid,
            subject: claims.sub,
            csrf: claims.csrf,
            expires_at,
        },
        token,
    ))
}

fn sessions_table(config: &Config) -> String {
    format!("{}.console_sessions", config.central_schema.quoted())
}

/// The live session the request's cookie names: `Ok(None)` without a cookie, 401 when
/// the cookie is not (or no longer) a live session.
pub async fn current(config: &Config, db: &PgPool, headers: &HeaderMap) -> Result<Option<Session>> {
    let Some(token) = presented_token(config, headers) else {
        return Ok(None);
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<SessionClaims>(
        &token,
        &DecodingKey::from_secret(&signing_key(&config.jwt_secret)),
        &validation,
    )
    .map_err(|_| session_ended())?
    .claims;
    let live: Option<(DateTime<Utc>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT expires_at FROM {} \
          WHERE session_id = $1 AND ended_at IS NULL AND expires_at > now()",
        sessions_table(config)
    )))
    .bind(claims.sid)
    .fetch_optional(db)
    .await?;
    let (expires_at,) = live.ok_or_else(session_ended)?;
    Ok(Some(Session {
        id: claims.sid,
        subject: claims.sub,
        csrf: claims.csrf,
        expires_at,
    }))
}

/// Ends a session (signing out): it stops working on every replica at once.
pub async fn end(config: &Config, db: &PgPool, session: &Session) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET ended_at = now() WHERE session_id = $1 AND ended_at IS NULL",
        sessions_table(config)
    )))
    .bind(session.id)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether a method changes state (everything but GET and HEAD).
pub fn changes_state(method: &Method) -> bool {
    !(method == Method::GET || method == Method::HEAD)
}

fn cross_site() -> Error {
    Error::forbidden(
        "cross_site_request",
        "Cross-site requests are refused: use the console's own page",
    )
}

/// `scheme://host[:port]` of a URL, lowercased; `None` if it is not one.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let origin = u.origin();
    origin
        .is_tuple()
        .then(|| origin.ascii_serialization().to_ascii_lowercase())
}

/// Refuses a request a browser sent from another site or origin: `Sec-Fetch-Site` must
/// say `same-origin` when present, and `Origin`, when present, must be this service's
/// (its `Host`, or `PUBLIC_BASE_URL`'s origin). A client that sends neither (not a
/// browser) is left to the CSRF token.
pub fn check_same_origin(config: &Config, headers: &HeaderMap) -> Result<()> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() != b"same-origin")
    {
        return Err(cross_site());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .ok()
        .and_then(origin_of)
        .ok_or_else(cross_site)?;
    if origin_of(&config.public_base_url).as_deref() == Some(origin.as_str()) {
        return Ok(());
    }
    let header = |name: &str| first_forwarded(headers, name);
    // Where the browser sent the request: its Host, or what nginx says it was
    // (X-Forwarded-Host and -Port; nginx forwards Host without the port). A page on
    // another site cannot set these headers on a request that carries the cookie.
    let mut hosts: Vec<String> = [header("host"), header("x-forwarded-host")]
        .into_iter()
        .flatten()
        .collect();
    if let (Some(h), Some(p)) = (header("x-forwarded-host"), header("x-forwarded-port")) {
        hosts.push(format!("{h}:{p}"));
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Err(cross_site());
    };
    // The URL parser drops default ports from the origin; a Host header may carry one.
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let same_host = hosts
        .iter()
        .any(|h| h == authority || h.strip_suffix(default_port) == Some(authority));
    if same_host { Ok(()) } else { Err(cross_site()) }
}

/// Refuses a state-changing request without the session's CSRF token.
pub fn check_csrf(session: &Session, headers: &HeaderMap) -> Result<()> {
    let Some(sent) = headers.get(CSRF_HEADER) else {
        return Err(Error::forbidden(
            "csrf_token_missing",
            "This request needs the X-CSRF-Token header of the console session",
        ));
    };
    if constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        Ok(())
    } else {
        Err(Error::forbidden(
            "csrf_token_invalid",
            "The X-CSRF-Token header does not match the console session",
        ))
    }
}

/// The `SuperAdmin` guard's cookie path: `Ok(None)` when the request carries no console
/// cookie; otherwise the session's operator, with the origin and CSRF checks done for
/// state-changing methods.
pub async fn authenticate(parts: &Parts, config: &Config, db: &PgPool) -> Result<Option<Session>> {
    if !has_cookie(config, &parts.headers) {
        return Ok(None);
    }
    let changes = changes_state(&parts.method);
    if changes {
        check_same_origin(config, &parts.headers)?;
    }
    let session = current(config, db, &parts.headers)
        .await?
        .ok_or_else(session_ended)?;
    if changes {
        check_csrf(&session, &parts.headers)?;
    }
    Ok(Some(session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public: &str) -> Config {
        let env: std::collections::HashMap<String, String> = [
            ("PUBLIC_BASE_URL", public),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Config::from_source(&env).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn https_comes_from_the_proxy_or_the_public_address() {
        let http = config("http://localhost:8085");
        let https = config("https://ops.example.ac.kr");
        assert!(!is_https(&http, &headers(&[])));
        assert!(is_https(&http, &headers(&[("x-forwarded-proto", "https")])));
        assert!(is_https(&https, &headers(&[])));
        assert!(!is_https(
            &https,
            &headers(&[("x-forwarded-proto", "http")])
        ));
    }

    #[test]
    fn cookies_are_strict_and_secure_over_https() {
        let c = set_cookie("abc", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-mtpaas_console=abc;"), "{c}");
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        let plain = set_cookie("abc", 60, false);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn only_same_origin_requests_pass() {
        let c = config("https://ops.example.ac.kr");
        let host = ("host", "127.0.0.1:8085");
        assert!(check_same_origin(&c, &headers(&[host])).is_ok());
        assert!(
            check_same_origin(&c, &headers(&[host, ("sec-fetch-site", "same-origin")])).is_ok()
        );
        assert!(
            check_same_origin(&c, &headers(&[host, ("origin", "http://127.0.0.1:8085")])).is_ok()
        );
        assert!(
            check_same_origin(
                &c,
                &headers(&[host, ("origin", "https://ops.example.ac.kr")])
            )
            .is_ok()
        );
        let refused: [&[(&'static str, &str)]; 5] = [
            &[host, ("sec-fetch-site", "cross-site")],
            &[host, ("sec-fetch-site", "same-site")],
            &[host, ("origin", "http://evil.example")],
            &[host, ("origin", "http://127.0.0.1:9999")],
            &[host, ("origin", "null")],
        ];
        for h in refused {
            assert!(check_same_origin(&c, &headers(h)).is_err(), "{h:?}");
        }
        // The default port left out; behind nginx on another port (Host has no port,
        // X-Forwarded-Port says it); another host on that port.
        let proxied: [(&[(&str, &str)], bool); 3] = [
            (
                &[
                    ("host", "ops.example.org:443"),
                    ("origin", "https://ops.example.org"),
                ],
                true,
            ),
            (
                &[
                    ("host", "ops.example.org"),
                    ("x-forwarded-host", "ops.example.org"),
                    ("x-forwarded-port", "8443"),
                    ("origin", "https://ops.example.org:8443"),
                ],
                true,
            ),
            (
                &[
                    ("host", "ops.example.org"),
                    ("x-forwarded-port", "8443"),
                    ("origin", "https://evil.example:8443"),
                ],
                false,
            ),
        ];
        for (h, ok) in proxied {
            assert_eq!(check_same_origin(&c, &headers(h)).is_ok(), ok, "{h:?}");
        }
    }

    #[test]
    fn the_csrf_token_must_match() {
        let s = Session {
            id: Uuid::new_v4(),
            subject: "token".into(),
            csrf: "a".repeat(64),
            expires_at: Utc::now(),
        };
        assert!(check_csrf(&s, &headers(&[])).is_err());
        assert!(check_csrf(&s, &headers(&[("x-csrf-token", "b")])).is_err());
        assert!(check_csrf(&s, &headers(&[("x-csrf-token", &"a".repeat(64))])).is_ok());
    }

    #[test]
    fn session_keys_differ_from_the_jwt_secret() {
        let s = SecretString::from("0123456789abcdef0123456789abcdef".to_owned());
        assert_ne!(&signing_key(&s)[..], s.expose_secret().as_bytes());
        assert_eq!(signing_key(&s).len(), 32);
    }
}
