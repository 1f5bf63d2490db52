//! The OpenAPI document lists every route the code serves.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

/// `(METHOD, /api/path)` for every `.route("…", get(…).post(…))` under src/http/ (and its folders).
fn routes_in_code() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let call_end = rest.find("))").map_or(rest.len(), |e| e + 2);
            let call = &rest[..call_end];
            let Some(p0) = call.find('"') else { continue };
            let p1 = p0 + 1 + call[p0 + 1..].find('"').unwrap();
            let route = &call[p0 + 1..p1];
            if route == "/openapi.json" {
                continue;
            }
            let mut any = false;
            for m in ["get", "post", "put", "patch", "delete"] {
                if call.contains(&format!("{m}(")) {
                    out.insert((m.to_uppercase(), format!("/api{route}")));
                    any = true;
                }
            }
            assert!(any, "no method found in {call:?} ({})", path.display());
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/openapi.json").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let routes = routes_in_code();
    assert!(routes.len() >= 10, "{routes:?}");
    let mut missing = Vec::new();
    for (method, path) in &routes {
        if doc["paths"][path][method.to_lowercase()].is_null() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /api/openapi.json: {missing:?}"
    );

    let docs = app.get("/api/docs").send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let page = docs.text().await.unwrap();
    assert!(page.contains("api-reference"), "not the docs page");
    assert!(
        page.contains("\"/api/tenant/create\""),
        "the page does not carry the document"
    );
}
