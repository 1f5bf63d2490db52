//! The AI behind `POST /api/chat`: an OpenAI-compatible chat-completions endpoint at
//! `AI_BACKEND_URL`, or an echo when none is configured. This is where a service built
//! on mtpaas plugs in its model.

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::config::Config;
use crate::error::{Error, Result};

fn bad_gateway(detail: impl Into<String>) -> Error {
    Error::BadGateway {
        code: "ai_backend_error",
        detail: detail.into(),
    }
}

/// The reply to one user message.
pub async fn reply(config: &Config, http: &reqwest::Client, message: &str) -> Result<String> {
    let Some(url) = &config.ai_backend_url else {
        return Ok(message.to_owned());
    };
    let body = json!({
        "model": config.ai_backend_model,
        "messages": [{ "role": "user", "content": message }],
    });
    let mut req = http.post(url).json(&body);
    if let Some(key) = &config.ai_backend_api_key {
        req = req.bearer_auth(key.expose_secret());
    }
    let resp = req.send().await.map_err(|e| {
        let timed_out = e.is_timeout();
        tracing::warn!(error = %e.without_url(), "AI backend request failed");
        if timed_out {
            bad_gateway("The AI backend did not answer in time")
        } else {
            bad_gateway("The AI backend could not be reached")
        }
    })?;
    let status = resp.status();
    if !status.is_success() {
        tracing::warn!(%status, "AI backend answered with an error");
        return Err(bad_gateway(format!(
            "The AI backend answered {}",
            status.as_u16()
        )));
    }
    let v: Value = resp
        .json()
        .await
        .map_err(|_| bad_gateway("The AI backend sent an unreadable answer"))?;
    v["choices"][0]["message"]["content"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad_gateway("The AI backend's answer has no message"))
}
