//! The market's webhooks: the seed's payloads and answers, authentication (static secret
//! and Standard Webhooks signatures), idempotency, order, body limits, propagation to
//! every replica, and the operator's `mtpaas webhook send`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use mtpaas::signature::sign;
use reqwest::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    API_KEY, JWT_SECRET, SUPERADMIN_TOKEN, TestApp, WEBHOOK_SECRET, assert_json_error,
};

/// The Standard Webhooks test vector's secret, and a second one for rotation.
const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SIGNING_OLD: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn path(slug: &str) -> String {
    format!("/api/tenant/webhook/{slug}")
}

/// A delivery with the static secret, as the seed's market sends it.
async fn hook(app: &TestApp, slug: &str, body: &Value) -> Response {
    app.post(&path(slug))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Same, with a `webhook-id`.
async fn hook_id(app: &TestApp, slug: &str, id: &str, body: &Value) -> Response {
    app.post(&path(slug))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .header("webhook-id", id)
        .json(body)
        .send()
        .await
        .unwrap()
}

thread_local! {
    // One client per test (each runs on a thread of its own): building one loads the
    // system's CA certificates, too slow to do per request in a test that checks
    // timestamps to the second.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

/// A signed delivery: `signature` overrides the computed header.
async fn signed(
    url: &str,
    slug: &str,
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
    signature: Option<&str>,
) -> Response {
    let sig = match signature {
        Some(s) => s.to_owned(),
        None => sign(secret, id, ts, body).unwrap(),
    };
    CLIENT
        .with(reqwest::Client::clone)
        .post(format!("{url}{}", path(slug)))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn ok_json(resp: Response) -> Value {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn status_of(app: &TestApp, tenant: &str) -> String {
    sqlx::query_scalar("SELECT status FROM hltutor.tenants WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// (event, actor, detail) of a tenant's history, oldest first.
async fn history(app: &TestApp, tenant: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "SELECT event, actor, detail FROM hltutor.tenant_events WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.scalar_i64(sql).await
}

/// `GET /api/users` of `tenant` on the server at `url`, with its admin's token.
async fn users_status(app: &TestApp, url: &str, tenant: &str) -> u16 {
    app.client
        .get(format!("{url}/api/users"))
        .header("X-Tenant-ID", tenant)
        .bearer_auth(app.token(tenant, 1, "admin"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `GET /api/users` answers `want`; the time it took, or None after 3 s.
async fn time_until(app: &TestApp, url: &str, tenant: &str, want: u16) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if users_status(app, url, tenant).await == want {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

// --- the seed's flows --------------------------------------------------------------

#[tokio::test]
async fn the_seeds_user_deleted_curl_soft_deletes_the_tenant_and_keeps_its_data() {
    let app = TestApp::spawn().await;
    let mut body = TestApp::create_body("test_univ", 1);
    body["admin_email"] = json!("admin@test.ac.kr");
    assert_eq!(app.create_tenant_raw(&body).await.status(), 200);
    app.create_tenant("other_univ", 2).await;

    // Seed 7.2.1, byte for byte.
    let resp = app
        .post("/api/tenant/webhook/user-deleted")
        .header("Content-Type", "application/json")
        .header("X-Webhook-Secret", "webhook_secret_12345")
        .body(
            r#"{
    "event": "user.deleted",
    "user_id": 123,
    "email": "admin@test.ac.kr",
    "university_name": "테스트대학교",
    "deleted_at": "2026-01-08T10:00:00"
  }"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    // The guide's answer, in its key order.
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"success":true,"message":"Deleted 1 tenant(s)","deleted_tenants":["test_univ"]}"#
    );

    let (status, deleted_at, reason): (String, Option<chrono::NaiveDateTime>, Option<String>) =
        sqlx::query_as(
            "SELECT status, deleted_at, deleted_reason FROM hltutor.tenants WHERE tenant_id = 'test_univ'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "deleted");
    assert!(deleted_at.is_some());
    assert_eq!(
        reason.as_deref(),
        Some("서비스 마켓 회원 탈퇴 (user_id=123)")
    );
    assert_eq!(status_of(&app, "other_univ").await, "active");

    // Soft: the schema and its rows are all there; the tenant answers 410.
    assert!(app.schema_exists("test_univ").await);
    assert_eq!(
        count(&app, "SELECT count(*) FROM test_univ.user_mst").await,
        1
    );
    assert_eq!(users_status(&app, &app.address, "test_univ").await, 410);

    let h = history(&app, "test_univ").await;
    let last = h.last().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("deleted", "market"));
    assert!(last.2.contains("user_id=123"), "{last:?}");

    // The same call again deletes nothing more and keeps the first deletion's time.
    let again = hook(
        &app,
        "user-deleted",
        &json!({"event": "user.deleted", "user_id": 123, "email": "admin@test.ac.kr", "deleted_at": "2026-01-08T10:00:00"}),
    )
    .await;
    assert_eq!(
        ok_json(again).await,
        json!({"success": true, "message": "Deleted 0 tenant(s)", "deleted_tenants": []})
    );
    let deleted_at_again: Option<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT deleted_at FROM hltutor.tenants WHERE tenant_id = 'test_univ'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(deleted_at_again, deleted_at);
    assert_eq!(history(&app, "test_univ").await.len(), h.len());
}

#[tokio::test]
async fn user_deleted_takes_every_tenant_of_the_email_including_suspended_ones() {
    let app = TestApp::spawn().await;
    for (id, app_id) in [("one_u", 1), ("two_u", 2), ("else_u", 3)] {
        let mut body = TestApp::create_body(id, app_id);
        if id != "else_u" {
            body["admin_email"] = json!("Owner@Univ.ac.kr");
        }
        assert_eq!(app.create_tenant_raw(&body).await.status(), 200);
    }
    ok_json(hook(&app, "service-cancelled", &json!({"application_id": 2})).await).await;

    let resp = hook(
        &app,
        "user-deleted",
        &json!({"event": "user.deleted", "user_id": "7", "email": "owner@univ.ac.kr", "new_field": {"x": 1}}),
    )
    .await;
    assert_eq!(
        ok_json(resp).await,
        json!({"success": true, "message": "Deleted 2 tenant(s)", "deleted_tenants": ["one_u", "two_u"]})
    );
    assert_eq!(status_of(&app, "two_u").await, "deleted");
    assert_eq!(status_of(&app, "else_u").await, "active");
}

#[tokio::test]
async fn an_unsupported_event_answers_success_false_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("keep_u", 1).await;
    let events_before = count(&app, "SELECT count(*) FROM hltutor.tenant_events").await;
    let resp = hook(
        &app,
        "user-deleted",
        &json!({"event": "user.updated", "user_id": 1, "email": "admin@keep_u.ac.kr", "deleted_at": "2026-01-08T10:00:00"}),
    )
    .await;
    assert_eq!(
        ok_json(resp).await,
        json!({"success": false, "message": "Unsupported event: user.updated"})
    );
    // A service route given another route's event does nothing either.
    let resp = hook(
        &app,
        "service-cancelled",
        &json!({"event": "service.reinstated", "application_id": 1}),
    )
    .await;
    assert_eq!(
        ok_json(resp).await,
        json!({"success": false, "message": "Unsupported event: service.reinstated"})
    );
    assert_eq!(status_of(&app, "keep_u").await, "active");
    assert_eq!(
        count(&app, "SELECT count(*) FROM hltutor.tenant_events").await,
        events_before
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM hltutor.webhook_deliveries WHERE outcome = 'unsupported'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn service_cancelled_suspends_the_applications_tenants_and_they_get_403_at_once() {
    let app = TestApp::spawn().await;
    app.create_tenant("b_univ", 5).await;
    app.create_tenant("a_univ", 5).await;
    app.create_tenant("c_univ", 6).await;
    assert_eq!(users_status(&app, &app.address, "a_univ").await, 200);

    // Seed 6.2's body: only application_id.
    let resp = hook(&app, "service-cancelled", &json!({"application_id": 5})).await;
    let body = ok_json(resp).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["suspended_tenants"], json!(["a_univ", "b_univ"]));

    // No waiting: this server's directory changed with the commit.
    assert_eq!(users_status(&app, &app.address, "a_univ").await, 403);
    let err = assert_json_error(
        app.get("/api/users")
            .header("X-Tenant-ID", "b_univ")
            .bearer_auth(app.token("b_univ", 1, "admin"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(err["code"], "tenant_suspended");
    assert_eq!(users_status(&app, &app.address, "c_univ").await, 200);

    let (status, at, reason): (String, Option<chrono::NaiveDateTime>, Option<String>) =
        sqlx::query_as(
            "SELECT status, suspended_at, suspended_reason FROM hltutor.tenants WHERE tenant_id = 'a_univ'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "suspended");
    assert!(at.is_some());
    assert_eq!(reason.as_deref(), Some("서비스 마켓 서비스 해지"));
    let last = history(&app, "a_univ").await.pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str()), ("suspended", "market"));
    assert!(last.2.contains("application 5"), "{last:?}");
}

#[tokio::test]
async fn a_reinstated_tenant_finds_its_users_and_chats_as_they_were() {
    let app = TestApp::spawn().await;
    app.create_tenant("back_u", 8).await;
    sqlx::query("INSERT INTO back_u.user_mst (email, name) VALUES ('s1@back.kr', '학생')")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO back_u.chat_his (user_id, message, reply) SELECT id, '안녕', '안녕하세요' FROM back_u.user_mst",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let snapshot =
        "SELECT count(*) FROM back_u.chat_his c JOIN back_u.user_mst u ON u.id = c.user_id";
    assert_eq!(count(&app, snapshot).await, 2);

    ok_json(hook(&app, "service-cancelled", &json!({"application_id": 8})).await).await;
    assert_eq!(users_status(&app, &app.address, "back_u").await, 403);

    let resp = hook(&app, "service-reinstated", &json!({"application_id": 8})).await;
    let body = ok_json(resp).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["reinstated_tenants"], json!(["back_u"]));

    let resp = app
        .get("/api/users")
        .header("X-Tenant-ID", "back_u")
        .bearer_auth(app.token("back_u", 1, "admin"))
        .send()
        .await
        .unwrap();
    let users = ok_json(resp).await;
    let emails: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@back_u.ac.kr", "s1@back.kr"]);
    assert_eq!(count(&app, snapshot).await, 2);

    let (status, at, reason): (String, Option<chrono::NaiveDateTime>, Option<String>) =
        sqlx::query_as(
            "SELECT status, suspended_at, suspended_reason FROM hltutor.tenants WHERE tenant_id = 'back_u'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((status.as_str(), at, reason), ("active", None, None));
    let events: Vec<String> = history(&app, "back_u")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(events, ["created", "suspended", "reinstated"]);

    // A deleted tenant is not brought back by a reinstatement.
    ok_json(
        hook(
            &app,
            "user-deleted",
            &json!({"event": "user.deleted", "user_id": 1, "email": "admin@back_u.ac.kr"}),
        )
        .await,
    )
    .await;
    let body = ok_json(hook(&app, "service-reinstated", &json!({"application_id": 8})).await).await;
    assert_eq!(body["reinstated_tenants"], json!([]));
    assert_eq!(status_of(&app, "back_u").await, "deleted");
}

#[tokio::test]
async fn service_changed_converts_demo_to_service_and_back() {
    let app = TestApp::spawn().await;
    let mut body = TestApp::create_body("demo_u", 12);
    body["application_kind"] = json!("demo");
    assert_eq!(app.create_tenant_raw(&body).await.status(), 200);
    let kind = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT application_kind FROM hltutor.tenants WHERE tenant_id = 'demo_u'",
            )
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };

    let resp = hook(
        &app,
        "service-changed",
        &json!({"application_id": 12, "application_kind": "service"}),
    )
    .await;
    let body = ok_json(resp).await;
    assert_eq!(body["changed_tenants"], json!(["demo_u"]));
    assert_eq!(body["application_kind"], "service");
    assert_eq!(kind(&app).await.as_deref(), Some("service"));
    let last = history(&app, "demo_u").await.pop().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("kind_changed", "market")
    );
    assert!(last.2.contains("demo → service"), "{last:?}");
    // Still usable: a kind change is not a status change.
    assert_eq!(users_status(&app, &app.address, "demo_u").await, 200);

    // The same kind again changes nothing and writes no history.
    let n = history(&app, "demo_u").await.len();
    let body = ok_json(
        hook(
            &app,
            "service-changed",
            &json!({"application_id": 12, "application_kind": "service"}),
        )
        .await,
    )
    .await;
    assert_eq!(body["changed_tenants"], json!([]));
    assert_eq!(history(&app, "demo_u").await.len(), n);

    ok_json(
        hook(
            &app,
            "service-changed",
            &json!({"application_id": "12", "application_kind": "demo"}),
        )
        .await,
    )
    .await;
    assert_eq!(kind(&app).await.as_deref(), Some("demo"));

    let bad = hook(
        &app,
        "service-changed",
        &json!({"application_id": 12, "application_kind": "premium"}),
    )
    .await;
    assert_json_error(bad, 422).await;
    assert_eq!(kind(&app).await.as_deref(), Some("demo"));
}

// --- authentication ----------------------------------------------------------------

#[tokio::test]
async fn a_missing_or_wrong_secret_gets_401_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("safe_u", 3).await;
    let body = json!({"application_id": 3});
    for secret in [
        None,
        Some(""),
        Some("wrong"),
        Some("webhook_secret_1234"),
        Some("webhook_secret_123456"),
    ] {
        let mut req = app.post(&path("service-cancelled")).json(&body);
        if let Some(s) = secret {
            req = req.header("X-Webhook-Secret", s);
        }
        let err = assert_json_error(req.send().await.unwrap(), 401).await;
        assert_eq!(err["detail"], "Invalid webhook secret", "{secret:?}");
    }
    // A signature without a configured signing secret is no way in either.
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "msg_1",
        now(),
        body.to_string().as_bytes(),
        None,
    )
    .await;
    assert_json_error(resp, 401).await;
    for slug in ["user-deleted", "service-reinstated", "service-changed"] {
        let resp = app.post(&path(slug)).json(&body).send().await.unwrap();
        assert_json_error(resp, 401).await;
    }
    assert_eq!(status_of(&app, "safe_u").await, "active");
    assert_eq!(
        count(&app, "SELECT count(*) FROM hltutor.webhook_deliveries").await,
        0
    );
}

#[tokio::test]
async fn with_no_secret_configured_every_delivery_is_refused() {
    let app = TestApp::spawn().await;
    app.create_tenant("closed_u", 4).await;
    // The same service with neither webhook secret (configuration can produce this
    // only by hand; it must fail closed all the same).
    let mut config = (*app.state.config).clone();
    config.webhook_secret = None;
    config.webhook_signing_secret = None;
    let mut state = app.state.clone();
    state.config = Arc::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            mtpaas::app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    for slug in [
        "user-deleted",
        "service-cancelled",
        "service-reinstated",
        "service-changed",
    ] {
        for secret in ["", WEBHOOK_SECRET, "anything"] {
            let resp = app
                .client
                .post(format!("{url}{}", path(slug)))
                .header("X-Webhook-Secret", secret)
                .json(&json!({"application_id": 4, "application_kind": "service", "event": "user.deleted", "user_id": 1, "email": "admin@closed_u.ac.kr"}))
                .send()
                .await
                .unwrap();
            let err = assert_json_error(resp, 503).await;
            assert_eq!(err["code"], "webhooks_not_configured");
        }
    }
    assert_eq!(status_of(&app, "closed_u").await, "active");
}

#[tokio::test]
async fn signed_deliveries_are_verified_and_either_side_may_rotate_keys() {
    // The server accepts two secrets while rotating.
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "WEBHOOK_SIGNING_SECRET".into(),
            format!("{SIGNING} {SIGNING_OLD}"),
        );
    })
    .await;
    app.create_tenant("sig_u", 21).await;
    app.create_tenant("sig_v", 22).await;
    let body = json!({"application_id": 21}).to_string();
    let b = body.as_bytes();
    let refused = |resp: Response, code: &'static str| async move {
        let err = assert_json_error(resp, 401).await;
        assert_eq!(err["detail"], "Invalid webhook secret");
        assert_eq!(err["code"], code);
    };

    // Refused: a bare `v1,`, another key, another body, another id, a stale timestamp.
    let ts = now();
    for sig in ["v1,", "v1", "", "v2,abc"] {
        let resp = signed(
            &app.address,
            "service-cancelled",
            SIGNING,
            "msg_a",
            ts,
            b,
            Some(sig),
        )
        .await;
        refused(resp, "invalid_webhook_signature").await;
    }
    let other_key = "whsec_dGhpcyBpcyBhbm90aGVyIGtleSBlbnRpcmVseQ==";
    let resp = signed(
        &app.address,
        "service-cancelled",
        other_key,
        "msg_a",
        ts,
        b,
        None,
    )
    .await;
    refused(resp, "invalid_webhook_signature").await;
    let sig_other_body = sign(SIGNING, "msg_a", ts, br#"{"application_id": 22}"#).unwrap();
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "msg_a",
        ts,
        b,
        Some(&sig_other_body),
    )
    .await;
    refused(resp, "invalid_webhook_signature").await;
    let sig_other_id = sign(SIGNING, "msg_b", ts, b).unwrap();
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "msg_a",
        ts,
        b,
        Some(&sig_other_id),
    )
    .await;
    refused(resp, "invalid_webhook_signature").await;
    // Just outside ±300 s of the server's clock when it checks (from a fresh `now()`:
    // `ts` is a second old once the second ticks over).
    for off in [-302, 302] {
        let stale = now() + off;
        let resp = signed(
            &app.address,
            "service-cancelled",
            SIGNING,
            "msg_a",
            stale,
            b,
            None,
        )
        .await;
        refused(resp, "webhook_timestamp_out_of_range").await;
    }
    assert_eq!(status_of(&app, "sig_u").await, "active");

    // Accepted: the old key alone, and a list in which one signature matches.
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING_OLD,
        "msg_old",
        ts,
        b,
        None,
    )
    .await;
    assert_eq!(ok_json(resp).await["suspended_tenants"], json!(["sig_u"]));
    let good = sign(SIGNING, "msg_multi", ts, br#"{"application_id": 22}"#).unwrap();
    let list = format!("v1,bm90IGEgc2lnbmF0dXJl v1, {good}");
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "msg_multi",
        ts,
        br#"{"application_id": 22}"#,
        Some(&list),
    )
    .await;
    assert_eq!(ok_json(resp).await["suspended_tenants"], json!(["sig_v"]));

    // The static secret still works alongside (signatures are not required).
    let resp = hook(&app, "service-reinstated", &json!({"application_id": 21})).await;
    assert_eq!(ok_json(resp).await["reinstated_tenants"], json!(["sig_u"]));

    let auths: Vec<(String, String)> = sqlx::query_as(
        "SELECT delivery_id, auth FROM hltutor.webhook_deliveries WHERE id_source = 'webhook-id' ORDER BY received_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        auths,
        [
            ("msg_old".to_owned(), "signature".to_owned()),
            ("msg_multi".to_owned(), "signature".to_owned())
        ]
    );
}

#[tokio::test]
async fn with_signatures_required_the_static_secret_alone_is_refused() {
    let app = TestApp::spawn_with(|env| {
        env.insert("WEBHOOK_SIGNING_SECRET".into(), SIGNING.into());
        env.insert("WEBHOOK_REQUIRE_SIGNATURE".into(), "true".into());
    })
    .await;
    app.create_tenant("strict_u", 23).await;
    let resp = hook(&app, "service-cancelled", &json!({"application_id": 23})).await;
    let err = assert_json_error(resp, 401).await;
    assert_eq!(err["code"], "webhook_signature_required");
    assert_eq!(status_of(&app, "strict_u").await, "active");

    let body = br#"{"application_id":23}"#;
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "msg_s",
        now(),
        body,
        None,
    )
    .await;
    assert_eq!(
        ok_json(resp).await["suspended_tenants"],
        json!(["strict_u"])
    );
}

#[tokio::test]
async fn an_unusable_signing_secret_stops_start_up_naming_it() {
    for bad in ["not-base64!", "whsec_c2hvcnQ="] {
        let mut env = crate::helpers::base_env("postgres://x@127.0.0.1/x");
        env.insert("WEBHOOK_SIGNING_SECRET".into(), bad.into());
        let err = mtpaas::config::Config::from_source(&env).unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_SIGNING_SECRET"), "{err}");
        assert!(
            !err.to_string().contains(bad),
            "the secret must not be shown: {err}"
        );
    }
}

// --- idempotency -------------------------------------------------------------------

#[tokio::test]
async fn a_redelivery_returns_the_first_answer_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_tenant("redo_u", 31).await;
    let cancel = json!({"application_id": 31, "cancelled_at": "2026-01-08T10:00:00Z"});
    let first = hook_id(&app, "service-cancelled", "msg_cancel_1", &cancel).await;
    assert!(first.headers().get("webhook-replayed").is_none());
    let first = ok_json(first).await;
    assert_eq!(first["suspended_tenants"], json!(["redo_u"]));

    let reinstate = json!({"application_id": 31, "reinstated_at": "2026-01-08T11:00:00Z"});
    ok_json(hook_id(&app, "service-reinstated", "msg_reinstate_1", &reinstate).await).await;
    assert_eq!(status_of(&app, "redo_u").await, "active");
    let events = history(&app, "redo_u").await.len();

    // The market retries the cancellation: same answer, and the tenant stays active.
    let again = hook_id(&app, "service-cancelled", "msg_cancel_1", &cancel).await;
    assert_eq!(
        again
            .headers()
            .get("webhook-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    assert_eq!(ok_json(again).await, first);
    assert_eq!(status_of(&app, "redo_u").await, "active");
    assert_eq!(history(&app, "redo_u").await.len(), events);

    // Without a webhook-id, the market's event_id is the key.
    let del =
        json!({"event": "user.deleted", "event_id": 9001, "user_id": 5, "email": "nobody@x.kr"});
    let a = ok_json(hook(&app, "user-deleted", &del).await).await;
    let b = hook(&app, "user-deleted", &del).await;
    assert!(b.headers().get("webhook-replayed").is_some());
    assert_eq!(ok_json(b).await, a);
    assert_eq!(
        count(&app, "SELECT count(*) FROM hltutor.webhook_deliveries WHERE delivery_id = 'event:user-deleted:9001'").await,
        1
    );

    // One id is one event: reused for another route, it is a conflict.
    let reused = hook_id(&app, "service-reinstated", "msg_cancel_1", &reinstate).await;
    let err = assert_json_error(reused, 409).await;
    assert_eq!(err["code"], "delivery_id_reused");
}

#[tokio::test]
async fn ten_concurrent_copies_of_a_delivery_apply_once_and_write_one_event() {
    let app = TestApp::spawn_with(|env| {
        env.insert("WEBHOOK_SIGNING_SECRET".into(), SIGNING.into());
    })
    .await;
    app.create_tenant("race_u", 41).await;
    app.create_tenant("race_v", 42).await;

    // Signed: every copy identical, as a retrying market sends them.
    let body = br#"{"application_id":41}"#.to_vec();
    let ts = now();
    let answers = join_all((0..10).map(|_| {
        signed(
            &app.address,
            "service-cancelled",
            SIGNING,
            "msg_race",
            ts,
            &body,
            None,
        )
    }))
    .await;
    let mut fresh = 0;
    let mut bodies = Vec::new();
    for resp in answers {
        if resp.headers().get("webhook-replayed").is_none() {
            fresh += 1;
        }
        bodies.push(ok_json(resp).await);
    }
    assert_eq!(fresh, 1, "exactly one copy applied the change");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0]["suspended_tenants"], json!(["race_u"]));
    let suspended = count(
        &app,
        "SELECT count(*) FROM hltutor.tenant_events WHERE tenant_id = 'race_u' AND event = 'suspended'",
    )
    .await;
    assert_eq!(suspended, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM hltutor.webhook_deliveries").await,
        1
    );

    // The same with the static secret and a user deletion.
    let del = json!({"event": "user.deleted", "user_id": 9, "email": "admin@race_v.ac.kr"});
    let answers =
        join_all((0..10).map(|_| hook_id(&app, "user-deleted", "msg_race_del", &del))).await;
    let mut bodies = Vec::new();
    for resp in answers {
        bodies.push(ok_json(resp).await);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0]["deleted_tenants"], json!(["race_v"]));
    assert_eq!(
        count(&app, "SELECT count(*) FROM hltutor.tenant_events WHERE tenant_id = 'race_v' AND event = 'deleted'").await,
        1
    );
}

// --- order -------------------------------------------------------------------------

#[tokio::test]
async fn a_late_cancellation_older_than_the_reinstatement_is_recorded_and_ignored() {
    let app = TestApp::spawn().await;
    app.create_tenant("late_u", 51).await;
    let at = |h: u32| format!("2026-01-08T{h:02}:00:00+09:00");

    ok_json(
        hook_id(
            &app,
            "service-cancelled",
            "m1",
            &json!({"application_id": 51, "cancelled_at": at(9)}),
        )
        .await,
    )
    .await;
    ok_json(
        hook_id(
            &app,
            "service-reinstated",
            "m3",
            &json!({"application_id": 51, "reinstated_at": at(11)}),
        )
        .await,
    )
    .await;
    assert_eq!(status_of(&app, "late_u").await, "active");
    let events = history(&app, "late_u").await.len();

    // A second cancellation, stamped 10:00, arrives after the 11:00 reinstatement.
    let resp = hook_id(
        &app,
        "service-cancelled",
        "m2",
        &json!({"application_id": 51, "cancelled_at": at(10)}),
    )
    .await;
    let body = ok_json(resp).await;
    assert_eq!(body["success"], true);
    assert_eq!(body["ignored"], true);
    assert_eq!(body["suspended_tenants"], json!([]));
    assert!(
        body["message"].as_str().unwrap().contains("older"),
        "{body}"
    );
    assert_eq!(status_of(&app, "late_u").await, "active");
    assert_eq!(users_status(&app, &app.address, "late_u").await, 200);
    assert_eq!(history(&app, "late_u").await.len(), events);
    let (outcome, source): (String, String) = sqlx::query_as(
        "SELECT outcome, event_at_source FROM hltutor.webhook_deliveries WHERE delivery_id = 'm2'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (outcome.as_str(), source.as_str()),
        ("stale", "cancelled_at")
    );

    // A newer cancellation still applies; the kind is ordered on its own.
    ok_json(
        hook(
            &app,
            "service-changed",
            &json!({"application_id": 51, "application_kind": "demo", "changed_at": at(8)}),
        )
        .await,
    )
    .await;
    let body = ok_json(
        hook(
            &app,
            "service-cancelled",
            &json!({"application_id": 51, "occurred_at": at(12)}),
        )
        .await,
    )
    .await;
    assert_eq!(body["suspended_tenants"], json!(["late_u"]));
    let kind: String = sqlx::query_scalar(
        "SELECT application_kind FROM hltutor.tenants WHERE tenant_id = 'late_u'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kind, "demo");
}

#[tokio::test]
async fn without_payload_times_the_signed_timestamp_orders_events() {
    let app = TestApp::spawn_with(|env| {
        env.insert("WEBHOOK_SIGNING_SECRET".into(), SIGNING.into());
    })
    .await;
    app.create_tenant("ts_u", 52).await;
    let t = now();
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "s1",
        t - 200,
        br#"{"application_id":52}"#,
        None,
    )
    .await;
    ok_json(resp).await;
    let resp = signed(
        &app.address,
        "service-reinstated",
        SIGNING,
        "s3",
        t,
        br#"{"application_id":52}"#,
        None,
    )
    .await;
    ok_json(resp).await;
    // Sent 100 s before the reinstatement, delivered after it.
    let resp = signed(
        &app.address,
        "service-cancelled",
        SIGNING,
        "s2",
        t - 100,
        br#"{"application_id":52}"#,
        None,
    )
    .await;
    assert_eq!(ok_json(resp).await["ignored"], true);
    assert_eq!(status_of(&app, "ts_u").await, "active");
}

// --- bodies ------------------------------------------------------------------------

/// A raw HTTP/1.1 request with a chunked body (no Content-Length); the status code.
async fn chunked_post(addr: &str, path: &str, secret: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Webhook-Secret: {secret}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(8192) {
        // The server may answer and close before the whole body is sent.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || s.write_all(chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn bodies_over_64_kib_get_413_and_up_to_64_kib_are_read() {
    let app = TestApp::spawn().await;
    app.create_tenant("big_u", 61).await;
    let padded = |size: usize| {
        let base = r#"{"event":"user.deleted","user_id":1,"email":"admin@big_u.ac.kr","pad":""}"#;
        let pad = "a".repeat(size - base.len());
        base.replace(r#""pad":"""#, &format!(r#""pad":"{pad}""#))
    };
    let over = padded(64 * 1024 + 1);
    let resp = app
        .post(&path("user-deleted"))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .header("content-type", "application/json")
        .body(over.clone())
        .send()
        .await
        .unwrap();
    let err = assert_json_error(resp, 413).await;
    assert_eq!(err["code"], "payload_too_large");
    assert_eq!(
        chunked_post(
            &app.address,
            &path("user-deleted"),
            WEBHOOK_SECRET,
            over.as_bytes()
        )
        .await,
        413
    );
    for slug in ["service-cancelled", "service-reinstated", "service-changed"] {
        let resp = app
            .post(&path(slug))
            .header("X-Webhook-Secret", WEBHOOK_SECRET)
            .body(vec![b' '; 200 * 1024])
            .send()
            .await
            .unwrap();
        assert_json_error(resp, 413).await;
    }
    assert_eq!(status_of(&app, "big_u").await, "active");

    let exact = padded(64 * 1024);
    let resp = app
        .post(&path("user-deleted"))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .body(exact)
        .send()
        .await
        .unwrap();
    assert_eq!(ok_json(resp).await["deleted_tenants"], json!(["big_u"]));
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_json_error_and_no_body_gets_a_5xx() {
    let app = TestApp::spawn().await;
    app.create_tenant("odd_u", 71).await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("user-deleted", b"{".to_vec(), 400),
        ("user-deleted", b"".to_vec(), 400),
        ("user-deleted", b"not json".to_vec(), 400),
        ("user-deleted", vec![0xff, 0xfe, b'{', b'}'], 400),
        ("user-deleted", b"[]".to_vec(), 422),
        ("user-deleted", b"null".to_vec(), 422),
        ("user-deleted", b"42".to_vec(), 422),
        (
            "user-deleted",
            br#"{"user_id":1,"email":"admin@odd_u.ac.kr"}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","email":"admin@odd_u.ac.kr"}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","user_id":"abc","email":"a@b.kr"}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","user_id":1,"email":"admin@odd_u.ac.kr\u0000"}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":7,"user_id":1,"email":"admin@odd_u.ac.kr"}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","user_id":1,"email":""}"#.to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","user_id":1,"email":"a@b.kr","deleted_at":"someday"}"#
                .to_vec(),
            422,
        ),
        (
            "user-deleted",
            br#"{"event":"user.deleted","user_id":1e999,"email":"a@b.kr"}"#.to_vec(),
            400,
        ),
        ("service-cancelled", br#"{}"#.to_vec(), 422),
        (
            "service-cancelled",
            br#"{"application_id":null}"#.to_vec(),
            422,
        ),
        (
            "service-cancelled",
            br#"{"application_id":-1}"#.to_vec(),
            422,
        ),
        (
            "service-cancelled",
            br#"{"application_id":99999999999}"#.to_vec(),
            422,
        ),
        (
            "service-cancelled",
            br#"{"application_id":71,"event_id":{"x":1}}"#.to_vec(),
            422,
        ),
        (
            "service-reinstated",
            br#"{"application_id":[71]}"#.to_vec(),
            422,
        ),
        ("service-changed", br#"{"application_id":71}"#.to_vec(), 422),
        (
            "service-changed",
            br#"{"application_id":71,"application_kind":null}"#.to_vec(),
            422,
        ),
    ];
    for (slug, body, want) in cases {
        let resp = app
            .post(&path(slug))
            .header("X-Webhook-Secret", WEBHOOK_SECRET)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let err = assert_json_error(resp, want).await;
        assert!(
            err["code"] == "malformed_json" || err["code"] == "invalid_body",
            "{slug} {:?}: {err}",
            String::from_utf8_lossy(&body)
        );
    }
    // Deep nesting and random bytes: always an answer, never a 5xx.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut bodies: Vec<Vec<u8>> = vec![deep.into_bytes()];
    const ALPHABET: &[u8] = b"{}[]\":,0123456789aeu. \\\n";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..150 {
        let len = (i * 7) % 300;
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b.push(ALPHABET[(seed % ALPHABET.len() as u64) as usize]);
        }
        bodies.push(b);
    }
    for body in bodies {
        for slug in ["user-deleted", "service-cancelled", "service-changed"] {
            let resp = app
                .post(&path(slug))
                .header("X-Webhook-Secret", WEBHOOK_SECRET)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            assert!(
                (200..500).contains(&status),
                "{slug} {status}: {:?}",
                String::from_utf8_lossy(&body)
            );
            if status != 200 {
                assert_json_error(resp, status).await;
            }
        }
    }
    assert_eq!(status_of(&app, "odd_u").await, "active");
}

// --- replicas ----------------------------------------------------------------------

/// The real binary as a second server process on the test's database.
struct ServerProcess {
    child: tokio::process::Child,
    url: String,
}

impl ServerProcess {
    async fn start(database_url: &str) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mtpaas"))
            .arg("serve")
            .current_dir(std::env::temp_dir())
            .env("MTPAAS_ENV", "development")
            .env("DATABASE_URL", database_url)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("TENANT_API_KEY", API_KEY)
            .env("SERVICE_MARKET_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("SUPERADMIN_TOKEN", SUPERADMIN_TOKEN)
            .env("JWT_SECRET", JWT_SECRET)
            .env("PUBLIC_BASE_URL", "https://myservice.k-university.ai")
            .env("DB_MAX_CONNECTIONS", "5")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the mtpaas binary starts");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{url}/api/health")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the mtpaas process did not come up on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ServerProcess { child, url }
    }
}

#[tokio::test]
async fn a_suspension_reaches_every_replica_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    let mut c = ServerProcess::start(&a.database_url).await;
    a.create_tenant("every_u", 81).await;
    let replicas = [a.address.clone(), b.address.clone(), c.url.clone()];
    for url in &replicas {
        // Each replica knows the tenant as active (its cache is warm).
        assert_eq!(users_status(&a, url, "every_u").await, 200, "{url}");
    }

    ok_json(hook(&a, "service-cancelled", &json!({"application_id": 81})).await).await;
    for url in &replicas {
        let took = time_until(&a, url, "every_u", 403).await;
        eprintln!("suspension seen by {url} after {took:?}");
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(1)),
            "{url}: {took:?}"
        );
    }

    // Reinstated through another replica (the separate process), back everywhere.
    let resp = a
        .client
        .post(format!("{}{}", c.url, path("service-reinstated")))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .json(&json!({"application_id": 81}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok_json(resp).await["reinstated_tenants"],
        json!(["every_u"])
    );
    for url in &replicas {
        let took = time_until(&a, url, "every_u", 200).await;
        eprintln!("reinstatement seen by {url} after {took:?}");
        assert!(
            took.is_some_and(|t| t < Duration::from_secs(1)),
            "{url}: {took:?}"
        );
    }
    c.child.kill().await.unwrap();
}

// --- the operator's tool -----------------------------------------------------------

async fn cli(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mtpaas"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("MTPAAS_ENV", "development")
        .env_remove("WEBHOOK_SIGNING_SECRET")
        .env_remove("SERVICE_MARKET_WEBHOOK_SECRET")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn mtpaas_webhook_send_delivers_a_signed_webhook() {
    let app = TestApp::spawn_with(|env| {
        env.insert("WEBHOOK_SIGNING_SECRET".into(), SIGNING.into());
        env.insert("WEBHOOK_REQUIRE_SIGNATURE".into(), "true".into());
    })
    .await;
    app.create_tenant("cli_u", 91).await;

    let out = cli(&[
        "webhook",
        "send",
        "service-cancelled",
        "--url",
        &app.address,
        "--secret",
        SIGNING,
        "--data",
        r#"{"application_id": 91}"#,
        "--id",
        "msg_cli_1",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("HTTP 200"), "{stdout}");
    assert!(
        stdout.contains(r#""suspended_tenants":["cli_u"]"#),
        "{stdout}"
    );
    assert!(stdout.contains("webhook-signature: v1,"), "{stdout}");
    assert_eq!(status_of(&app, "cli_u").await, "suspended");

    // The same id again: the first answer, flagged as a redelivery.
    let out = cli(&[
        "webhook",
        "send",
        "service.cancelled",
        "--url",
        &app.address,
        "--secret",
        SIGNING,
        "--data",
        r#"{"application_id": 91}"#,
        "--id",
        "msg_cli_1",
    ])
    .await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("redelivery"));

    // A wrong secret: the server's 401 is shown and the exit status says it failed.
    let out = cli(&[
        "webhook",
        "send",
        "service-reinstated",
        "--url",
        &app.address,
        "--secret",
        SIGNING_OLD,
        "--data",
        r#"{"application_id": 91}"#,
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("HTTP 401"));
    assert_eq!(status_of(&app, "cli_u").await, "suspended");

    // Bad input is refused before anything is sent.
    let out = cli(&[
        "webhook",
        "send",
        "user-exploded",
        "--url",
        &app.address,
        "--secret",
        SIGNING,
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown event"));
    let out = cli(&["webhook", "send", "user-deleted", "--url", &app.address]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no secret"));
}
