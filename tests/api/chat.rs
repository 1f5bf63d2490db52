use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_json_error};

/// An OpenAI-compatible chat-completions server on 127.0.0.1 that answers `mode`.
async fn fake_ai(mode: &'static str) -> String {
    async fn handler(
        axum::extract::State(mode): axum::extract::State<&'static str>,
        headers: axum::http::HeaderMap,
        Json(req): Json<Value>,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        match mode {
            "ok" => {
                assert_eq!(headers.get("authorization").unwrap(), "Bearer sk-test");
                let q = req["messages"][0]["content"].as_str().unwrap().to_owned();
                Json(json!({"choices": [{"message": {"role": "assistant", "content": format!("answer to {q}")}}]})).into_response()
            }
            "error" => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
            _ => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late".into_response()
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/v1/chat/completions", post(handler))
        .with_state(mode);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/v1/chat/completions")
}

#[tokio::test]
async fn chat_echoes_without_an_ai_backend_and_keeps_each_users_history() {
    let app = TestApp::spawn().await;
    let admin = app.onboard("chat_u", 1).await;
    app.add_user("chat_u", &admin, "kim@chat_u.ac.kr", "kim password")
        .await;
    let kim = app
        .login("chat_u", "kim@chat_u.ac.kr", "kim password")
        .await;
    for m in ["안녕하세요", "second"] {
        let resp = app
            .post("/api/chat")
            .header("X-Tenant-ID", "chat_u")
            .bearer_auth(&kim)
            .json(&json!({"message": m}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["reply"], m);
    }
    app.post("/api/chat")
        .header("X-Tenant-ID", "chat_u")
        .bearer_auth(&admin)
        .json(&json!({"message": "admin's"}))
        .send()
        .await
        .unwrap();
    let hist: Value = app
        .get("/api/chat")
        .header("X-Tenant-ID", "chat_u")
        .bearer_auth(&kim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let msgs = hist["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "only kim's own: {hist}");
    assert_eq!(msgs[0]["message"], "안녕하세요");
    let page: Value = app
        .get("/api/chat?limit=1")
        .header("X-Tenant-ID", "chat_u")
        .bearer_auth(&kim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["message"], "second");
    assert_json_error(
        app.get("/api/chat?limit=0")
            .header("X-Tenant-ID", "chat_u")
            .bearer_auth(&kim)
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    assert_json_error(
        app.post("/api/chat")
            .header("X-Tenant-ID", "chat_u")
            .bearer_auth(&kim)
            .json(&json!({"message": "  "}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    let last_activity: bool = sqlx::query_scalar(
        "SELECT max(reg_dtm) > now() - interval '1 minute' FROM chat_u.chat_his",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(last_activity);
}

#[tokio::test]
async fn chat_replies_come_from_the_ai_backend_and_failures_are_502() {
    for (mode, expect) in [("ok", 201), ("error", 502), ("hang", 502)] {
        let url = fake_ai(mode).await;
        let app = TestApp::spawn_with(|env| {
            env.insert("AI_BACKEND_URL".into(), url);
            env.insert("AI_BACKEND_API_KEY".into(), "sk-test".into());
            env.insert("AI_BACKEND_TIMEOUT_MS".into(), "500".into());
        })
        .await;
        let admin = app.onboard("ai_u", 1).await;
        let resp = app
            .post("/api/chat")
            .header("X-Tenant-ID", "ai_u")
            .bearer_auth(&admin)
            .json(&json!({"message": "2+2?"}))
            .send()
            .await
            .unwrap();
        if expect == 201 {
            assert_eq!(resp.status(), 201);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["reply"], "answer to 2+2?");
            assert_eq!(
                app.scalar_i64("SELECT count(*) FROM ai_u.chat_his").await,
                1
            );
        } else {
            let err = assert_json_error(resp, 502).await;
            assert_eq!(err["code"], "ai_backend_error", "{mode}");
            assert_eq!(
                app.scalar_i64("SELECT count(*) FROM ai_u.chat_his").await,
                0
            );
        }
    }
}
