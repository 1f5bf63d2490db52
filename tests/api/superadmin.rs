//! The operator's API: the guard, listing, one tenant, history, usage and the actions.

use std::time::Duration;

use mtpaas::auth::jwt::Claims;
use mtpaas::auth::superadmin::{SuperAdminClaims, issue_token};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{API_KEY, JWT_SECRET, SUPERADMIN_TOKEN, TestApp, assert_json_error};

fn op_jwt(secret: &str, claims: &SuperAdminClaims) -> String {
    issue_token(&SecretString::from(secret.to_owned()), claims)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn op(app: &TestApp, method: Method, path: &str) -> reqwest::Response {
    app.request(method, path)
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap()
}

async fn op_json(app: &TestApp, method: Method, path: &str) -> Value {
    let resp = op(app, method, path).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn act(app: &TestApp, tenant: &str, action: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = app
        .post(&format!("/api/tenant/superadmin/tenants/{tenant}/{action}"))
        .bearer_auth(SUPERADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_superadmin_route_refuses_anyone_but_the_operator() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    let routes = [
        (Method::GET, "/api/tenant/superadmin/tenants"),
        (Method::GET, "/api/tenant/superadmin/tenants/univ_8"),
        (Method::GET, "/api/tenant/superadmin/tenants/univ_8/history"),
        (Method::GET, "/api/tenant/superadmin/tenants/univ_8/usage"),
        (
            Method::POST,
            "/api/tenant/superadmin/tenants/univ_8/suspend",
        ),
        (
            Method::POST,
            "/api/tenant/superadmin/tenants/univ_8/reinstate",
        ),
        (Method::POST, "/api/tenant/superadmin/tenants/univ_8/delete"),
        (Method::GET, "/api/tenant/superadmin/applications"),
    ];
    let t = now();
    let tenant_admin = app.state.jwt.issue(&Claims::new(1, "univ_8", "admin", t));
    // Role superadmin, but bound to a tenant: a tenant user's token shape.
    let mut bound = SuperAdminClaims::new("ops", t, 600);
    bound.tenant = Some("univ_8".into());
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("a wrong token", Some("Bearer not-the-token".into())),
        (
            "the token, one character short",
            Some(format!("Bearer {}", &SUPERADMIN_TOKEN[1..])),
        ),
        ("another scheme", Some(format!("Basic {SUPERADMIN_TOKEN}"))),
        ("no scheme", Some(SUPERADMIN_TOKEN.into())),
        ("the market's API key", Some(format!("Bearer {API_KEY}"))),
        (
            "a tenant admin's JWT",
            Some(format!("Bearer {tenant_admin}")),
        ),
        (
            "a superadmin JWT signed with another secret",
            Some(format!(
                "Bearer {}",
                op_jwt(
                    "another-secret-another-secret-0123",
                    &SuperAdminClaims::new("ops", t, 600)
                )
            )),
        ),
        (
            "an expired superadmin JWT",
            Some(format!(
                "Bearer {}",
                op_jwt(JWT_SECRET, &SuperAdminClaims::new("ops", t - 7200, 600))
            )),
        ),
        (
            "a superadmin JWT naming a tenant",
            Some(format!("Bearer {}", op_jwt(JWT_SECRET, &bound))),
        ),
    ];
    for (method, path) in &routes {
        for (what, auth) in &refused {
            let mut req = app.request(method.clone(), path);
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resp = req.send().await.unwrap();
            let body = assert_json_error(resp, 401).await;
            assert_eq!(
                body["code"], "invalid_superadmin_credentials",
                "{what} on {method} {path}"
            );
        }
    }
    // Nothing was changed by the refused actions.
    let row = op_json(&app, Method::GET, "/api/tenant/superadmin/tenants/univ_8").await;
    assert_eq!(row["status"], "active");

    // The static token and a superadmin JWT both pass.
    let jwt = op_jwt(
        JWT_SECRET,
        &SuperAdminClaims::new("ops@k-university.ai", t, 600),
    );
    let resp = app
        .get("/api/tenant/superadmin/tenants")
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = app
        .get("/api/tenant/superadmin/tenants")
        .header("Authorization", format!("bearer {SUPERADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn tenants_are_listed_filtered_searched_and_paged() {
    let app = TestApp::spawn().await;
    for (i, id) in ["alpha_one", "alphazone", "beta", "gamma", "delta"]
        .iter()
        .enumerate()
    {
        app.create_tenant(id, 100 + i as i64).await;
    }
    assert_eq!(act(&app, "beta", "suspend", None).await.status(), 200);

    let all = op_json(&app, Method::GET, "/api/tenant/superadmin/tenants").await;
    assert_eq!(all["total"], 5);
    let ids: Vec<&str> = all["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant_id"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(ids, ["delta", "gamma", "beta", "alphazone", "alpha_one"]);
    let first = &all["tenants"][0];
    for field in [
        "tenant_name",
        "admin_email",
        "application_id",
        "application_kind",
        "status",
        "created_at",
        "suspended_at",
        "deleted_at",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }

    let list = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move {
            op_json(
                app,
                Method::GET,
                &format!("/api/tenant/superadmin/tenants?{q}"),
            )
            .await
        }
    };
    let ids_of = |v: &Value| -> Vec<String> {
        v["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tenant_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let suspended = list("status=suspended").await;
    assert_eq!(
        (ids_of(&suspended), suspended["total"].clone()),
        (vec!["beta".to_owned()], json!(1))
    );
    let active = list("status=active").await;
    assert_eq!(active["total"], 4);

    // q searches the id, the name and the admin email, case-insensitively.
    assert_eq!(ids_of(&list("q=GAMMA").await), ["gamma"]);
    assert_eq!(ids_of(&list("q=admin%40delta.ac").await), ["delta"]);
    assert_eq!(list("q=%EB%8C%80%ED%95%99%EA%B5%90").await["total"], 5); // "대학교" in every name
    // `_` and `%` are literal: "a_o" is not "a?o" (which alphazone would match).
    assert_eq!(ids_of(&list("q=a_o").await), ["alpha_one"]);
    assert_eq!(list("q=%25").await["total"], 0);
    assert_eq!(
        ids_of(&list("q=alpha&status=active").await),
        ["alphazone", "alpha_one"]
    );

    let page = list("limit=2").await;
    assert_eq!(
        (ids_of(&page), page["total"].clone()),
        (vec!["delta".to_owned(), "gamma".to_owned()], json!(5))
    );
    let page = list("limit=2&offset=4").await;
    assert_eq!(
        (ids_of(&page), page["total"].clone()),
        (vec!["alpha_one".to_owned()], json!(5))
    );
    let page = list("offset=10").await;
    assert_eq!((ids_of(&page).len(), page["total"].clone()), (0, json!(5)));

    for bad in [
        "limit=501",
        "limit=-1",
        "limit=abc",
        "offset=-3",
        "status=bogus",
        "status=Active",
    ] {
        let resp = op(
            &app,
            Method::GET,
            &format!("/api/tenant/superadmin/tenants?{bad}"),
        )
        .await;
        assert_json_error(resp, 400).await;
    }
}

#[tokio::test]
async fn one_tenant_by_id_and_clear_errors_for_unknown_or_invalid_ids() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    let row = op_json(&app, Method::GET, "/api/tenant/superadmin/tenants/univ_8").await;
    assert_eq!(row["tenant_id"], "univ_8");
    assert_eq!(row["tenant_name"], "univ_8 대학교");
    assert_eq!(row["admin_email"], "admin@univ_8.ac.kr");
    assert_eq!(row["application_id"], 8);
    assert_eq!(row["status"], "active");
    assert!(row["suspended_at"].is_null());

    for path in ["", "/history", "/usage"] {
        let resp = op(
            &app,
            Method::GET,
            &format!("/api/tenant/superadmin/tenants/nobody{path}"),
        )
        .await;
        let body = assert_json_error(resp, 404).await;
        assert_eq!(body["code"], "tenant_not_found");
        for bad in ["Bad-Id", "hltutor", "pg_catalog", "a%3Bdrop"] {
            let resp = op(
                &app,
                Method::GET,
                &format!("/api/tenant/superadmin/tenants/{bad}{path}"),
            )
            .await;
            let body = assert_json_error(resp, 400).await;
            assert_eq!(body["code"], "invalid_tenant_id", "{bad}{path}");
        }
    }
    for action in ["suspend", "reinstate", "delete"] {
        assert_json_error(act(&app, "nobody", action, None).await, 404).await;
        assert_json_error(act(&app, "Bad-Id", action, None).await, 400).await;
    }
}

#[tokio::test]
async fn actions_change_the_tenant_write_history_and_take_effect_at_once() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    let token = app.token("univ_8", 1, "admin");
    let users = || {
        app.get("/api/users")
            .header("X-Tenant-ID", "univ_8")
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(users().await.unwrap().status(), 200);

    let resp = act(&app, "univ_8", "suspend", Some(json!({"reason": "미납"}))).await;
    assert_eq!(resp.status(), 200);
    let row: Value = resp.json().await.unwrap();
    assert_eq!(row["status"], "suspended");
    assert_eq!(row["suspended_reason"], "미납");
    assert!(row["suspended_at"].is_string());
    let body = assert_json_error(users().await.unwrap(), 403).await;
    assert_eq!(body["code"], "tenant_suspended");

    let row: Value = act(&app, "univ_8", "reinstate", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(row["status"], "active");
    assert!(
        row["suspended_at"].is_null() && row["suspended_reason"].is_null(),
        "{row}"
    );
    assert_eq!(users().await.unwrap().status(), 200);

    let row: Value = act(
        &app,
        "univ_8",
        "delete",
        Some(json!({"reason": "계약 종료"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(row["status"], "deleted");
    assert_eq!(row["deleted_reason"], "계약 종료");
    assert!(row["deleted_at"].is_string());
    let body = assert_json_error(users().await.unwrap(), 410).await;
    assert_eq!(body["code"], "tenant_deleted");
    // Soft delete: the schema and its data stay.
    assert!(app.schema_exists("univ_8").await);

    // A deleted tenant cannot be suspended (that would hide the deletion) ...
    let body = assert_json_error(act(&app, "univ_8", "suspend", None).await, 409).await;
    assert_eq!(body["code"], "invalid_transition");
    // ... but an operator may restore it while its data is there.
    let row: Value = act(
        &app,
        "univ_8",
        "reinstate",
        Some(json!({"reason": "실수로 삭제"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(row["status"], "active");
    assert!(row["deleted_at"].is_null());
    assert_eq!(users().await.unwrap().status(), 200);

    let history = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/history",
    )
    .await;
    assert_eq!(history["tenant_id"], "univ_8");
    let events: Vec<(String, String, String)> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["at"].is_string(), "{e}");
            (
                e["event"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |e: &str, a: &str, d: &str| (e.to_owned(), a.to_owned(), d.to_owned());
    assert_eq!(events[0].0, "created");
    assert_eq!(
        events[1..],
        [
            expect("suspended", "superadmin", "미납"),
            expect("reinstated", "superadmin", ""),
            expect("deleted", "superadmin", "계약 종료"),
            expect(
                "reinstated",
                "superadmin",
                "restored from deleted: 실수로 삭제"
            ),
        ]
    );
    // Oldest first, by time too.
    let times: Vec<String> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap().to_owned())
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[tokio::test]
async fn repeating_an_action_changes_nothing_and_bodies_are_checked() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    let events = || async {
        app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events WHERE tenant_id = 'univ_8'")
            .await
    };
    assert_eq!(
        act(&app, "univ_8", "suspend", Some(json!({"reason": "first"})))
            .await
            .status(),
        200
    );
    let before = events().await;
    let row: Value = act(&app, "univ_8", "suspend", Some(json!({"reason": "second"})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(row["suspended_reason"], "first");
    assert_eq!(events().await, before);

    // No body, an empty object and a null reason are all fine.
    assert_eq!(act(&app, "univ_8", "reinstate", None).await.status(), 200);
    assert_eq!(
        act(&app, "univ_8", "suspend", Some(json!({})))
            .await
            .status(),
        200
    );
    assert_eq!(
        act(&app, "univ_8", "reinstate", Some(json!({"reason": null})))
            .await
            .status(),
        200
    );
    let before = events().await;

    let raw = |body: &'static str| {
        app.post("/api/tenant/superadmin/tenants/univ_8/suspend")
            .bearer_auth(SUPERADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_json_error(raw("{\"reason\": ").await.unwrap(), 400).await;
    assert_json_error(raw("{\"reason\": 5}").await.unwrap(), 422).await;
    let long = format!("{{\"reason\": \"{}\"}}", "x".repeat(256));
    let resp = app
        .post("/api/tenant/superadmin/tenants/univ_8/suspend")
        .bearer_auth(SUPERADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 422).await;
    let huge = app
        .post("/api/tenant/superadmin/tenants/univ_8/suspend")
        .bearer_auth(SUPERADMIN_TOKEN)
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_json_error(huge, 413).await;
    // None of the refused calls changed anything.
    assert_eq!(events().await, before);
    let row = op_json(&app, Method::GET, "/api/tenant/superadmin/tenants/univ_8").await;
    assert_eq!(row["status"], "active");

    // A GET on an action route is a JSON 405.
    let resp = op(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/suspend",
    )
    .await;
    assert_json_error(resp, 405).await;
}

#[tokio::test]
async fn a_suspension_reaches_another_replica_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    a.create_tenant("univ_8", 8).await;
    let token = b.token("univ_8", 1, "admin");
    let on_b = || {
        b.get("/api/users")
            .header("X-Tenant-ID", "univ_8")
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(on_b().await.unwrap().status(), 200);
    assert_eq!(act(&a, "univ_8", "suspend", None).await.status(), 200);
    let started = std::time::Instant::now();
    loop {
        let status = on_b().await.unwrap().status();
        if status == 403 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn usage_gives_the_seed_figures_for_active_and_suspended_tenants() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_8", 8).await;
    app.create_tenant("univ_9", 9).await;
    // Two more users and three chats in univ_8; univ_9 stays empty.
    sqlx::raw_sql(
        "INSERT INTO univ_8.user_mst (email, name) VALUES ('a@x.kr', 'A'), ('b@x.kr', 'B'); \
         INSERT INTO univ_8.chat_his (user_id, message, reply, reg_dtm) VALUES \
           (2, 'q1', 'r1', '2026-01-05T09:00:00Z'), \
           (2, 'q2', 'r2', '2026-01-08T10:30:00Z'), \
           (3, 'q3', 'r3', '2026-01-07T00:00:00Z');",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let usage = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/usage",
    )
    .await;
    assert_eq!(usage["tenant_id"], "univ_8");
    let u = &usage["usage"];
    assert_eq!(u["user_count"], 3);
    assert_eq!(u["chat_count"], 3);
    assert_eq!(u["last_activity"], "2026-01-08T10:30:00Z");
    assert_eq!(u["api_calls"]["total"], 0);
    assert_eq!(u["api_calls"]["last_24h"], 0);
    assert_eq!(u["api_calls"]["per_day"], json!([]));

    let empty = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_9/usage",
    )
    .await;
    assert_eq!(empty["usage"]["user_count"], 1);
    assert_eq!(empty["usage"]["chat_count"], 0);
    assert!(empty["usage"]["last_activity"].is_null());

    // Operators look at suspended and deleted tenants too.
    act(&app, "univ_8", "suspend", None).await;
    let usage = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/usage",
    )
    .await;
    assert_eq!(usage["status"], "suspended");
    assert_eq!(usage["usage"]["chat_count"], 3);
    act(&app, "univ_8", "delete", None).await;
    let usage = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/usage",
    )
    .await;
    assert_eq!(usage["usage"]["user_count"], 3);

    // A purged tenant has no schema left: its figures are null, not an error.
    sqlx::raw_sql(
        "DROP SCHEMA univ_8 CASCADE; UPDATE hltutor.tenants SET status = 'purged' WHERE tenant_id = 'univ_8'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let usage = op_json(
        &app,
        Method::GET,
        "/api/tenant/superadmin/tenants/univ_8/usage",
    )
    .await;
    assert!(usage["usage"]["user_count"].is_null(), "{usage}");
    assert!(usage["usage"]["chat_count"].is_null(), "{usage}");
    assert_eq!(usage["usage"]["api_calls"]["total"], 0);

    for bad in ["days=0", "days=367", "days=x"] {
        let resp = op(
            &app,
            Method::GET,
            &format!("/api/tenant/superadmin/tenants/univ_9/usage?{bad}"),
        )
        .await;
        assert_json_error(resp, 400).await;
    }
}
