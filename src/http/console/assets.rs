//! The console's files, embedded in the binary (`include_str!`): no build step, nothing
//! to deploy beside it.
//!
//! The page (`/api/console/`) loads its scripts and styles from
//! `/api/console/assets/<version>/…`, where `<version>` is a digest of all the files:
//! a file under the current version never changes, so browsers keep it for a year
//! (`immutable`); the page itself is revalidated on every visit (`no-cache` + `ETag`,
//! answered `304 Not Modified` when unchanged). A request for another version (a page
//! loaded from a replica running another build) gets the current file, not cached.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{ApiPath, Error, Result};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const fn file(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page loads.
static FILES: &[Asset] = &[
    file(
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    file("app.js", JS, include_str!("assets/app.js")),
    file("api.js", JS, include_str!("assets/api.js")),
    file("dom.js", JS, include_str!("assets/dom.js")),
    file("i18n.js", JS, include_str!("assets/i18n.js")),
    file("chart.js", JS, include_str!("assets/chart.js")),
    file("tenants.js", JS, include_str!("assets/tenants.js")),
    file("tenant.js", JS, include_str!("assets/tenant.js")),
    file(
        "applications.js",
        JS,
        include_str!("assets/applications.js"),
    ),
    file("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
];

const INDEX_TEMPLATE: &str = include_str!("assets/index.html");

/// A file ready to serve: its bytes and strong ETag.
struct Served {
    body: Bytes,
    etag: HeaderValue,
}

fn etag_of(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest[..12])))
        .expect("hex is a valid header value")
}

struct Built {
    version: String,
    index: Served,
    files: Vec<Served>,
}

/// Digests computed once, at the first request: the files are constants of the binary.
static BUILT: LazyLock<Built> = LazyLock::new(|| {
    let mut all = Sha256::new();
    for f in FILES {
        all.update(f.name.as_bytes());
        all.update([0]);
        all.update(f.body.as_bytes());
        all.update([0]);
    }
    all.update(INDEX_TEMPLATE.as_bytes());
    let version = hex::encode(&all.finalize()[..6]);
    let html = INDEX_TEMPLATE.replace("{{ASSETS}}", &format!("/api/console/assets/{version}"));
    let files = FILES
        .iter()
        .map(|f| Served {
            body: Bytes::from_static(f.body.as_bytes()),
            etag: etag_of(f.body.as_bytes()),
        })
        .collect();
    Built {
        version,
        index: Served {
            etag: etag_of(html.as_bytes()),
            body: Bytes::from(html),
        },
        files,
    }
});

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let want = etag.to_str().unwrap_or_default();
    inm.split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == want)
}

fn serve(
    headers: &HeaderMap,
    file: &Served,
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let common = [
        (header::ETAG, file.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
    ];
    if not_modified(headers, &file.etag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        file.body.clone(),
    )
        .into_response()
}

/// The console's page; everything else it needs comes from its scripts.
#[utoipa::path(get, path = "/api/console/", tag = "console",
    responses((status = 200, description = "The console's page", content_type = "text/html"),
              (status = 304, description = "Not modified (If-None-Match)")))]
pub async fn index(headers: HeaderMap) -> Response {
    let b = &*BUILT;
    serve(&headers, &b.index, "text/html; charset=utf-8", "no-cache")
}

/// One of the console's scripts, styles or pictures.
#[utoipa::path(get, path = "/api/console/assets/{version}/{file}", tag = "console",
    params(("version" = String, Path, description = "The assets' version (any: the current files are served)"),
           ("file" = String, Path, description = "File name, e.g. app.js")),
    responses((status = 200, description = "The file", content_type = "text/javascript"),
              (status = 304, description = "Not modified (If-None-Match)"),
              (status = 404, description = "No such file")))]
pub async fn asset(
    headers: HeaderMap,
    ApiPath((version, file)): ApiPath<(String, String)>,
) -> Result<Response> {
    let b = &*BUILT;
    let Some(i) = FILES.iter().position(|f| f.name == file) else {
        return Err(Error::not_found(
            "console_asset_not_found",
            "No such console file",
        ));
    };
    let cache = if version == b.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(serve(&headers, &b.files[i], FILES[i].content_type, cache))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_points_at_the_current_assets() {
        let b = &*BUILT;
        let html = std::str::from_utf8(&b.index.body).unwrap();
        assert!(!html.contains("{{"), "template not filled");
        assert!(html.contains(&format!("/api/console/assets/{}/app.js", b.version)));
        assert!(html.contains(&format!("/api/console/assets/{}/console.css", b.version)));
    }

    #[test]
    fn every_module_a_script_imports_is_served() {
        for f in FILES.iter().filter(|f| f.name.ends_with(".js")) {
            for line in f.body.lines() {
                let Some(rest) = line.trim().strip_prefix("import ") else {
                    continue;
                };
                let Some(from) = rest.split("from \"./").nth(1) else {
                    continue;
                };
                let target = from.split('"').next().unwrap();
                assert!(
                    FILES.iter().any(|g| g.name == target),
                    "{} imports {target}, which is not served",
                    f.name
                );
            }
        }
    }

    #[test]
    fn if_none_match_is_honoured() {
        let e = etag_of(b"x");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &e));
        h.insert(header::IF_NONE_MATCH, e.clone());
        assert!(not_modified(&h, &e));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"other\", W/\"x\""),
        );
        assert!(!not_modified(&h, &e));
    }

    #[test]
    fn the_files_are_small() {
        let total: usize = FILES.iter().map(|f| f.body.len()).sum();
        assert!(total < 160 * 1024, "console assets are {total} bytes");
    }
}
