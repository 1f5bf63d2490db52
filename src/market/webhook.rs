//! The market's webhook payloads (seed 6.1, 6.2 and DESIGN.md), read leniently: unknown
//! fields are ignored, numbers may come as strings, fields may sit under `data` (the
//! Standard Webhooks payload shape), and the event may be named `event` or `type`.
//!
//! # Which time orders events
//!
//! The time an event happened, in this order:
//! 1. the payload's own time: the event's field (`cancelled_at`, `reinstated_at`,
//!    `changed_at`, `deleted_at`), else `occurred_at`, else `timestamp`, as RFC 3339
//!    (a time without an offset is read as UTC) or unix seconds (milliseconds above 10¹¹);
//! 2. else the signed `webhook-timestamp` of the attempt;
//! 3. else the time the delivery was received.
//!
//! The payload's time comes first because it stays the same when the market retries,
//! while `webhook-timestamp` is the time of each attempt (a retry of an old cancellation
//! would otherwise look newer than the reinstatement that followed it). A time more than
//! five minutes in the future (a sender's clock or timezone gone wrong) is taken as the
//! time of receipt, so it cannot block every later event of its application.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The four webhook routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    UserDeleted,
    ServiceCancelled,
    ServiceReinstated,
    ServiceChanged,
}

impl Endpoint {
    pub const ALL: [Endpoint; 4] = [
        Self::UserDeleted,
        Self::ServiceCancelled,
        Self::ServiceReinstated,
        Self::ServiceChanged,
    ];

    /// The last segment of `/api/tenant/webhook/<slug>`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::UserDeleted => "user-deleted",
            Self::ServiceCancelled => "service-cancelled",
            Self::ServiceReinstated => "service-reinstated",
            Self::ServiceChanged => "service-changed",
        }
    }

    pub fn path(self) -> String {
        format!("/api/tenant/webhook/{}", self.slug())
    }

    /// The event name the market puts in the payload.
    pub fn event(self) -> &'static str {
        match self {
            Self::UserDeleted => "user.deleted",
            Self::ServiceCancelled => "service.cancelled",
            Self::ServiceReinstated => "service.reinstated",
            Self::ServiceChanged => "service.changed",
        }
    }

    /// Names accepted as this route's event.
    fn accepts(self, name: &str) -> bool {
        name == self.event() || (self == Self::ServiceCancelled && name == "service.canceled")
    }

    /// Payload fields that carry the event's time, most specific first.
    pub fn time_fields(self) -> &'static [&'static str] {
        match self {
            Self::UserDeleted => &["deleted_at", "occurred_at", "timestamp"],
            Self::ServiceCancelled => &["cancelled_at", "canceled_at", "occurred_at", "timestamp"],
            Self::ServiceReinstated => &["reinstated_at", "occurred_at", "timestamp"],
            Self::ServiceChanged => &["changed_at", "occurred_at", "timestamp"],
        }
    }

    /// `user-deleted` or `user.deleted` (for the operator's tool).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.slug() == s || e.event() == s)
    }
}

/// A webhook body: a JSON object, with the fields of a `data` object lifted to the top
/// where the top level lacks them.
#[derive(Debug, Clone)]
pub struct Payload(Map<String, Value>);

impl Payload {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: Value = serde_json::from_slice(bytes).map_err(json_error)?;
        let Value::Object(mut map) = value else {
            return Err(Error::unprocessable(
                "invalid_body",
                "The body must be a JSON object",
            ));
        };
        if let Some(Value::Object(data)) = map.get("data").cloned() {
            for (k, v) in data {
                map.entry(k).or_insert(v);
            }
        }
        Ok(Self(map))
    }

    /// The payload as one of the typed shapes below.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(Value::Object(self.0.clone()))
            .map_err(|e| Error::unprocessable("invalid_body", format!("Invalid body: {e}")))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// The event the payload names (`event`, else `type`), if any.
    pub fn event_name(&self) -> Result<Option<String>> {
        match self.get("event").or_else(|| self.get("type")) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(clean("event", s, 100)?)),
            Some(_) => Err(Error::unprocessable(
                "invalid_body",
                "Invalid body: event must be a string",
            )),
        }
    }

    /// The answer for a payload naming another event than this route's, if it does.
    /// `required`: the event field must be present (the seed's user-deleted).
    pub fn unsupported_event(&self, endpoint: Endpoint, required: bool) -> Result<Option<String>> {
        match self.event_name()? {
            Some(name) if endpoint.accepts(&name) => Ok(None),
            Some(name) => Ok(Some(name)),
            None if required => Err(Error::unprocessable(
                "invalid_body",
                "Invalid body: missing field `event`",
            )),
            None => Ok(None),
        }
    }

    /// The market's own id of the event (`event_id`), if present.
    pub fn event_id(&self) -> Result<Option<String>> {
        let id = match self.get("event_id") {
            None => return Ok(None),
            Some(Value::String(s)) => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(Error::unprocessable(
                    "invalid_body",
                    "Invalid body: event_id must be a string or a number",
                ));
            }
        };
        if !crate::signature::valid_id(&id) || id.len() > 200 {
            return Err(Error::unprocessable(
                "invalid_body",
                "Invalid body: event_id must be 1 to 200 visible ASCII characters",
            ));
        }
        Ok(Some(id))
    }

    /// When the event happened: see the module docs.
    pub fn event_time(
        &self,
        endpoint: Endpoint,
        signed_at: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<EventTime> {
        let mut found = None;
        for field in endpoint.time_fields() {
            if let Some(v) = self.get(field) {
                let at = parse_time(v).ok_or_else(|| {
                    Error::unprocessable(
                        "invalid_body",
                        format!("Invalid body: {field} is not a date-time"),
                    )
                })?;
                found = Some(EventTime {
                    at,
                    source: field.to_string(),
                });
                break;
            }
        }
        let found = found.or_else(|| {
            signed_at
                .and_then(|ts| Utc.timestamp_opt(ts, 0).single())
                .map(|at| EventTime {
                    at,
                    source: "webhook-timestamp".into(),
                })
        });
        Ok(match found {
            Some(t) if t.at <= now + chrono::Duration::minutes(5) => t,
            _ => EventTime {
                at: now,
                source: "received".into(),
            },
        })
    }
}

/// When an event happened, and where that time came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTime {
    pub at: DateTime<Utc>,
    pub source: String,
}

/// Seed 6.1. The event and its time are read by [`Payload`] (`event` may be `type`;
/// `deleted_at` may be RFC 3339 or unix seconds).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"event": "user.deleted", "user_id": 123, "email": "admin@test.ac.kr",
    "university_name": "테스트대학교", "deleted_at": "2026-01-08T10:00:00"}))]
pub struct UserDeleted {
    /// `user.deleted`; another event is answered `success: false`.
    #[serde(default)]
    #[schema(required)]
    pub event: Option<String>,
    #[serde(deserialize_with = "lenient_i64")]
    pub user_id: i64,
    pub email: String,
    pub university_name: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub deleted_at: Option<Value>,
    /// The market's id of the event: the idempotency key when there is no `webhook-id`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub event_id: Option<Value>,
}

/// Seed 6.2, and service-reinstated: the market's application. The event's time is
/// `cancelled_at` / `reinstated_at`, else `occurred_at`, else `timestamp`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"event": "service.cancelled", "application_id": 5,
    "occurred_at": "2026-01-08T10:00:00+09:00"}))]
pub struct ApplicationEvent {
    #[serde(deserialize_with = "lenient_i64")]
    pub application_id: i64,
    /// Optional; when present it must be this route's event.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub occurred_at: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub event_id: Option<Value>,
}

/// service-changed: the application's new kind.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"event": "service.changed", "application_id": 5,
    "application_kind": "service"}))]
pub struct KindChanged {
    #[serde(deserialize_with = "lenient_i64")]
    pub application_id: i64,
    /// `demo` or `service`.
    pub application_kind: String,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub occurred_at: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub event_id: Option<Value>,
}

/// An application id as stored (`INTEGER`, positive).
pub fn application_id(v: i64) -> Result<i32> {
    i32::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
        Error::unprocessable(
            "invalid_body",
            "Invalid body: application_id must be a positive 32-bit integer",
        )
    })
}

/// Trims a text field and refuses what Postgres cannot store or what is too long.
pub fn clean(field: &str, s: &str, max: usize) -> Result<String> {
    let s = s.trim();
    if s.contains('\0') {
        return Err(Error::unprocessable(
            "invalid_body",
            format!("Invalid body: {field} contains a NUL character"),
        ));
    }
    if s.chars().count() > max {
        return Err(Error::unprocessable(
            "invalid_body",
            format!("Invalid body: {field} is longer than {max} characters"),
        ));
    }
    Ok(s.to_owned())
}

/// A JSON error as our error: bad syntax is a 400, a wrong shape a 422.
pub fn json_error(e: serde_json::Error) -> Error {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => Error::unprocessable("invalid_body", format!("Invalid body: {e}")),
        Category::Io | Category::Syntax | Category::Eof => {
            Error::bad_request("malformed_json", format!("Malformed JSON: {e}"))
        }
    }
}

/// An integer, or a string holding one (as pydantic accepts).
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| D::Error::custom(format!("expected an integer, got {n}"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("expected an integer, got {s:?}"))),
        other => Err(D::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

/// RFC 3339, a date-time without offset (UTC), or unix seconds / milliseconds.
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let from_number = |n: f64| -> Option<DateTime<Utc>> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let ms = if n > 1e11 { n } else { n * 1000.0 };
        if ms > 1e15 {
            return None;
        }
        Utc.timestamp_millis_opt(ms as i64).single()
    };
    match v {
        Value::Number(n) => from_number(n.as_f64()?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc));
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Some(t.and_utc());
                }
            }
            s.parse::<f64>().ok().and_then(from_number)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn payload(v: Value) -> Payload {
        Payload::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_seeds_user_deleted_payload_parses() {
        let p = payload(json!({
            "event": "user.deleted", "user_id": 123, "email": "admin@test.ac.kr",
            "university_name": "테스트대학교", "deleted_at": "2026-01-08T10:00:00",
            "something_new": [1, 2]
        }));
        let u: UserDeleted = p.typed().unwrap();
        assert_eq!(u.user_id, 123);
        assert_eq!(u.email, "admin@test.ac.kr");
        assert_eq!(
            p.unsupported_event(Endpoint::UserDeleted, true).unwrap(),
            None
        );
        let t = p
            .event_time(Endpoint::UserDeleted, None, Utc::now())
            .unwrap();
        assert_eq!(t.source, "deleted_at");
        assert_eq!(t.at.to_rfc3339(), "2026-01-08T10:00:00+00:00");
    }

    #[test]
    fn numbers_may_be_strings_and_fields_may_sit_under_data() {
        let p = payload(json!({"type": "service.cancelled", "data": {"application_id": "42"}}));
        let a: ApplicationEvent = p.typed().unwrap();
        assert_eq!(a.application_id, 42);
        assert_eq!(
            p.unsupported_event(Endpoint::ServiceCancelled, false)
                .unwrap(),
            None
        );
    }

    #[test]
    fn bad_shapes_are_client_errors() {
        assert_eq!(
            Payload::parse(b"{").unwrap_err().status_code().as_u16(),
            400
        );
        assert_eq!(Payload::parse(b"").unwrap_err().status_code().as_u16(), 400);
        assert_eq!(
            Payload::parse(b"[1]").unwrap_err().status_code().as_u16(),
            422
        );
        let p = payload(json!({"application_id": 1.5}));
        assert!(p.typed::<ApplicationEvent>().is_err());
        let p = payload(json!({"application_id": "x"}));
        assert!(p.typed::<ApplicationEvent>().is_err());
        assert!(application_id(0).is_err());
        assert!(application_id(i64::from(i32::MAX) + 1).is_err());
        assert_eq!(application_id(7).unwrap(), 7);
        assert!(clean("email", "a\0b", 10).is_err());
        assert!(clean("email", &"a".repeat(11), 10).is_err());
    }

    #[test]
    fn events_of_other_routes_are_unsupported() {
        let p = payload(json!({"event": "user.updated"}));
        assert_eq!(
            p.unsupported_event(Endpoint::UserDeleted, true).unwrap(),
            Some("user.updated".into())
        );
        let p = payload(json!({"application_id": 1}));
        assert!(p.unsupported_event(Endpoint::UserDeleted, true).is_err());
        assert_eq!(
            p.unsupported_event(Endpoint::ServiceCancelled, false)
                .unwrap(),
            None
        );
    }

    #[test]
    fn event_times_come_from_the_payload_then_the_signature_then_receipt() {
        let now = Utc.with_ymd_and_hms(2026, 1, 8, 12, 0, 0).unwrap();
        let p = payload(
            json!({"occurred_at": "2026-01-08T10:00:00+09:00", "cancelled_at": 1767830400}),
        );
        let t = p
            .event_time(Endpoint::ServiceCancelled, Some(1), now)
            .unwrap();
        assert_eq!(t.source, "cancelled_at");
        assert_eq!(t.at.timestamp(), 1767830400);

        let p = payload(json!({"occurred_at": "2026-01-08T10:00:00+09:00"}));
        let t = p.event_time(Endpoint::ServiceCancelled, None, now).unwrap();
        assert_eq!(t.at.to_rfc3339(), "2026-01-08T01:00:00+00:00");

        let p = payload(json!({"timestamp": 1767830400123_i64}));
        let t = p.event_time(Endpoint::ServiceChanged, None, now).unwrap();
        assert_eq!(t.at.timestamp_millis(), 1767830400123);

        let p = payload(json!({}));
        let signed = now.timestamp() - 30;
        let t = p
            .event_time(Endpoint::ServiceReinstated, Some(signed), now)
            .unwrap();
        assert_eq!(
            (t.source.as_str(), t.at.timestamp()),
            ("webhook-timestamp", signed)
        );
        let t = p
            .event_time(Endpoint::ServiceReinstated, None, now)
            .unwrap();
        assert_eq!((t.source.as_str(), t.at), ("received", now));

        // Far in the future: taken as the time of receipt.
        let p = payload(json!({"reinstated_at": "2026-01-09T12:00:00Z"}));
        let t = p
            .event_time(Endpoint::ServiceReinstated, None, now)
            .unwrap();
        assert_eq!((t.source.as_str(), t.at), ("received", now));

        let p = payload(json!({"reinstated_at": "yesterday"}));
        assert!(
            p.event_time(Endpoint::ServiceReinstated, None, now)
                .is_err()
        );
    }

    #[test]
    fn endpoints_are_found_by_slug_or_event() {
        assert_eq!(
            Endpoint::from_name("user-deleted"),
            Some(Endpoint::UserDeleted)
        );
        assert_eq!(
            Endpoint::from_name("service.changed"),
            Some(Endpoint::ServiceChanged)
        );
        assert_eq!(Endpoint::from_name("nope"), None);
        assert_eq!(
            Endpoint::ServiceCancelled.path(),
            "/api/tenant/webhook/service-cancelled"
        );
    }
}
