//! Changing the tenant a request names never reaches another tenant's data.

use serde_json::Value;

use crate::helpers::{TestApp, assert_json_error};

#[tokio::test]
async fn every_cross_tenant_attempt_is_refused_and_returns_no_data() {
    let app = TestApp::spawn_with(|env| {
        env.insert("BASE_DOMAIN".into(), "ktutor.k-university.ai".into());
    })
    .await;
    // Two tenants whose users have the same emails and the same ids.
    let a = app.onboard("twin_a", 1).await;
    let b = app.onboard("twin_b", 2).await;
    for (t, tok) in [("twin_a", &a), ("twin_b", &b)] {
        let id = app
            .add_user(t, tok, "same@univ.ac.kr", "same password")
            .await;
        assert_eq!(id, 2);
        app.post("/api/chat")
            .header("X-Tenant-ID", t)
            .bearer_auth(tok)
            .json(&serde_json::json!({"message": format!("secret of {t}")}))
            .send()
            .await
            .unwrap();
    }
    let a_member = app
        .login("twin_a", "same@univ.ac.kr", "same password")
        .await;

    // A's own requests work, by every transport.
    let own = app
        .get("/api/chat")
        .header("X-Tenant-ID", "twin_a")
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    let body: Value = own.json().await.unwrap();
    assert_eq!(body["messages"][0]["message"], "secret of twin_a");

    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "header swapped",
            app.get("/api/chat")
                .header("X-Tenant-ID", "twin_b")
                .bearer_auth(&a),
        ),
        (
            "query swapped",
            app.get("/api/chat?tenant=twin_b").bearer_auth(&a),
        ),
        (
            "cookie swapped",
            app.get("/api/chat")
                .header("Cookie", format!("tenant_id=twin_b; access_token={a}")),
        ),
        (
            "subdomain mismatch",
            app.get("/api/chat")
                .header("Host", "twin_b.ktutor.k-university.ai")
                .bearer_auth(&a),
        ),
        (
            "token from the other tenant",
            app.get("/api/chat")
                .header("X-Tenant-ID", "twin_a")
                .bearer_auth(&b),
        ),
        (
            "member token, header swapped",
            app.get("/api/users")
                .header("X-Tenant-ID", "twin_b")
                .bearer_auth(&a_member),
        ),
        (
            "users, query swapped",
            app.get("/api/users?tenant=twin_b").bearer_auth(&a),
        ),
        (
            "me, cookie swapped",
            app.get("/api/auth/me")
                .header("Cookie", format!("tenant_id=twin_b; access_token={a}")),
        ),
        (
            "post chat into the other tenant",
            app.post("/api/chat")
                .header("X-Tenant-ID", "twin_b")
                .bearer_auth(&a)
                .json(&serde_json::json!({"message": "x"})),
        ),
        (
            "create user in the other tenant",
            app.post("/api/users")
                .header("X-Tenant-ID", "twin_b")
                .bearer_auth(&a)
                .json(&serde_json::json!({"email": "evil@x.kr"})),
        ),
        (
            "no token at all",
            app.get("/api/users").header("X-Tenant-ID", "twin_b"),
        ),
    ];
    for (what, req) in attempts {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status == 401 || status == 403, "{what}: {status} {text}");
        assert!(
            !text.contains("twin_b") || text.contains("\"detail\""),
            "{what}: {text}"
        );
        assert!(!text.contains("secret of"), "{what} leaked: {text}");
        assert!(!text.contains("same@univ"), "{what} leaked: {text}");
    }
    // Nothing was written into B.
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM twin_b.chat_his").await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM twin_b.user_mst").await,
        2
    );
    // A's password does not log into B, though the email exists there too.
    assert_json_error(
        app.login_raw("twin_b", "same@univ.ac.kr", "wrong for b")
            .await,
        401,
    )
    .await;
}
