//! Applying the market's events to tenants, one transaction per delivery.
//!
//! The transaction first claims the delivery's key in `webhook_deliveries`
//! (`INSERT … ON CONFLICT DO NOTHING`). A second copy of the same delivery arriving
//! meanwhile waits on that key until the first commits, then finds the row and returns
//! the stored answer: ten concurrent copies apply once. If the first fails, it rolls
//! back, and a waiting copy claims the key and applies the change itself.
//!
//! Events about an application (cancelled, reinstated, changed) then pass the order
//! check: `market_application_events` keeps the time of the last event applied to the
//! application's status and to its kind, and an older event is recorded and ignored.
//! Then the tenants change, each through `tenancy::lifecycle::change_status` (row,
//! history event with actor `market`, `pg_notify`), and the delivery's answer is
//! stored, all in the same commit. Every replica's directory hears the notification;
//! this one's is updated at once. What is the market's own here: the delivery keys, the
//! order check and the stored answers.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::market::webhook::{Endpoint, EventTime};
use crate::schema::provision::Actor;
use crate::tenancy::directory::{TenantDirectory, TenantStatus};
use crate::tenancy::lifecycle::{self, Cause};
use crate::tenant_id::TenantId;

/// The seed's `suspended_reason` for a cancelled service.
pub const SUSPENDED_REASON: &str = "서비스 마켓 서비스 해지";

/// The seed's `deleted_reason` for a market member who left.
pub fn deleted_reason(user_id: i64) -> String {
    format!("서비스 마켓 회원 탈퇴 (user_id={user_id})")
}

/// What a delivery asks for.
#[derive(Debug, Clone)]
pub enum Change {
    /// Soft-delete every tenant of this admin email.
    Delete { email: String, user_id: i64 },
    /// Suspend the application's active tenants.
    Suspend { application_id: i32 },
    /// Reactivate the application's suspended tenants.
    Reinstate { application_id: i32 },
    /// Set the application's kind (`demo` / `service`).
    SetKind { application_id: i32, kind: String },
    /// The payload names another event: recorded, answered `success: false`.
    Unsupported { event: String },
}

/// How a delivery is recognised when it comes again.
#[derive(Debug, Clone)]
pub struct DeliveryKey {
    pub id: String,
    /// `webhook-id`, `event_id` or `none`.
    pub source: &'static str,
}

impl DeliveryKey {
    /// The `webhook-id`, else the payload's `event_id` (scoped to the route), else a
    /// fresh key (such a delivery is recorded but cannot be recognised again).
    pub fn choose(webhook_id: Option<String>, event_id: Option<String>, e: Endpoint) -> Self {
        match (webhook_id, event_id) {
            (Some(id), _) => Self {
                id,
                source: "webhook-id",
            },
            (None, Some(ev)) => Self {
                id: format!("event:{}:{ev}", e.slug()),
                source: "event_id",
            },
            (None, None) => Self {
                id: format!("rcv_{}", uuid::Uuid::now_v7().simple()),
                source: "none",
            },
        }
    }
}

/// One delivery, authenticated and parsed.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub endpoint: Endpoint,
    pub key: DeliveryKey,
    pub event: Option<String>,
    pub time: EventTime,
    /// `static-secret` or `signature`.
    pub auth: &'static str,
}

/// The answer to a delivery: the first one, when it came before.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    /// JSON text, keys in the seed's order (`success` first).
    pub body: String,
    pub replayed: bool,
}

/// A JSON object whose keys keep the order given (the seed's answers read
/// `{"success", "message", "deleted_tenants"}`; a map would sort them).
struct Reply(Vec<(&'static str, Value)>);

impl Reply {
    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a JSON value serialises")
    }
}

impl Reply {
    /// `{success, message: "<done> N tenant(s)", <list>: ids}`.
    fn changed(done: &str, list: &'static str, ids: &[String]) -> Self {
        Reply(vec![
            ("success", json!(true)),
            ("message", json!(format!("{done} {} tenant(s)", ids.len()))),
            (list, json!(ids)),
        ])
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Records and applies one delivery; see the module docs.
#[tracing::instrument(skip_all, fields(endpoint = d.endpoint.slug(), delivery_id = %d.key.id))]
pub async fn apply(
    db: &PgPool,
    central: &TenantId,
    directory: &TenantDirectory,
    d: &Delivery,
    change: &Change,
) -> Result<Answer> {
    let c = central.quoted();
    let mut tx = db.begin().await?;

    let claimed: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c}.webhook_deliveries (delivery_id, id_source, endpoint, event, outcome, \
         event_at, event_at_source, auth, response_status, response_body) \
         VALUES ($1, $2, $3, $4, 'processing', $5, $6, $7, 0, '') \
         ON CONFLICT (delivery_id) DO NOTHING RETURNING 1"
    )))
    .bind(&d.key.id)
    .bind(d.key.source)
    .bind(d.endpoint.slug())
    .bind(&d.event)
    .bind(d.time.at)
    .bind(&d.time.source)
    .bind(d.auth)
    .fetch_optional(&mut *tx)
    .await?;

    if claimed.is_none() {
        let (endpoint, status, body): (String, i16, String) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT endpoint, response_status, response_body FROM {c}.webhook_deliveries \
                 WHERE delivery_id = $1"
            )))
            .bind(&d.key.id)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        if endpoint != d.endpoint.slug() {
            return Err(Error::conflict(
                "delivery_id_reused",
                format!(
                    "Delivery {} was already received by the {endpoint} webhook",
                    d.key.id
                ),
            ));
        }
        tracing::info!("redelivery: answering as the first time");
        return Ok(Answer {
            status: StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
            body,
            replayed: true,
        });
    }

    let mut changed: Vec<(TenantId, TenantStatus)> = Vec::new();
    let (outcome, body) = match change {
        Change::Unsupported { event } => (
            "unsupported",
            Reply(vec![
                ("success", json!(false)),
                ("message", json!(format!("Unsupported event: {event}"))),
            ]),
        ),
        Change::Delete { email, user_id } => {
            let reason = deleted_reason(*user_id);
            let ids = locked(
                &mut tx,
                sqlx::AssertSqlSafe(format!(
                    "SELECT tenant_id FROM {c}.tenants \
                     WHERE lower(admin_email) = lower($1) AND status IN ('active', 'suspended') \
                     ORDER BY tenant_id FOR UPDATE"
                )),
                email,
            )
            .await?;
            let detail = with_delivery(&reason, d);
            let cause = market_cause(&reason, &detail);
            let ids = set_each(&mut tx, central, &ids, TenantStatus::Deleted, cause).await?;
            changed.extend(statuses(&ids, TenantStatus::Deleted));
            (
                "applied",
                Reply::changed("Deleted", "deleted_tenants", &ids),
            )
        }
        Change::Suspend { application_id } => {
            let s = &SERVICE_CANCELLED;
            service_status(&mut tx, central, *application_id, d, s, &mut changed).await?
        }
        Change::Reinstate { application_id } => {
            let s = &SERVICE_REINSTATED;
            service_status(&mut tx, central, *application_id, d, s, &mut changed).await?
        }
        Change::SetKind {
            application_id,
            kind,
        } => match newer_than_applied(&mut tx, &c, *application_id, "kind", d).await? {
            Some(stale) => ("stale", stale.body("changed_tenants")),
            None => {
                let rows: Vec<(String, Option<String>)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "UPDATE {c}.tenants t SET application_kind = $2, updated_at = NOW() \
                         FROM (SELECT tenant_id, application_kind FROM {c}.tenants \
                               WHERE application_id = $1 AND status <> 'purged' \
                                 AND application_kind IS DISTINCT FROM $2 \
                               ORDER BY tenant_id FOR UPDATE) old \
                         WHERE t.tenant_id = old.tenant_id \
                         RETURNING t.tenant_id, old.application_kind"
                    )))
                    .bind(application_id)
                    .bind(kind)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut rows = rows;
                rows.sort();
                let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
                let details: Vec<String> = rows
                    .iter()
                    .map(|(_, old)| {
                        let old = old.as_deref().unwrap_or("unspecified");
                        with_delivery(
                            &format!(
                                "서비스 마켓 신청 유형 변경: {old} → {kind} (application {application_id})"
                            ),
                            d,
                        )
                    })
                    .collect();
                let actor = Actor::Market.as_str();
                lifecycle::record_events(&mut tx, central, &ids, "kind_changed", actor, &details)
                    .await?;
                (
                    "applied",
                    Reply(vec![
                        ("success", json!(true)),
                        (
                            "message",
                            json!(format!("Changed {} tenant(s) to {kind}", ids.len())),
                        ),
                        ("application_id", json!(application_id)),
                        ("application_kind", json!(kind)),
                        ("changed_tenants", json!(ids)),
                    ]),
                )
            }
        },
    };

    let status = StatusCode::OK;
    let body = body.to_json();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {c}.webhook_deliveries SET outcome = $2, response_status = $3, response_body = $4 \
         WHERE delivery_id = $1"
    )))
    .bind(&d.key.id)
    .bind(outcome)
    .bind(status.as_u16() as i16)
    .bind(&body)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    for (id, s) in &changed {
        directory.set(id, *s);
    }
    if !changed.is_empty() {
        tracing::info!(outcome, tenants = changed.len(), "market webhook applied");
    } else {
        tracing::info!(outcome, "market webhook recorded");
    }
    Ok(Answer {
        status,
        body,
        replayed: false,
    })
}

/// What a cancelled or reinstated service does to the application's tenants.
struct ServiceStatus {
    /// The tenants it changes, and to what.
    from: TenantStatus,
    to: TenantStatus,
    /// The history's summary, before ` (application N)`.
    summary: &'static str,
    /// The registry's `*_reason`: none when reinstating.
    reason: Option<&'static str>,
    /// The answer's message, `<done> N tenant(s)`, and its list of tenants.
    done: &'static str,
    list: &'static str,
}

const SERVICE_CANCELLED: ServiceStatus = ServiceStatus {
    from: TenantStatus::Active,
    to: TenantStatus::Suspended,
    summary: SUSPENDED_REASON,
    reason: Some(SUSPENDED_REASON),
    done: "Suspended",
    list: "suspended_tenants",
};

const SERVICE_REINSTATED: ServiceStatus = ServiceStatus {
    from: TenantStatus::Suspended,
    to: TenantStatus::Active,
    summary: "서비스 마켓 서비스 재개",
    reason: None,
    done: "Reinstated",
    list: "reinstated_tenants",
};

/// Moves the application's tenants from `s.from` to `s.to`, unless a newer status event
/// of the application was applied already (then nothing changes: `stale`). The tenants
/// changed are added to `changed`.
async fn service_status(
    tx: &mut sqlx::PgTransaction<'_>,
    central: &TenantId,
    application_id: i32,
    d: &Delivery,
    s: &ServiceStatus,
    changed: &mut Vec<(TenantId, TenantStatus)>,
) -> Result<(&'static str, Reply)> {
    let c = central.quoted();
    if let Some(stale) = newer_than_applied(tx, &c, application_id, "status", d).await? {
        return Ok(("stale", stale.body(s.list)));
    }
    let ids = of_application(tx, &c, application_id, s.from.as_str()).await?;
    let detail = with_delivery(&format!("{} (application {application_id})", s.summary), d);
    let cause = Cause {
        actor: Actor::Market.as_str(),
        reason: s.reason,
        detail: Some(&detail),
    };
    let ids = set_each(tx, central, &ids, s.to, cause).await?;
    changed.extend(statuses(&ids, s.to));
    Ok(("applied", Reply::changed(s.done, s.list, &ids)))
}

/// The last event already applied to this aspect of the application, when it is
/// newer than this delivery's (then this one must not be applied); otherwise records
/// this delivery as the last applied. Concurrent events of one application serialise
/// on its row.
async fn newer_than_applied(
    tx: &mut sqlx::PgTransaction<'_>,
    c: &str,
    application_id: i32,
    aspect: &str,
    d: &Delivery,
) -> Result<Option<Stale>> {
    let event = d.event.as_deref().unwrap_or(d.endpoint.event());
    let recorded: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c}.market_application_events AS m \
             (application_id, aspect, last_event, last_event_at, delivery_id) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (application_id, aspect) DO UPDATE \
             SET last_event = EXCLUDED.last_event, last_event_at = EXCLUDED.last_event_at, \
                 delivery_id = EXCLUDED.delivery_id, updated_at = now() \
             WHERE m.last_event_at <= EXCLUDED.last_event_at \
         RETURNING 1"
    )))
    .bind(application_id)
    .bind(aspect)
    .bind(event)
    .bind(d.time.at)
    .bind(&d.key.id)
    .fetch_optional(&mut **tx)
    .await?;
    if recorded.is_some() {
        return Ok(None);
    }
    let (last_event, last_at): (String, DateTime<Utc>) =
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT last_event, last_event_at FROM {c}.market_application_events \
             WHERE application_id = $1 AND aspect = $2"
        )))
        .bind(application_id)
        .bind(aspect)
        .fetch_one(&mut **tx)
        .await?;
    tracing::info!(%last_event, %last_at, event_at = %d.time.at, "stale market event ignored");
    Ok(Some(Stale {
        event: event.to_owned(),
        at: d.time.at,
        last_event,
        last_at,
    }))
}

struct Stale {
    event: String,
    at: DateTime<Utc>,
    last_event: String,
    last_at: DateTime<Utc>,
}

impl Stale {
    fn body(&self, list: &'static str) -> Reply {
        Reply(vec![
            ("success", json!(true)),
            ("ignored", json!(true)),
            (
                "message",
                json!(format!(
                    "Ignored: this {} of {} is older than the {} of {} already applied",
                    self.event,
                    self.at.to_rfc3339(),
                    self.last_event,
                    self.last_at.to_rfc3339()
                )),
            ),
            (list, json!([])),
        ])
    }
}

/// The ids `sql` selects (and locks) for `arg`, in order.
async fn locked(
    tx: &mut PgConnection,
    sql: impl sqlx::SqlSafeStr,
    arg: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_all(&mut *tx)
        .await?)
}

/// The application's tenants with `status`, locked, in order.
async fn of_application(
    tx: &mut PgConnection,
    c: &str,
    application_id: i32,
    status: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id FROM {c}.tenants WHERE application_id = $1 AND status = $2 \
         ORDER BY tenant_id FOR UPDATE"
    )))
    .bind(application_id)
    .bind(status)
    .fetch_all(&mut *tx)
    .await?)
}

/// The market's cause: `reason` in the registry, `detail` (naming the delivery) in the
/// history.
fn market_cause<'a>(reason: &'a str, detail: &'a str) -> Cause<'a> {
    Cause {
        actor: Actor::Market.as_str(),
        reason: Some(reason),
        detail: Some(detail),
    }
}

/// Changes each tenant's status (`tenancy::lifecycle::change_status`) and returns the
/// ids that changed.
async fn set_each(
    tx: &mut PgConnection,
    central: &TenantId,
    ids: &[String],
    to: TenantStatus,
    cause: Cause<'_>,
) -> Result<Vec<String>> {
    let mut changed = Vec::with_capacity(ids.len());
    for raw in ids {
        let Ok(id) = TenantId::parse(raw) else {
            continue;
        };
        if lifecycle::change_status(tx, central, &id, to, cause)
            .await?
            .changed()
        {
            changed.push(raw.clone());
        }
    }
    Ok(changed)
}

fn with_delivery(summary: &str, d: &Delivery) -> String {
    match d.key.source {
        "none" => summary.to_owned(),
        _ => format!("{summary} [delivery {}]", d.key.id),
    }
}

fn statuses(ids: &[String], s: TenantStatus) -> Vec<(TenantId, TenantStatus)> {
    ids.iter()
        .filter_map(|id| TenantId::parse(id).ok())
        .map(|id| (id, s))
        .collect()
}
