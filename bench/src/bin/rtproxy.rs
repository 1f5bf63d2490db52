//! A TCP proxy between a server and Postgres that counts database round trips.
//!
//! A round trip is a burst of client→server bytes followed by a reply: each change of
//! direction from client→server to server→client on a connection counts once. The
//! client's protocol messages are parsed so each counted burst is labelled with what it
//! carried (simple queries, parses, binds of named statements, a lone Sync = a ping).
//!
//! Usage: rtproxy LISTEN_ADDR UPSTREAM_ADDR CONTROL_ADDR
//! Control: `GET /stats` (JSON), `GET /reset`; SIGUSR1 prints the stats on stdout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default, Serialize, Clone)]
struct Stats {
    round_trips: u64,
    connections: u64,
    client_bytes: u64,
    server_bytes: u64,
    /// Round trips by what the client's burst carried.
    bursts: HashMap<String, u64>,
}

type Shared = Arc<Mutex<Stats>>;

/// One connection's state, shared by both directions.
#[derive(Default)]
struct Conn {
    /// Client bytes were sent that no server bytes have answered yet.
    pending: bool,
    /// What the pending burst carried.
    labels: Vec<String>,
}

/// Parses the client's side of the protocol.
struct Parser {
    buf: Vec<u8>,
    startup: bool,
    statements: HashMap<String, String>,
}

/// Collapses whitespace, writes digits inside quoted identifiers as `N` (so one
/// statement run in many tenant schemas counts as one kind) and shortens.
fn short(q: &str) -> String {
    let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(q.len());
    let mut quoted = false;
    let mut last_digit = false;
    for c in q.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if quoted && c.is_ascii_digit() {
            if !last_digit {
                out.push('N');
            }
            last_digit = true;
            continue;
        }
        last_digit = false;
        out.push(c);
    }
    if out.chars().count() > 240 {
        format!("{}…", out.chars().take(240).collect::<String>())
    } else {
        out
    }
}

fn cstr(b: &[u8]) -> (String, &[u8]) {
    match b.iter().position(|&c| c == 0) {
        Some(i) => (String::from_utf8_lossy(&b[..i]).into_owned(), &b[i + 1..]),
        None => (String::from_utf8_lossy(b).into_owned(), &[]),
    }
}

impl Parser {
    fn new() -> Self {
        Self { buf: Vec::new(), startup: true, statements: HashMap::new() }
    }

    /// Feeds client bytes; returns labels of the complete messages.
    fn feed(&mut self, data: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            if self.startup {
                if self.buf.len() < 8 {
                    break;
                }
                let len = u32::from_be_bytes(self.buf[0..4].try_into().unwrap()) as usize;
                if self.buf.len() < len {
                    break;
                }
                let code = u32::from_be_bytes(self.buf[4..8].try_into().unwrap());
                if code == 196608 {
                    self.startup = false;
                    out.push("startup".to_owned());
                }
                self.buf.drain(..len.max(8));
                continue;
            }
            if self.buf.len() < 5 {
                break;
            }
            let ty = self.buf[0];
            let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
            if self.buf.len() < 1 + len {
                break;
            }
            let body = self.buf[5..1 + len].to_vec();
            self.buf.drain(..1 + len);
            match ty {
                b'Q' => out.push(format!("simple: {}", short(&cstr(&body).0))),
                b'P' => {
                    let (name, rest) = cstr(&body);
                    let (q, _) = cstr(rest);
                    self.statements.insert(name, q.clone());
                    out.push(format!("parse: {}", short(&q)));
                }
                b'B' => {
                    let (_portal, rest) = cstr(&body);
                    let (stmt, _) = cstr(rest);
                    let q = self
                        .statements
                        .get(&stmt)
                        .cloned()
                        .unwrap_or_else(|| format!("<statement {stmt}>"));
                    out.push(format!("execute: {}", short(&q)));
                }
                b'S' => out.push("Sync".to_owned()),
                b'X' => out.push("Terminate".to_owned()),
                b'C' => {
                    if body.first() == Some(&b'S') {
                        let (name, _) = cstr(&body[1..]);
                        self.statements.remove(&name);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn burst_label(labels: &[String]) -> String {
    let mut parts: Vec<&str> = labels
        .iter()
        .filter(|l| l.as_str() != "Sync")
        .map(|l| l.as_str())
        .collect();
    parts.dedup();
    if parts.is_empty() {
        if labels.iter().any(|l| l == "Sync") {
            "Sync only (sqlx ping)".to_owned()
        } else {
            "other".to_owned()
        }
    } else {
        parts.join(" | ")
    }
}

async fn handle(client: TcpStream, upstream: String, stats: Shared) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect(&upstream).await?;
    server.set_nodelay(true)?;
    stats.lock().unwrap().connections += 1;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let conn = Arc::new(Mutex::new(Conn::default()));

    let c2s = {
        let conn = conn.clone();
        let stats = stats.clone();
        async move {
            let mut parser = Parser::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = cr.read(&mut buf).await?;
                if n == 0 {
                    let _ = sw.shutdown().await;
                    return Ok::<_, std::io::Error>(());
                }
                // The proxy must read the protocol: TLS is refused outright.
                if parser.startup && n == 8 && buf[4..8] == 80877103u32.to_be_bytes() {
                    return Err(std::io::Error::other("SSLRequest: connect with sslmode=disable"));
                }
                let labels = parser.feed(&buf[..n]);
                {
                    let mut c = conn.lock().unwrap();
                    c.pending = true;
                    c.labels.extend(labels);
                }
                stats.lock().unwrap().client_bytes += n as u64;
                sw.write_all(&buf[..n]).await?;
            }
        }
    };
    let s2c = {
        let conn = conn.clone();
        let stats = stats.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = sr.read(&mut buf).await?;
                if n == 0 {
                    let _ = cw.shutdown().await;
                    return Ok::<_, std::io::Error>(());
                }
                let label = {
                    let mut c = conn.lock().unwrap();
                    if c.pending {
                        c.pending = false;
                        Some(burst_label(&std::mem::take(&mut c.labels)))
                    } else {
                        None
                    }
                };
                {
                    let mut s = stats.lock().unwrap();
                    s.server_bytes += n as u64;
                    if let Some(l) = label {
                        s.round_trips += 1;
                        *s.bursts.entry(l).or_default() += 1;
                    }
                }
                cw.write_all(&buf[..n]).await?;
            }
        }
    };
    let _ = tokio::try_join!(c2s, s2c);
    Ok(())
}

async fn control(listener: TcpListener, stats: Shared) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let body = if path.starts_with("/reset") {
                *stats.lock().unwrap() = Stats::default();
                "{\"reset\":true}".to_owned()
            } else {
                serde_json::to_string(&*stats.lock().unwrap()).unwrap()
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 4, "usage: rtproxy LISTEN_ADDR UPSTREAM_ADDR CONTROL_ADDR");
    let listener = TcpListener::bind(&args[1]).await?;
    let ctl = TcpListener::bind(&args[3]).await?;
    let upstream = args[2].clone();
    let stats: Shared = Arc::default();
    tokio::spawn(control(ctl, stats.clone()));
    {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut sig = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                .expect("SIGUSR1 handler");
            while sig.recv().await.is_some() {
                println!("{}", serde_json::to_string(&*stats.lock().unwrap()).unwrap());
            }
        });
    }
    loop {
        let (c, _) = listener.accept().await?;
        let up = upstream.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(c, up, stats).await {
                eprintln!("rtproxy: connection: {e}");
            }
        });
    }
}
