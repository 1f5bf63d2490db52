//! The bench's clients: JWT minting, tenant onboarding through the API, the psql
//! provisioning baseline, and sequential requests for the round-trip count.
//!
//! benchtool jwts SECRET OUT_FILE            (tenant ids on stdin, one a line)
//! benchtool onboard URL API_KEY PREFIX FROM COUNT CONCURRENCY APP_ID_BASE
//! benchtool psqlrun DB_URL TEMPLATE_FILE PREFIX COUNT WORK_DIR
//! benchtool rt URL PROXY_CONTROL_URL COUNT WARMUP [TOKENS_FILE]
//!
//! Each prints its figures as one `KV key=value ...` line on stdout (the round-trip count
//! adds one `BURST <per request> <what>` line per kind of round trip).

use std::io::{BufRead, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;
use serde_json::json;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant: &'a str,
    role: &'a str,
    iat: i64,
    exp: i64,
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    json!({
        "n": ms.len(),
        "median_ms": pct(&ms, 0.5),
        "p95_ms": pct(&ms, 0.95),
        "mean_ms": mean,
        "min_ms": ms.first().copied().unwrap_or(f64::NAN),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
}

/// Prints the `KV` line the bench script parses.
fn kv(v: &serde_json::Value) {
    let mut line = String::from("KV");
    if let Some(m) = v.as_object() {
        for (k, x) in m {
            if let Some(f) = x.as_f64() {
                line.push_str(&format!(" {k}={f:.3}"));
            }
        }
    }
    println!("{line}");
}

fn jwts(args: &[String]) -> anyhow::Result<()> {
    ensure!(args.len() == 2, "jwts SECRET OUT_FILE");
    let key = jsonwebtoken::EncodingKey::from_secret(args[0].as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let now = chrono::Utc::now().timestamp();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[1])?);
    let mut n = 0;
    for line in std::io::stdin().lock().lines() {
        let t = line?;
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let c = Claims { sub: "1", tenant: t, role: "admin", iat: now, exp: now + 8 * 3600 };
        writeln!(out, "{t} {}", jsonwebtoken::encode(&header, &c, &key)?)?;
        n += 1;
    }
    out.flush()?;
    kv(&json!({ "tokens": n }));
    Ok(())
}

async fn onboard(args: &[String]) -> anyhow::Result<()> {
    ensure!(args.len() == 7, "onboard URL API_KEY PREFIX FROM COUNT CONCURRENCY APP_ID_BASE");
    let url = format!("{}/api/tenant/create", args[0].trim_end_matches('/'));
    let key = args[1].clone();
    let prefix = args[2].clone();
    let from: usize = args[3].parse()?;
    let count: usize = args[4].parse()?;
    let conc: usize = args[5].parse()?;
    let app_base: i64 = args[6].parse()?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.max(1) {
        let (client, next, url, key, prefix) =
            (client.clone(), next.clone(), url.clone(), key.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(lat);
                }
                let n = from + i;
                let tid = format!("{prefix}{n:05}");
                let body = json!({
                    "tenant_id": tid,
                    "tenant_name": format!("Bench University {n}"),
                    "admin_email": format!("admin@{tid}.ac.kr"),
                    "admin_name": "Admin",
                    "application_id": app_base + n as i64,
                    "service_id": 1,
                    "application_kind": "service",
                });
                let t0 = Instant::now();
                let resp = client.post(&url).header("X-API-Key", &key).json(&body).send().await?;
                let status = resp.status();
                let text = resp.text().await?;
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                if !status.is_success() {
                    bail!("create {tid}: {status}: {text}");
                }
                lat.push(ms);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let total = started.elapsed().as_secs_f64();
    let mut s = summary(all);
    s["total_s"] = json!(total);
    s["per_s"] = json!(count as f64 / total);
    kv(&s);
    Ok(())
}

fn psqlrun(args: &[String]) -> anyhow::Result<()> {
    ensure!(args.len() == 5, "psqlrun DB_URL TEMPLATE_FILE PREFIX COUNT WORK_DIR");
    let db = &args[0];
    let template = std::fs::read_to_string(&args[1])?;
    let prefix = &args[2];
    let count: usize = args[3].parse()?;
    let dir = std::path::Path::new(&args[4]);
    let psql = |extra: &[&str]| -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .output()
            .context("psql")?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(ms)
    };
    // psql's own cost: process start, connection, one trivial statement.
    let mut overhead = Vec::new();
    for _ in 0..20 {
        overhead.push(psql(&["-c", "select 1"])?);
    }
    let mut raw = Vec::new();
    for n in 1..=count {
        let tid = format!("{prefix}{n:05}");
        let sql = template
            .replace("__TENANT__", &tid)
            .replace("__APP_ID__", &(500_000 + n).to_string())
            .replace("__TOKEN_HASH__", &format!("{:064x}", n as u128 * 0x9e37_79b9_7f4a_7c15));
        let f = dir.join(format!("{tid}.sql"));
        std::fs::write(&f, sql)?;
        raw.push(psql(&["-1", "-f", f.to_str().unwrap()])?);
    }
    let mut o = overhead.clone();
    o.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let oh = pct(&o, 0.5);
    let net: Vec<f64> = raw.iter().map(|r| (r - oh).max(0.0)).collect();
    let mut out = serde_json::Map::new();
    for (name, v) in [("raw", summary(raw)), ("overhead", summary(overhead)), ("net", summary(net))] {
        for (k, x) in v.as_object().unwrap() {
            out.insert(format!("{name}_{k}"), x.clone());
        }
    }
    kv(&serde_json::Value::Object(out));
    Ok(())
}

async fn rt(args: &[String]) -> anyhow::Result<()> {
    ensure!(args.len() == 4 || args.len() == 5, "rt URL PROXY_CONTROL_URL COUNT WARMUP [TOKENS_FILE]");
    let url = format!("{}/api/users", args[0].trim_end_matches('/'));
    let ctl = args[1].trim_end_matches('/').to_owned();
    let count: usize = args[2].parse()?;
    let warmup: usize = args[3].parse()?;
    let tokens: Vec<(String, String)> = match args.get(4) {
        Some(f) => std::fs::read_to_string(f)?
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
            .collect(),
        None => Vec::new(),
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()?;
    let get = |i: usize| {
        let mut r = client.get(&url);
        if !tokens.is_empty() {
            let (t, tok) = &tokens[i % tokens.len()];
            r = r.header("X-Tenant-ID", t).header("Authorization", format!("Bearer {tok}"));
        }
        r
    };
    for i in 0..warmup {
        let r = get(i).send().await?;
        ensure!(r.status().is_success(), "warm-up request: {}", r.status());
        r.bytes().await?;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    reqwest::get(format!("{ctl}/reset")).await?.error_for_status()?;
    let mut rows = 0usize;
    for i in 0..count {
        let r = get(warmup + i).send().await?;
        ensure!(r.status().is_success(), "request: {}", r.status());
        let v: serde_json::Value = r.json().await?;
        rows += v["users"].as_array().map_or(0, |a| a.len());
    }
    // Connections are pinged when they return to the pool, after the response.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stats: serde_json::Value = reqwest::get(format!("{ctl}/stats")).await?.json().await?;
    let rts = stats["round_trips"].as_f64().unwrap_or(0.0);
    let mut bursts: Vec<(String, f64)> = stats["bursts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0) / count as f64))
                .collect()
        })
        .unwrap_or_default();
    bursts.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap());
    kv(&json!({
        "requests": count,
        "rows_per_request": rows as f64 / count as f64,
        "round_trips": rts,
        "per_request": rts / count as f64,
        "new_connections": stats["connections"],
    }));
    for (label, per) in bursts {
        println!("BURST {per:.3} {label}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        bail!("usage: benchtool jwts|onboard|psqlrun|rt ...");
    };
    let rest = &args[1..];
    let rt_ = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    match cmd.as_str() {
        "jwts" => jwts(rest),
        "onboard" => rt_()?.block_on(onboard(rest)),
        "psqlrun" => psqlrun(rest),
        "rt" => rt_()?.block_on(rt(rest)),
        other => bail!("unknown command {other}"),
    }
}
