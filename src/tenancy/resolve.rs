//! Per-request tenant resolution: `X-Tenant-ID`, then `?tenant=`, then the `tenant_id`
//! cookie, then the subdomain of `Host` under `BASE_DOMAIN`, then `DEFAULT_TENANT`.
//!
//! The first source that is present decides; an invalid value there is a 400 (it never
//! falls through to a later source). The result goes into the request extensions and a
//! tokio task-local for the rest of the request. A task spawned from a handler does not
//! inherit the task-local: pass the `TenantId` explicitly.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::error::Error;
use crate::tenant_id::TenantId;

tokio::task_local! {
    static CURRENT_TENANT: ResolvedTenant;
}

/// Where the tenant of a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Header,
    Query,
    Cookie,
    Subdomain,
    Default,
}

/// The outcome of resolution: a tenant (and its source), or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTenant {
    pub tenant: Option<TenantId>,
    pub source: Source,
}

/// The tenant of the request being served, if called inside one.
pub fn current_tenant() -> Option<TenantId> {
    CURRENT_TENANT.try_with(|r| r.tenant.clone()).ok().flatten()
}

/// The resolution middleware: a request naming an invalid tenant is refused (400);
/// otherwise the rest of it runs with its [`ResolvedTenant`] in the extensions and the
/// task-local.
pub async fn layer(State(config): State<Arc<Config>>, mut req: Request, next: Next) -> Response {
    let resolved = match resolve(&config, req.headers(), req.uri()) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(resolved.clone());
    CURRENT_TENANT.scope(resolved, next.run(req)).await
}

/// What a request's log lines say its tenant is (`tenant_id` of the `request` span,
/// set when the span opens): the resolved tenant, `-` for none, or `!invalid` when the
/// tenant it names is not a valid id (it is answered 400). Neither can be a tenant id.
pub fn log_label(config: &Config, headers: &HeaderMap, uri: &Uri) -> String {
    match resolve(config, headers, uri) {
        Ok(ResolvedTenant {
            tenant: Some(t), ..
        }) => t.as_str().to_owned(),
        Ok(_) => "-".to_owned(),
        Err(_) => "!invalid".to_owned(),
    }
}

/// Resolves the tenant of a request from its headers and URI.
pub fn resolve(config: &Config, headers: &HeaderMap, uri: &Uri) -> Result<ResolvedTenant, Error> {
    let candidates = [
        (Source::Header, header_value(headers)),
        (
            Source::Query,
            uri.query().and_then(|q| query_value(q, "tenant")),
        ),
        (Source::Cookie, cookie_value(headers, "tenant_id")),
        (
            Source::Subdomain,
            config
                .base_domain
                .as_deref()
                .and_then(|base| subdomain(&host(headers, uri)?, base)),
        ),
    ];
    for (source, value) in candidates {
        if let Some(raw) = value {
            let id = config.parse_tenant(&raw).map_err(|e| {
                Error::bad_request("invalid_tenant_id", format!("Invalid tenant id: {e}"))
            })?;
            return Ok(ResolvedTenant {
                tenant: Some(id),
                source,
            });
        }
    }
    Ok(ResolvedTenant {
        tenant: config.default_tenant.clone(),
        source: Source::Default,
    })
}

fn header_value(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("x-tenant-id")?;
    // A header that is not visible ASCII still counts as present (and is refused).
    Some(
        v.to_str()
            .map(str::to_owned)
            .unwrap_or_else(|_| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    )
}

/// The value of `key` in a query string, percent-decoded; `Some("")` when empty.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded_pairs(query).find_map(|(k, v)| (k == key).then_some(v))
}

fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex_val(*b)),
                bytes.get(i + 2).and_then(|b| hex_val(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The value of a cookie, from every `Cookie` header of the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        // Bytes that are not UTF-8 stay visible (and get refused), never skipped.
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .find_map(|v| {
            v.split(';').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k.trim() == name).then(|| percent_decode(v.trim().trim_matches('"')))
            })
        })
}

fn host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    match headers.get(header::HOST) {
        Some(h) => Some(String::from_utf8_lossy(h.as_bytes()).into_owned()),
        None => uri.host().map(str::to_owned),
    }
}

/// `univ_8.ktutor.k-university.ai:443` under `ktutor.k-university.ai` → `univ_8`.
pub fn subdomain(host: &str, base: &str) -> Option<String> {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let prefix = host.strip_suffix(base)?.strip_suffix('.')?;
    (!prefix.is_empty()).then(|| prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_under_the_base_domain() {
        let base = "ktutor.k-university.ai";
        assert_eq!(
            subdomain("univ_8.ktutor.k-university.ai", base).as_deref(),
            Some("univ_8")
        );
        assert_eq!(
            subdomain("Univ_8.KTUTOR.k-university.ai:8443", base).as_deref(),
            Some("univ_8")
        );
        assert_eq!(subdomain("ktutor.k-university.ai", base), None);
        assert_eq!(subdomain("evilktutor.k-university.ai", base), None);
        assert_eq!(subdomain("other.example.com", base), None);
        assert_eq!(
            subdomain("a.b.ktutor.k-university.ai", base).as_deref(),
            Some("a.b")
        );
    }

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            query_value("a=1&tenant=univ_8", "tenant").as_deref(),
            Some("univ_8")
        );
        assert_eq!(
            query_value("tenant=a%3B%20b", "tenant").as_deref(),
            Some("a; b")
        );
        assert_eq!(query_value("tenant=", "tenant").as_deref(), Some(""));
        assert_eq!(query_value("tenant=%", "tenant").as_deref(), Some("%"));
        assert_eq!(query_value("tenant=%4", "tenant").as_deref(), Some("%4"));
        assert_eq!(query_value("x=1", "tenant"), None);
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; tenant_id=univ_8; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&h, "tenant_id").as_deref(), Some("univ_8"));
        assert_eq!(cookie_value(&h, "missing"), None);
        // A cookie that is not UTF-8 is still seen (and will be refused), not skipped.
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            axum::http::HeaderValue::from_bytes(b"tenant_id=\xff\xfe").unwrap(),
        );
        assert_eq!(
            cookie_value(&h, "tenant_id").as_deref(),
            Some("\u{fffd}\u{fffd}")
        );
    }
}
