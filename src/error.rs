//! The one error type. Every failure becomes `{"detail": ..., "code": ...}` with the right
//! status; causes of 5xx are logged, never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of every error response.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the shape `error::error_body` writes
pub struct ErrorBody {
    /// A sentence for people.
    detail: String,
    /// A stable code for programs.
    code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("{detail}")]
    Gone { code: &'static str, detail: String },
    #[error("{detail}")]
    PayloadTooLarge { detail: String },
    #[error("{detail}")]
    Unprocessable { code: &'static str, detail: String },
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    #[error("{detail}")]
    BadGateway { code: &'static str, detail: String },
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
        }
    }
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unauthorized {
            code,
            detail: detail.into(),
        }
    }
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            detail: detail.into(),
        }
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            detail: detail.into(),
        }
    }
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Unavailable {
            code,
            detail: detail.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Gone { .. } => StatusCode::GONE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(e) if is_unavailable(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(e) if is_bad_input(e) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Gone { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::BadGateway { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Database(sqlx::Error::Database(d)) if node_unreachable(d.as_ref()) => {
                "database_node_unavailable"
            }
            Self::Database(e) if is_unavailable(e) => "database_unavailable",
            Self::Database(e) if is_bad_input(e) => "invalid_body",
            Self::Database(_) | Self::Internal(_) => "internal_error",
        }
    }
}

/// Input the database refuses as data (a NUL byte in text, a value too long for its
/// column, an index entry too big): the client's fault, whatever slipped past checks.
fn is_bad_input(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => matches!(
            d.code().as_deref(),
            Some("22021" | "22P05" | "22001" | "22003" | "54000")
        ),
        _ => false,
    }
}

/// A pool timeout or a broken connection: the database is away, not our bug.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => session_ended(d.as_ref()) || node_unreachable(d.as_ref()),
        _ => false,
    }
}

/// A Citus node the statement needed cannot be reached (a worker is down, hung or
/// shutting down): the coordinator answers class 08 about its connection to that node,
/// or passes on the node's own 08/57P answer (a worker ending the sessions it serves),
/// and our session to the coordinator goes on. Citus names the node in the message or
/// in the error's context; nothing else tells this apart from a failure of our own
/// connection.
pub fn node_unreachable(e: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = e.code() else {
        return false;
    };
    let m = e.message();
    (code.starts_with("08")
        && (m.starts_with("connection to the remote node")
            || m.starts_with("could not establish any connections to the node")))
        || ((code.starts_with("08") || code.starts_with("57P"))
            && context(e).is_some_and(|c| c.contains("while executing command on ")))
}

/// The error's context (Postgres's `CONTEXT`, field `W`), where Citus says which node
/// an error it passes on came from.
fn context(e: &dyn sqlx::error::DatabaseError) -> Option<&str> {
    if let Some(pg) = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return pg.r#where();
    }
    e.try_downcast_ref::<PgErrorResponse>()
        .and_then(|ours| ours.context.as_deref())
}

/// An error Postgres answered with (`ErrorResponse`) on a connection mtpaas speaks the
/// protocol on itself (`tenant_db::wire`), reported as sqlx reports its own.
#[derive(Debug)]
pub struct PgErrorResponse {
    code: String,
    message: String,
    context: Option<String>,
}

impl PgErrorResponse {
    /// The error of SQLSTATE `code` with its primary `message` and its `context`.
    pub fn new(code: String, message: String, context: Option<String>) -> Self {
        Self {
            code,
            message,
            context,
        }
    }
}

impl std::fmt::Display for PgErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)
    }
}

impl std::error::Error for PgErrorResponse {}

impl sqlx::error::DatabaseError for PgErrorResponse {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(std::borrow::Cow::Borrowed(&self.code))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        match self.code.as_str() {
            "23505" => ErrorKind::UniqueViolation,
            "23503" => ErrorKind::ForeignKeyViolation,
            "23502" => ErrorKind::NotNullViolation,
            "23514" => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// Postgres ended the session or cannot give one: class 08 (connection exception) and
/// 57P01-03 (admin shutdown, crash shutdown, cannot connect now); not a Citus node
/// the coordinator cannot reach ([`node_unreachable`]: the session is fine).
pub fn session_ended(e: &dyn sqlx::error::DatabaseError) -> bool {
    e.code()
        .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        && !node_unreachable(e)
}

/// Renders the contract's error body.
pub fn error_body(status: StatusCode, code: &str, detail: &str) -> Response {
    (status, Json(json!({ "detail": detail, "code": code }))).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let detail = match &self {
            Self::Database(sqlx::Error::Database(d)) if node_unreachable(d.as_ref()) => {
                tracing::warn!(error = %d, "database node unreachable");
                "The database node holding this data cannot be reached; other tenants are \
                 not affected. Try again shortly"
                    .to_owned()
            }
            Self::Database(e) if is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                "The database is unavailable; try again shortly".to_owned()
            }
            Self::Database(e) if is_bad_input(e) => {
                tracing::info!(error = %e, "input refused by the database");
                "The request contains text the service cannot store (a NUL byte or a value too long)".to_owned()
            }
            Self::Database(e) => {
                tracing::error!(error = %e, "database error");
                "Internal server error".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = error_body(status, self.code(), &detail);
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let detail = r.body_text();
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge {
                detail: "Request body is too large".into(),
            },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::bad_request(
                "unsupported_media_type",
                "Expected a JSON body with Content-Type: application/json",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => Self::unprocessable("invalid_body", detail),
            _ => Self::bad_request("malformed_json", detail),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Self::bad_request("invalid_path", r.body_text())
    }
}

/// Maps a unique or check violation to a client error by constraint name, leaving
/// every other database error as it is.
pub trait ResultExt<T> {
    fn on_constraint(
        self,
        name: &str,
        f: impl FnOnce(Box<dyn sqlx::error::DatabaseError>) -> Error,
    ) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn on_constraint(
        self,
        name: &str,
        f: impl FnOnce(Box<dyn sqlx::error::DatabaseError>) -> Error,
    ) -> Result<T> {
        self.map_err(|e| match e.into() {
            Error::Database(sqlx::Error::Database(dbe)) if dbe.constraint() == Some(name) => f(dbe),
            e => e,
        })
    }
}

/// `Json` whose rejections use our error body.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Query` whose rejections use our error body.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct ApiQuery<T>(pub T);

/// `Path` whose rejections use our error body.
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_the_database_is_unavailable_not_an_internal_error() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    fn answered(code: &str, message: &str, context: Option<&str>) -> PgErrorResponse {
        PgErrorResponse::new(code.into(), message.into(), context.map(Into::into))
    }

    #[test]
    fn a_citus_node_out_of_reach_is_a_503_and_keeps_the_session() {
        let worker = answered(
            "08006",
            "connection to the remote node postgres@127.0.0.1:9701 failed with the following \
             error: Connection refused",
            None,
        );
        assert!(node_unreachable(&worker) && !session_ended(&worker));
        let hung = answered(
            "08006",
            "could not establish any connections to the node 127.0.0.1:9701 after 3000 ms",
            None,
        );
        assert!(node_unreachable(&hung) && !session_ended(&hung));
        // A worker shutting down ends the sessions it serves; the coordinator passes its
        // 57P01 on with the node in the context (the worker's own context line first).
        let stopping = answered(
            "57P01",
            "terminating connection due to administrator command",
            Some("SQL statement \"SELECT 1\"\nwhile executing command on 127.0.0.1:9702"),
        );
        assert!(node_unreachable(&stopping) && !session_ended(&stopping));
        let ours = answered("08006", "connection failure", None);
        assert!(session_ended(&ours) && !node_unreachable(&ours));
        let shutdown = answered("57P01", "terminating connection", None);
        assert!(session_ended(&shutdown) && !node_unreachable(&shutdown));
        // Any other error a node passes on is its own, not a lost node.
        let duplicate = answered(
            "23505",
            "duplicate key value violates unique constraint",
            Some("while executing command on 127.0.0.1:9702"),
        );
        assert!(!node_unreachable(&duplicate) && !session_ended(&duplicate));

        for e in [worker, stopping] {
            let e = Error::Database(sqlx::Error::Database(Box::new(e)));
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.code(), "database_node_unavailable");
        }
        let e = Error::Database(sqlx::Error::Database(Box::new(shutdown)));
        assert_eq!(e.code(), "database_unavailable");
    }
}
