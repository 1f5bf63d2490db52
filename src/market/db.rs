//! The market's MySQL, read through a small lazily connected pool.
//!
//! Every call is bounded by `SERVICE_MARKET_DB_TIMEOUT_MS` end to end (acquiring or
//! connecting, then the query): a market database that is down, refuses connections,
//! or accepts them and never answers costs the caller that long at most and a 503
//! (`market_db_unavailable` when no connection could be made, `market_db_timeout` when
//! a query got no answer), and never holds anything else of the service. A connection
//! whose query timed out is closed, not returned to the pool with a half-read reply.

use std::str::FromStr;
use std::time::Duration;

use chrono::NaiveDateTime;
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{FromRow, MySql};
use tokio::time::{Instant, timeout_at};

use crate::config::Config;
use crate::error::Error;

/// Builds the market pool without connecting (`None` when no market is configured).
pub fn connect_lazy(config: &Config) -> anyhow::Result<Option<MySqlPool>> {
    let Some(url) = &config.market_database_url else {
        return Ok(None);
    };
    // The URL holds a password: the error names the setting, never the value.
    let mut opts = MySqlConnectOptions::from_str(url.expose_secret()).map_err(|_| {
        anyhow::anyhow!("invalid SERVICE_MARKET_DATABASE_URL (or SERVICE_MARKET_DB_* settings)")
    })?;
    // The session's collation stays utf8mb4_unicode_ci unless the URL names one (sqlx
    // 0.9 would leave it to the server's default for utf8mb4, which differs between
    // MySQL and MariaDB versions): string comparisons in the market queries keep their
    // meaning.
    if opts.get_collation().is_none() && opts.get_charset() == "utf8mb4" {
        opts = opts.collation("utf8mb4_unicode_ci");
    }
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .acquire_timeout(config.market_timeout)
        .idle_timeout(Duration::from_secs(60))
        // The market's MySQL drops idle connections (wait_timeout): ping before use.
        .test_before_acquire(true)
        .connect_lazy_with(opts);
    Ok(Some(pool))
}

/// Why the market's database could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("The service market database is not configured (set SERVICE_MARKET_DATABASE_URL)")]
    NotConfigured,
    #[error(
        "Could not connect to the service market database within {} ms (is it running and reachable?)",
        .0.as_millis()
    )]
    ConnectTimeout(Duration),
    #[error("The service market database did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("The service market database cannot be reached ({0})")]
    Unreachable(String),
    #[error("The service market database refused the query ({0})")]
    Query(String),
}

impl MarketError {
    fn kind(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::ConnectTimeout(_) => "connect_timeout",
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Query(_) => "query",
        }
    }

    fn from_sqlx(e: sqlx::Error, limit: Duration) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => Self::ConnectTimeout(limit),
            sqlx::Error::Io(io) => Self::Unreachable(io.kind().to_string()),
            sqlx::Error::Tls(_) => Self::Unreachable("TLS handshake failed".into()),
            sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed => {
                Self::Unreachable("connection failed".into())
            }
            // The server's own message: an access denial or a missing table, which the
            // operator needs to see; it names no secret.
            sqlx::Error::Database(d) => Self::Query(d.message().to_owned()),
            other => Self::Query(other.to_string()),
        }
    }
}

impl From<MarketError> for Error {
    fn from(e: MarketError) -> Self {
        metrics::counter!("mtpaas_market_db_errors_total", "kind" => e.kind()).increment(1);
        let code = match e {
            MarketError::NotConfigured => "market_db_not_configured",
            MarketError::Timeout(_) => "market_db_timeout",
            _ => "market_db_unavailable",
        };
        tracing::warn!(error = %e, "service market database");
        Error::unavailable(code, e.to_string())
    }
}

/// Runs one query on a market connection, the whole of it within `limit`.
pub async fn fetch_all<O>(
    pool: Option<&MySqlPool>,
    limit: Duration,
    sql: impl sqlx::SqlSafeStr,
    bind: impl for<'q> FnOnce(
        sqlx::query::QueryAs<'q, MySql, O, sqlx::mysql::MySqlArguments>,
    ) -> sqlx::query::QueryAs<'q, MySql, O, sqlx::mysql::MySqlArguments>,
) -> Result<Vec<O>, MarketError>
where
    O: for<'r> FromRow<'r, MySqlRow> + Send + Unpin,
{
    let pool = pool.ok_or(MarketError::NotConfigured)?;
    let deadline = Instant::now() + limit;
    let mut conn = match timeout_at(deadline, pool.acquire()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(MarketError::from_sqlx(e, limit)),
        Err(_) => return Err(MarketError::ConnectTimeout(limit)),
    };
    let query = bind(sqlx::query_as::<MySql, O>(sql));
    match timeout_at(deadline, query.fetch_all(&mut *conn)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(MarketError::from_sqlx(e, limit)),
        Err(_) => {
            conn.close_on_drop();
            Err(MarketError::Timeout(limit))
        }
    }
}

/// A `LIKE` pattern matching `s` anywhere, literally (`!` is the escape character).
pub fn contains_pattern(s: &str) -> String {
    like_contains(s, '!')
}

/// A `LIKE` pattern matching `s` anywhere, literally: the wildcards and `escape` itself
/// are escaped with `escape`. For MySQL and Postgres alike.
pub fn like_contains(s: &str, escape: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_') || c == escape {
            out.push(escape);
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One service application, as seed 5.2 lists them.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Application {
    pub id: i64,
    /// `demo` or `service`.
    pub kind: Option<String>,
    /// `requested`, `approved`, `completed`, `rejected`.
    pub status: Option<String>,
    /// The market's local time, as it stores it (no zone).
    #[schema(value_type = Option<String>, example = "2026-01-08T10:00:00")]
    pub created_at: Option<NaiveDateTime>,
    #[schema(value_type = Option<String>, example = "2026-01-22T10:00:00")]
    pub demo_expires_at: Option<NaiveDateTime>,
    pub email: Option<String>,
    pub university_name: Option<String>,
}

/// Seed 5.2: this service's applications, newest first. Columns are cast so that the
/// market's exact column types (INT or BIGINT ids, ENUM or VARCHAR kinds, DATETIME or
/// TIMESTAMP times, binary collations) all decode.
pub async fn applications(
    pool: Option<&MySqlPool>,
    limit_time: Duration,
    service_title: &str,
    limit: u32,
    offset: i64,
) -> Result<Vec<Application>, MarketError> {
    const SQL: &str = "SELECT \
            CAST(sa.id AS SIGNED) AS id, \
            CAST(sa.kind AS CHAR) AS kind, \
            CAST(sa.status AS CHAR) AS status, \
            CAST(sa.created_at AS DATETIME) AS created_at, \
            CAST(sa.demo_expires_at AS DATETIME) AS demo_expires_at, \
            CAST(u.email AS CHAR) AS email, \
            CAST(u.university_name AS CHAR) AS university_name \
        FROM service_applications sa \
        JOIN users u ON sa.user_id = u.id \
        JOIN services s ON sa.service_id = s.id \
        WHERE s.title LIKE ? ESCAPE '!' \
        ORDER BY sa.created_at DESC, sa.id DESC \
        LIMIT ? OFFSET ?";
    let pattern = contains_pattern(service_title);
    fetch_all(pool, limit_time, SQL, move |q| {
        q.bind(pattern).bind(limit).bind(offset)
    })
    .await
}

/// Of the applications `ids`, those that are demos past `demo_expires_at` (by the
/// market's own clock), with their expiry.
pub async fn expired_demos(
    pool: Option<&MySqlPool>,
    limit_time: Duration,
    ids: &[i64],
) -> Result<Vec<(i64, NaiveDateTime)>, MarketError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT CAST(id AS SIGNED), CAST(demo_expires_at AS DATETIME) \
             FROM service_applications \
             WHERE id IN ({marks}) AND CAST(kind AS CHAR) = 'demo' \
               AND demo_expires_at IS NOT NULL AND demo_expires_at < NOW()"
        );
        let chunk = chunk.to_vec();
        let rows: Vec<(i64, NaiveDateTime)> =
            fetch_all(pool, limit_time, sqlx::AssertSqlSafe(sql), move |mut q| {
                for id in chunk {
                    q = q.bind(id);
                }
                q
            })
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{contains_pattern, like_contains};

    #[test]
    fn like_patterns_match_the_title_literally() {
        assert_eq!(contains_pattern("KELI Tutor"), "%KELI Tutor%");
        assert_eq!(contains_pattern("50%_off!"), "%50!%!_off!!%");
    }

    /// The superadmin's tenant search (Postgres, `\` escaping).
    #[test]
    fn search_patterns_are_literal() {
        assert_eq!(like_contains("univ", '\\'), "%univ%");
        assert_eq!(like_contains("a%b_c\\", '\\'), "%a\\%b\\_c\\\\%");
    }
}
