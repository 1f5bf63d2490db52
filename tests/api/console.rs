//! The operator console: its cookie session (sign-in, CSRF, cross-site refusal,
//! sign-out, expiry), its embedded page and assets, and its own routes.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{API_KEY, SUPERADMIN_TOKEN, TestApp, assert_json_error};
use crate::market::Market;

/// A signed-in console: the cookie (`name=value`) and the CSRF token.
struct Console {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

async fn sign_in_raw(app: &TestApp, token: &str) -> Response {
    app.post("/api/console/session")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

fn set_cookie_of(resp: &Response) -> String {
    resp.headers()
        .get("set-cookie")
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn sign_in(app: &TestApp) -> Console {
    let resp = sign_in_raw(app, SUPERADMIN_TOKEN).await;
    assert_eq!(resp.status(), 200);
    let set_cookie = set_cookie_of(&resp);
    let body: Value = resp.json().await.unwrap();
    Console {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        set_cookie,
    }
}

impl Console {
    /// A request with the session cookie (and nothing else).
    fn req(&self, app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
        app.request(method, path).header("Cookie", &self.cookie)
    }

    /// A state-changing request as the console's page sends it.
    fn send(&self, app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.req(app, method, path)
            .header("X-CSRF-Token", &self.csrf)
            .header("Origin", &app.address)
            .header("Sec-Fetch-Site", "same-origin")
    }
}

async fn status_of(app: &TestApp, tenant: &str) -> String {
    sqlx::query_scalar("SELECT status FROM hltutor.tenants WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_with_the_superadmin_token_sets_a_strict_http_only_cookie() {
    let app = TestApp::spawn().await;
    let resp = sign_in_raw(&app, SUPERADMIN_TOKEN).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["cache-control"],
        "no-store",
        "sign-in answers are never cached"
    );
    let cookie = set_cookie_of(&resp);
    let body: Value = resp.json().await.unwrap();
    // PUBLIC_BASE_URL is https in the tests: a __Host- cookie, Secure.
    assert!(cookie.starts_with("__Host-mtpaas_console="), "{cookie}");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Secure",
        "Max-Age=",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert!(
        !cookie.contains(SUPERADMIN_TOKEN),
        "the cookie must not hold the token"
    );
    assert_eq!(body["subject"], "token");
    assert_eq!(body["csrf_token"].as_str().unwrap().len(), 64);
    assert!(body["expires_at"].is_string());
    assert!(!body.to_string().contains(SUPERADMIN_TOKEN));
}

#[tokio::test]
async fn a_superadmin_jwt_signs_in_too_but_wrong_tokens_do_not() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().timestamp();
    let jwt = mtpaas::auth::superadmin::issue_token(
        &app.state.config.jwt_secret,
        &mtpaas::auth::superadmin::SuperAdminClaims::new("ops@example.ac.kr", now, 600),
    );
    let resp = sign_in_raw(&app, &jwt).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["subject"], "ops@example.ac.kr");

    app.create_tenant("univ_c", 1).await;
    let user_jwt = app.token("univ_c", 1, "admin");
    for wrong in [
        "wrong-token",
        "",
        &user_jwt,
        &format!("{SUPERADMIN_TOKEN}x"),
    ] {
        let resp = sign_in_raw(&app, wrong).await;
        assert!(resp.headers().get("set-cookie").is_none());
        let body = assert_json_error(resp, 401).await;
        assert_eq!(body["code"], "invalid_superadmin_credentials");
    }
    let missing = app
        .post("/api/console/session")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_json_error(missing, 422).await;
    let not_json = app
        .post("/api/console/session")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={SUPERADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_json_error(not_json, 400).await;
}

#[tokio::test]
async fn the_cookie_is_secure_only_over_https() {
    let app = TestApp::spawn_with(|env| {
        env.insert("PUBLIC_BASE_URL".into(), "http://localhost:8085".into());
    })
    .await;
    let plain = set_cookie_of(&sign_in_raw(&app, SUPERADMIN_TOKEN).await);
    assert!(plain.starts_with("mtpaas_console="), "{plain}");
    assert!(!plain.contains("Secure"), "{plain}");
    assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));

    let behind_nginx = app
        .post("/api/console/session")
        .header("X-Forwarded-Proto", "https")
        .json(&json!({ "token": SUPERADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    let secure = set_cookie_of(&behind_nginx);
    assert!(secure.starts_with("__Host-mtpaas_console="), "{secure}");
    assert!(secure.contains("; Secure"), "{secure}");
}

#[tokio::test]
async fn the_session_cookie_opens_the_superadmin_api_and_the_console_routes() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_s", 1).await;
    let c = sign_in(&app).await;
    let list = c
        .req(&app, Method::GET, "/api/tenant/superadmin/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.unwrap();
    assert_eq!(list["total"], 1);
    let me = c
        .req(&app, Method::GET, "/api/console/session")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["csrf_token"], c.csrf.as_str());
    let overview = c
        .req(&app, Method::GET, "/api/console/overview")
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
}

#[tokio::test]
async fn a_state_change_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_x", 1).await;
    let c = sign_in(&app).await;
    let path = "/api/tenant/superadmin/tenants/univ_x/suspend";

    let missing = c
        .req(&app, Method::POST, path)
        .json(&json!({"reason": "csrf"}))
        .send()
        .await
        .unwrap();
    let body = assert_json_error(missing, 403).await;
    assert_eq!(body["code"], "csrf_token_missing");
    let wrong = c
        .req(&app, Method::POST, path)
        .header("X-CSRF-Token", "0".repeat(64))
        .json(&json!({"reason": "csrf"}))
        .send()
        .await
        .unwrap();
    let body = assert_json_error(wrong, 403).await;
    assert_eq!(body["code"], "csrf_token_invalid");
    assert_eq!(status_of(&app, "univ_x").await, "active");

    let ok = c
        .send(&app, Method::POST, path)
        .json(&json!({"reason": "unpaid"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(status_of(&app, "univ_x").await, "suspended");

    // Bearer callers are as before: no CSRF token, no origin needed.
    let bearer = app
        .post("/api/tenant/superadmin/tenants/univ_x/reinstate")
        .bearer_auth(SUPERADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn a_cross_site_request_is_refused_even_with_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_o", 1).await;
    let c = sign_in(&app).await;
    let path = "/api/tenant/superadmin/tenants/univ_o/suspend";
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let resp = c
            .req(&app, Method::POST, path)
            .header("X-CSRF-Token", &c.csrf)
            .header(name, value)
            .send()
            .await
            .unwrap();
        let body = assert_json_error(resp, 403).await;
        assert_eq!(body["code"], "cross_site_request", "{name}: {value}");
    }
    // The sign-in refuses a cross-site post too.
    let resp = app
        .post("/api/console/session")
        .header("Origin", "https://evil.example")
        .json(&json!({ "token": SUPERADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_json_error(resp, 403).await;
    assert_eq!(status_of(&app, "univ_o").await, "active");
}

#[tokio::test]
async fn signing_out_ends_the_session_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = TestApp::spawn_on(&app.database_url, |_| {}).await;
    let c = sign_in(&app).await;
    let on_replica = c
        .req(&replica, Method::GET, "/api/tenant/superadmin/tenants")
        .send()
        .await
        .unwrap();
    assert_eq!(on_replica.status(), 200);

    // Without the CSRF token a live session is not ended.
    let forged = c
        .req(&app, Method::DELETE, "/api/console/session")
        .send()
        .await
        .unwrap();
    assert_json_error(forged, 403).await;

    let out = c
        .send(&app, Method::DELETE, "/api/console/session")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let cleared = set_cookie_of(&out);
    assert!(
        cleared.starts_with("__Host-mtpaas_console=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for server in [&app, &replica] {
        for path in [
            "/api/tenant/superadmin/tenants",
            "/api/console/overview",
            "/api/console/session",
        ] {
            let resp = c.req(server, Method::GET, path).send().await.unwrap();
            let body = assert_json_error(resp, 401).await;
            assert_eq!(body["code"], "console_session_expired", "{path}");
        }
    }
    // Signing out again (or without a session) just clears the cookie.
    let again = c
        .send(&app, Method::DELETE, "/api/console/session")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_session_expires() {
    let app = TestApp::spawn_with(|env| {
        env.insert("CONSOLE_SESSION_TTL_SECS".into(), "1".into());
    })
    .await;
    let c = sign_in(&app).await;
    assert!(c.set_cookie.contains("Max-Age=1"), "{}", c.set_cookie);
    let fresh = c
        .req(&app, Method::GET, "/api/console/overview")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = c
        .req(&app, Method::GET, "/api/console/overview")
        .send()
        .await
        .unwrap();
    let body = assert_json_error(stale, 401).await;
    assert_eq!(body["code"], "console_session_expired");
}

#[tokio::test]
async fn the_session_token_is_no_bearer_credential_and_a_forged_one_fails() {
    let app = TestApp::spawn().await;
    let c = sign_in(&app).await;
    let value = c.cookie.split_once('=').unwrap().1;
    let as_bearer = app
        .get("/api/tenant/superadmin/tenants")
        .bearer_auth(value)
        .send()
        .await
        .unwrap();
    assert_json_error(as_bearer, 401).await;

    // A superadmin JWT put in the cookie is not a session.
    let now = chrono::Utc::now().timestamp();
    let jwt = mtpaas::auth::superadmin::issue_token(
        &app.state.config.jwt_secret,
        &mtpaas::auth::superadmin::SuperAdminClaims::new("x", now, 600),
    );
    for forged in [jwt.as_str(), SUPERADMIN_TOKEN, "garbage"] {
        let resp = app
            .get("/api/tenant/superadmin/tenants")
            .header("Cookie", format!("__Host-mtpaas_console={forged}"))
            .send()
            .await
            .unwrap();
        assert_json_error(resp, 401).await;
    }
    // Over https only the __Host- cookie counts.
    let plain_name = app
        .get("/api/tenant/superadmin/tenants")
        .header("Cookie", format!("mtpaas_console={value}"))
        .send()
        .await
        .unwrap();
    assert_json_error(plain_name, 401).await;
}

#[tokio::test]
async fn console_routes_need_a_session() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_n", 1).await;
    for (method, path) in [
        (Method::GET, "/api/console/overview"),
        (Method::GET, "/api/console/activity?ids=univ_n"),
        (Method::GET, "/api/console/tenants/univ_n/schema"),
        (Method::GET, "/api/console/tenants/univ_n/backups"),
        (Method::POST, "/api/console/tenants/univ_n/backups"),
        (
            Method::GET,
            "/api/console/backups/20260101T000000Z/univ_n.dump",
        ),
    ] {
        let resp = app.request(method.clone(), path).send().await.unwrap();
        assert_json_error(resp, 401).await;
        // A tenant user's token is not the operator.
        let resp = app
            .request(method.clone(), path)
            .bearer_auth(app.token("univ_n", 1, "admin"))
            .send()
            .await
            .unwrap();
        assert_json_error(resp, 401).await;
    }
    let me = app.get("/api/console/session").send().await.unwrap();
    let body = assert_json_error(me, 401).await;
    assert_eq!(body["code"], "not_signed_in");
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_etags_and_a_strict_csp() {
    let app = TestApp::spawn().await;
    let bare = app.get("/api/console").send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/api/console/");

    let page = app.get("/api/console/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "CSP {csp} lacks {part}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-cache");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\""), "{html}");
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("style="), "no inline style");

    let again = app
        .get("/api/console/")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    // Every asset the page names: served, cached for good under its version, 304.
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/api/console/assets/"))
        .collect();
    assert!(assets.len() >= 3, "{assets:?}");
    for path in &assets {
        let resp = app.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"),
            "{path}"
        );
        assert!(resp.headers()["content-security-policy"].to_str().is_ok());
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            ct.starts_with("text/javascript")
                || ct.starts_with("text/css")
                || ct.starts_with("image/svg+xml"),
            "{path}: {ct}"
        );
        let not_modified = app
            .get(path)
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let js = app
        .get(
            &assets[0]
                .replace("console.css", "app.js")
                .replace("icon.svg", "app.js"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    let other_version = app
        .get("/api/console/assets/000000000000/app.js")
        .send()
        .await
        .unwrap();
    assert_eq!(other_version.status(), 200);
    assert_eq!(other_version.headers()["cache-control"], "no-cache");
    for missing in [
        "/api/console/assets/x/nope.js",
        "/api/console/assets/x/..%2Fmod.rs",
    ] {
        let resp = app.get(missing).send().await.unwrap();
        assert_json_error(resp, 404).await;
    }
}

#[tokio::test]
async fn the_overview_counts_tenants_by_status() {
    let app = TestApp::spawn().await;
    for (i, t) in ["univ_a", "univ_b", "univ_c", "univ_d"].iter().enumerate() {
        app.create_tenant(t, i as i64 + 1).await;
    }
    app.set_status_in_db("univ_b", "suspended").await;
    app.set_status_in_db("univ_c", "deleted").await;
    let c = sign_in(&app).await;
    let o: Value = c
        .req(&app, Method::GET, "/api/console/overview")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        o["counts"],
        json!({"active": 2, "suspended": 1, "deleted": 1, "purged": 0})
    );
    assert_eq!(o["total"], 4);
    assert_eq!(o["template"], "template_schema");
    assert!(o["template_version"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn activity_gives_calls_of_the_last_day_and_the_last_chat() {
    let app = TestApp::spawn().await;
    let token = app.onboard("univ_busy", 1).await;
    app.create_tenant("univ_idle", 2).await;
    for _ in 0..3 {
        let resp = app
            .get("/api/users")
            .header("X-Tenant-ID", "univ_busy")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let chat = app
        .post("/api/chat")
        .header("X-Tenant-ID", "univ_busy")
        .bearer_auth(&token)
        .json(&json!({"message": "안녕하세요"}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 201, "{}", chat.text().await.unwrap());
    // Console calls made in a tenant's name are not that tenant's API calls.
    let c = sign_in(&app).await;
    for _ in 0..5 {
        c.req(&app, Method::GET, "/api/console/overview")
            .header("X-Tenant-ID", "univ_idle")
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    let a: Value = c
        .req(
            &app,
            Method::GET,
            "/api/console/activity?ids=univ_busy,univ_idle,univ_unknown",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let of = |id: &str| {
        a["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant_id"] == id)
            .cloned()
    };
    let busy = of("univ_busy").unwrap();
    assert!(busy["calls_24h"].as_i64().unwrap() >= 4, "{busy}");
    assert!(busy["last_activity"].is_string(), "{busy}");
    assert_eq!(busy["demo_expiring_soon"], false);
    let idle = of("univ_idle").unwrap();
    assert_eq!(idle["calls_24h"], 0, "{idle}");
    assert!(idle["last_activity"].is_null());
    assert!(of("univ_unknown").is_none());
    assert!(a["market_error"].is_null());

    let bad = c
        .req(&app, Method::GET, "/api/console/activity?ids=Bad-Id")
        .send()
        .await
        .unwrap();
    assert_json_error(bad, 400).await;
    let empty: Value = c
        .req(&app, Method::GET, "/api/console/activity")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty["tenants"], json!([]));
}

async fn create_demo(app: &TestApp, tenant: &str, app_id: i64) {
    let mut body = TestApp::create_body(tenant, app_id);
    body["application_kind"] = json!("demo");
    let resp = app
        .post("/api/tenant/create")
        .header("X-API-Key", API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test]
async fn demos_ending_soon_are_marked_and_a_market_outage_is_said() {
    let market = Market::fresh().await;
    let keli = market.service("KELI Tutor").await;
    let u = market.user("prof@demo.ac.kr", "데모대학교").await;
    let soon = market
        .application(
            u,
            keli,
            "demo",
            "approved",
            "NOW()",
            "NOW() + INTERVAL 2 DAY",
        )
        .await;
    let later = market
        .application(
            u,
            keli,
            "demo",
            "approved",
            "NOW()",
            "NOW() + INTERVAL 30 DAY",
        )
        .await;
    let url = market.url.clone();
    let app = TestApp::spawn_with(move |env| {
        env.insert("SERVICE_MARKET_DATABASE_URL".into(), url);
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
    })
    .await;
    create_demo(&app, "demo_soon", soon).await;
    create_demo(&app, "demo_later", later).await;
    app.create_tenant("svc_univ", 999).await;
    let c = sign_in(&app).await;
    let a: Value = c
        .req(
            &app,
            Method::GET,
            "/api/console/activity?ids=demo_soon,demo_later,svc_univ",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let of = |id: &str| {
        a["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant_id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(of("demo_soon")["demo_expiring_soon"], true, "{a}");
    let left = of("demo_soon")["demo_expires_in_secs"].as_i64().unwrap();
    assert!((86_400..=2 * 86_400).contains(&left), "{left}");
    assert_eq!(of("demo_later")["demo_expiring_soon"], false);
    assert!(of("demo_later")["demo_expires_at"].is_string());
    assert!(of("svc_univ")["demo_expires_at"].is_null());

    // The market away: the rows still come, with the reason.
    let down = TestApp::spawn_with(|env| {
        env.insert(
            "SERVICE_MARKET_DATABASE_URL".into(),
            "mysql://root@127.0.0.1:1/none".into(),
        );
        env.insert("SERVICE_MARKET_DB_TIMEOUT_MS".into(), "500".into());
        env.insert("DEMO_EXPIRY_INTERVAL_SECS".into(), "0".into());
    })
    .await;
    create_demo(&down, "demo_soon", soon).await;
    let c = sign_in(&down).await;
    let a: Value = c
        .req(&down, Method::GET, "/api/console/activity?ids=demo_soon")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["tenants"][0]["tenant_id"], "demo_soon");
    assert!(
        a["market_error"].as_str().unwrap().contains("market"),
        "{a}"
    );
}

#[tokio::test]
async fn one_tenant_schema_check_reports_its_version_and_drift() {
    let app = TestApp::spawn().await;
    app.create_tenant("univ_d", 1).await;
    let c = sign_in(&app).await;
    let get = |c: &Console, path: &str| c.req(&app, Method::GET, path).send();
    let s: Value = get(&c, "/api/console/tenants/univ_d/schema")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["checked"], true);
    assert_eq!(s["in_sync"], true, "{s}");
    assert_eq!(s["schema_version"], s["template_version"]);

    sqlx::query("ALTER TABLE univ_d.user_mst ADD COLUMN shoe_size integer")
        .execute(&app.db)
        .await
        .unwrap();
    let s: Value = get(&c, "/api/console/tenants/univ_d/schema")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["in_sync"], false);
    let d = &s["differences"][0];
    assert_eq!(d["change"], "unexpected");
    assert!(
        d["text"]
            .as_str()
            .unwrap()
            .contains("unexpected column user_mst.shoe_size"),
        "{d}"
    );

    let unknown = get(&c, "/api/console/tenants/univ_nope/schema")
        .await
        .unwrap();
    assert_json_error(unknown, 404).await;
    let invalid = get(&c, "/api/console/tenants/Bad/schema").await.unwrap();
    assert_json_error(invalid, 400).await;
}

#[tokio::test]
async fn backing_up_from_the_console_makes_an_archive_to_download() {
    let dir = std::env::temp_dir().join(format!("mtpaas-console-{}", uuid::Uuid::new_v4()));
    let dir_s = dir.to_string_lossy().into_owned();
    let app = TestApp::spawn_with(move |env| {
        env.insert("BACKUP_DIR".into(), dir_s);
    })
    .await;
    app.create_tenant("univ_b", 1).await;
    let c = sign_in(&app).await;

    let none: Value = c
        .req(&app, Method::GET, "/api/console/tenants/univ_b/backups")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["backups"], json!([]));

    let refused = c
        .req(&app, Method::POST, "/api/console/tenants/univ_b/backups")
        .send()
        .await
        .unwrap();
    assert_json_error(refused, 403).await;

    let resp = c
        .send(&app, Method::POST, "/api/console/tenants/univ_b/backups")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let b: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["tenant_id"], "univ_b");
    assert!(b["run"].as_str().unwrap().ends_with("-console"), "{b}");
    assert!(b["bytes"].as_u64().unwrap() > 0);
    assert_eq!(b["sha256"].as_str().unwrap().len(), 64);

    let listed: Value = c
        .req(&app, Method::GET, "/api/console/tenants/univ_b/backups")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["backups"][0]["run"], b["run"]);

    let download = c
        .req(&app, Method::GET, b["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"univ_b-"),
        "{disposition}"
    );
    let bytes = download.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, b["bytes"].as_u64().unwrap());
    assert!(bytes.starts_with(b"PGDMP"), "a pg_dump custom archive");
    let manifest: Value = c
        .req(&app, Method::GET, b["manifest_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["tenants"][0]["tenant_id"], "univ_b");
    assert_eq!(manifest["tenants"][0]["sha256"], b["sha256"]);

    let run = b["run"].as_str().unwrap();
    for bad in [
        format!("/api/console/backups/{run}/univ_other.dump"),
        format!("/api/console/backups/{run}/..%2F..%2Fetc%2Fpasswd"),
        "/api/console/backups/..%2F..%2Fetc/passwd".to_owned(),
        format!("/api/console/backups/{run}/univ_b.dump.partial"),
    ] {
        let resp = c.req(&app, Method::GET, &bad).send().await.unwrap();
        assert_json_error(resp, 404).await;
    }

    let unknown = c
        .send(&app, Method::POST, "/api/console/tenants/univ_zz/backups")
        .send()
        .await
        .unwrap();
    assert_json_error(unknown, 404).await;
    let _ = std::fs::remove_dir_all(&dir);
}
