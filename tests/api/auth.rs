use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, TestApp, assert_json_error};

#[tokio::test]
async fn the_admin_onboards_with_the_setup_token_once() {
    let app = TestApp::spawn().await;
    let created = app.create_tenant("onb_u", 1).await;
    let token = created["setup_token"].as_str().unwrap().to_owned();
    assert_eq!(
        created["setup_url"],
        format!("https://myservice.k-university.ai/setup-password?tenant=onb_u&token={token}")
    );
    // No password yet: login fails.
    assert_json_error(app.login_raw("onb_u", "admin@onb_u.ac.kr", "").await, 401).await;

    let weak = app.setup_password("onb_u", &token, "short").await;
    assert_json_error(weak, 422).await;
    let ok = app.setup_password("onb_u", &token, ADMIN_PASSWORD).await;
    assert_eq!(ok.status(), 200);
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM onb_u.user_mst WHERE id = 1")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // Works once.
    let again = app
        .setup_password("onb_u", &token, "another password")
        .await;
    let err = assert_json_error(again, 400).await;
    assert_eq!(err["code"], "invalid_setup_token");
    app.login("onb_u", "admin@onb_u.ac.kr", ADMIN_PASSWORD)
        .await;
    // The stored token is a hash, not the token.
    let raw = app
        .scalar_i64(&format!(
            "SELECT count(*) FROM hltutor.setup_tokens WHERE encode(token_hash, 'hex') = '{token}'"
        ))
        .await;
    assert_eq!(raw, 0);
}

#[tokio::test]
async fn a_setup_token_expires_after_72_hours_and_is_bound_to_its_tenant() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("exp_a", 1).await;
    let b = app.create_tenant("exp_b", 2).await;
    sqlx::query("UPDATE hltutor.setup_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = 'exp_a'")
        .execute(&app.db)
        .await
        .unwrap();
    let expired = app
        .setup_password("exp_a", a["setup_token"].as_str().unwrap(), ADMIN_PASSWORD)
        .await;
    assert_json_error(expired, 400).await;
    // B's token sent for tenant A: refused, and not used up.
    let crossed = app
        .setup_password("exp_a", b["setup_token"].as_str().unwrap(), ADMIN_PASSWORD)
        .await;
    assert_json_error(crossed, 403).await;
    let fine = app
        .setup_password("exp_b", b["setup_token"].as_str().unwrap(), ADMIN_PASSWORD)
        .await;
    assert_eq!(fine.status(), 200);
    let unknown = app
        .setup_password("exp_b", &"0".repeat(64), ADMIN_PASSWORD)
        .await;
    assert_json_error(unknown, 400).await;
}

#[tokio::test]
async fn a_repeated_create_reissues_a_setup_token_until_the_admin_has_a_password() {
    let app = TestApp::spawn().await;
    let first = app.create_tenant("rep_u", 1).await;
    let second = app.create_tenant("rep_u", 1).await;
    assert_eq!(second["created"], false);
    let t2 = second["setup_token"].as_str().unwrap();
    assert_ne!(first["setup_token"].as_str().unwrap(), t2);
    assert_eq!(
        app.setup_password("rep_u", t2, ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
    let third = app.create_tenant("rep_u", 1).await;
    assert!(third["setup_token"].is_null(), "{third}");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM rep_u.user_mst").await,
        1
    );
}

#[tokio::test]
async fn login_returns_a_token_and_an_httponly_cookie_both_accepted() {
    let app = TestApp::spawn().await;
    let _ = app.onboard("log_u", 1).await;
    let resp = app
        .login_raw("log_u", "ADMIN@log_u.ac.kr", ADMIN_PASSWORD)
        .await;
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("access_token="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().unwrap();
    let claims = app
        .state
        .jwt
        .verify::<mtpaas::auth::jwt::Claims>(token)
        .unwrap();
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.tenant.as_str(),
            claims.role.as_str()
        ),
        ("1", "log_u", "admin")
    );
    assert!(claims.exp > chrono::Utc::now().timestamp());

    let by_bearer = app
        .get("/api/auth/me")
        .header("X-Tenant-ID", "log_u")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let me: Value = by_bearer.json().await.unwrap();
    assert_eq!(me["email"], "admin@log_u.ac.kr");
    let session = cookie.split(';').next().unwrap();
    let by_cookie = app
        .get("/api/auth/me")
        .header("X-Tenant-ID", "log_u")
        .header("Cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    // Behind https, the cookie is Secure.
    let https = app
        .post("/api/auth/login")
        .header("X-Tenant-ID", "log_u")
        .header("X-Forwarded-Proto", "https")
        .json(&json!({"email": "admin@log_u.ac.kr", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(
        https
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    let wrong = app
        .login_raw("log_u", "admin@log_u.ac.kr", "wrong password")
        .await;
    let err = assert_json_error(wrong, 401).await;
    assert_eq!(err["code"], "invalid_credentials");
    let nobody = app
        .login_raw("log_u", "nobody@log_u.ac.kr", ADMIN_PASSWORD)
        .await;
    assert_json_error(nobody, 401).await;
    assert_json_error(
        app.get("/api/auth/me")
            .header("X-Tenant-ID", "log_u")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    assert_json_error(
        app.get("/api/auth/me")
            .header("X-Tenant-ID", "log_u")
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
}

#[tokio::test]
async fn admins_create_users_and_members_only_list() {
    let app = TestApp::spawn().await;
    let admin = app.onboard("usr_u", 1).await;
    let member_id = app
        .add_user("usr_u", &admin, "kim@usr_u.ac.kr", "member password")
        .await;
    let member = app
        .login("usr_u", "kim@usr_u.ac.kr", "member password")
        .await;

    let list = app
        .get("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    let body: Value = list.json().await.unwrap();
    assert_eq!(body["users"].as_array().unwrap().len(), 2);

    let by_member = app
        .post("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&member)
        .json(&json!({"email": "x@usr_u.ac.kr"}))
        .send()
        .await
        .unwrap();
    let err = assert_json_error(by_member, 403).await;
    assert_eq!(err["code"], "admin_required");
    let dup = app
        .post("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&admin)
        .json(&json!({"email": "KIM@usr_u.ac.kr"}))
        .send()
        .await
        .unwrap();
    assert_json_error(dup, 409).await;
    let bad = app
        .post("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&admin)
        .json(&json!({"email": "kim", "role": "root"}))
        .send()
        .await
        .unwrap();
    assert_json_error(bad, 422).await;

    // Without a password, the new user gets a setup token.
    let invited = app
        .post("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&admin)
        .json(&json!({"email": "lee@usr_u.ac.kr", "name": "이"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), 201);
    let invited: Value = invited.json().await.unwrap();
    let t = invited["setup_token"].as_str().unwrap();
    assert_eq!(
        app.setup_password("usr_u", t, "lee password")
            .await
            .status(),
        200
    );
    app.login("usr_u", "lee@usr_u.ac.kr", "lee password").await;

    // A deleted user's token stops working at once.
    let del = app
        .request(reqwest::Method::DELETE, &format!("/api/users/{member_id}"))
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let gone = app
        .get("/api/users")
        .header("X-Tenant-ID", "usr_u")
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    let err = assert_json_error(gone, 401).await;
    assert_eq!(err["code"], "user_not_found");
}

#[tokio::test]
async fn a_suspended_or_deleted_tenants_tokens_stop_working_at_once() {
    let app = TestApp::spawn().await;
    let token = app.onboard("stop_u", 1).await;
    let get = || {
        app.get("/api/users")
            .header("X-Tenant-ID", "stop_u")
            .bearer_auth(&token)
    };
    assert_eq!(get().send().await.unwrap().status(), 200);
    app.set_status_in_db("stop_u", "suspended").await;
    assert_json_error(get().send().await.unwrap(), 403).await;
    app.set_status_in_db("stop_u", "deleted").await;
    assert_json_error(get().send().await.unwrap(), 410).await;
    // And no new login either.
    assert_json_error(
        app.login_raw("stop_u", "admin@stop_u.ac.kr", ADMIN_PASSWORD)
            .await,
        410,
    )
    .await;
}

#[tokio::test]
async fn login_is_throttled_per_tenant_and_email() {
    let app = TestApp::spawn().await;
    app.onboard("thr_a", 1).await;
    app.onboard("thr_b", 2).await;
    for _ in 0..9 {
        assert_json_error(
            app.login_raw("thr_a", "admin@thr_a.ac.kr", "wrong password")
                .await,
            401,
        )
        .await;
    }
    let resp = app
        .login_raw("thr_a", "admin@thr_a.ac.kr", "wrong password")
        .await;
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let body = assert_json_error(resp, 429).await;
    assert_eq!(body["code"], "too_many_requests");
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
    // Even the right password waits now.
    assert_json_error(
        app.login_raw("thr_a", "admin@thr_a.ac.kr", ADMIN_PASSWORD)
            .await,
        429,
    )
    .await;
    // Another email, another tenant: unaffected.
    assert_json_error(app.login_raw("thr_a", "other@thr_a.ac.kr", "x").await, 401).await;
    app.login("thr_b", "admin@thr_b.ac.kr", ADMIN_PASSWORD)
        .await;
}
