//! `mtpaas webhook send <event>`: sends a correctly signed market webhook to a running
//! server, so a market integrator can check their setup (URL, secret, clock, payload)
//! and see the exact headers and body a delivery needs.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::market::webhook::Endpoint;
use crate::signature::{self, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send one signed webhook and print the server's answer (exit 1 unless 2xx).
    Send(SendArgs),
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// user-deleted, service-cancelled, service-reinstated or service-changed
    /// (or the event name: user.deleted, service.cancelled, …).
    pub event: String,
    /// The server's base URL; the webhook's path is appended.
    #[arg(long, default_value = "http://localhost:8085")]
    pub url: String,
    /// Standard Webhooks signing secret (whsec_…). Default: WEBHOOK_SIGNING_SECRET.
    #[arg(long)]
    pub secret: Option<String>,
    /// Send X-Webhook-Secret instead of signing. Default: SERVICE_MARKET_WEBHOOK_SECRET
    /// when no signing secret is available.
    #[arg(long)]
    pub static_secret: Option<String>,
    /// The payload's fields as a JSON object, e.g. '{"application_id": 5}'; merged
    /// over `{"event": <event>, "occurred_at": <now>}`.
    #[arg(long)]
    pub data: Option<String>,
    /// The webhook-id (the idempotency key): send the same one twice to see a
    /// redelivery answered as the first time. Default: a new msg_… id.
    #[arg(long)]
    pub id: Option<String>,
    /// Print the request instead of sending it.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
}

/// How the request proves it comes from the market.
enum Auth {
    Sign(String),
    Static(String),
}

pub async fn run(cmd: WebhookCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        WebhookCommand::Send(args) => send(args, config).await,
    }
}

/// A secret from the configuration, unless it was generated for this run only.
fn configured(config: &Config, name: &str, v: Option<&secrecy::SecretString>) -> Option<String> {
    let generated = config.generated_secrets.iter().any(|(n, _)| *n == name);
    v.filter(|_| !generated)
        .map(|s| s.expose_secret().to_owned())
}

async fn send(args: SendArgs, config: &Config) -> anyhow::Result<()> {
    let endpoint = Endpoint::from_name(&args.event).with_context(|| {
        format!(
            "unknown event {:?}: expected one of {}",
            args.event,
            Endpoint::ALL.map(|e| e.slug()).join(", ")
        )
    })?;

    let auth = match (args.secret, args.static_secret) {
        (Some(s), _) => Auth::Sign(s),
        (None, Some(s)) => Auth::Static(s),
        (None, None) => match (
            configured(
                config,
                "WEBHOOK_SIGNING_SECRET",
                config.webhook_signing_secret.as_ref(),
            ),
            configured(
                config,
                "SERVICE_MARKET_WEBHOOK_SECRET",
                config.webhook_secret.as_ref(),
            ),
        ) {
            // With several secrets configured (rotation), sign with the first.
            (Some(list), _) => Auth::Sign(
                list.split([' ', ',', '\n', '\t'])
                    .find(|s| !s.is_empty())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            (None, Some(s)) => Auth::Static(s),
            (None, None) => bail!(
                "no secret: pass --secret whsec_… (or --static-secret), or set \
                 WEBHOOK_SIGNING_SECRET / SERVICE_MARKET_WEBHOOK_SECRET"
            ),
        },
    };

    let mut payload = Map::new();
    payload.insert("event".into(), json!(endpoint.event()));
    payload.insert(
        "occurred_at".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    if let Some(data) = &args.data {
        match serde_json::from_str::<Value>(data).context("--data is not valid JSON")? {
            Value::Object(fields) => payload.extend(fields),
            _ => bail!("--data must be a JSON object"),
        }
    }
    let body = serde_json::to_vec(&Value::Object(payload))?;

    let url = format!("{}{}", args.url.trim_end_matches('/'), endpoint.path());
    let id = args
        .id
        .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
    if !signature::valid_id(&id) {
        bail!("--id must be 1 to 255 visible ASCII characters");
    }
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/json".into()),
        (HEADER_ID, id.clone()),
    ];
    match &auth {
        Auth::Sign(secret) => {
            let ts = chrono::Utc::now().timestamp();
            let sig = signature::sign(secret, &id, ts, &body)?;
            headers.push((HEADER_TIMESTAMP, ts.to_string()));
            headers.push((HEADER_SIGNATURE, sig));
        }
        Auth::Static(secret) => headers.push(("x-webhook-secret", secret.clone())),
    }

    println!("POST {url}");
    for (name, value) in &headers {
        let shown = if *name == "x-webhook-secret" {
            "<hidden>"
        } else {
            value.as_str()
        };
        println!("{name}: {shown}");
    }
    println!();
    println!("{}", String::from_utf8_lossy(&body));
    if args.dry_run {
        return Ok(());
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut req = client.post(&url).body(body);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let replayed = resp.headers().contains_key("webhook-replayed");
    let text = resp.text().await.unwrap_or_default();
    println!();
    println!(
        "HTTP {}{}",
        status,
        if replayed {
            " (redelivery: the first answer)"
        } else {
            ""
        }
    );
    println!("{text}");
    if !status.is_success() {
        bail!("the server answered {status}");
    }
    Ok(())
}
