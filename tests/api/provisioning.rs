use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{API_KEY, TestApp, assert_json_error};

/// Catalog facts of one schema, with the schema's own name replaced by `S`.
async fn structure(app: &TestApp, schema: &str) -> BTreeSet<String> {
    let rows: Vec<(String,)> = sqlx::query_as(
        r#"
        SELECT format('column %s.%s %s null=%s default=%s identity=%s', c.relname, a.attname,
                      format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
                      pg_get_expr(d.adbin, d.adrelid), a.attidentity)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT format('index %s', replace(pg_get_indexdef(i.indexrelid), quote_ident($1) || '.', 'S.'))
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
        UNION ALL
        SELECT format('constraint %s %s %s', rel.relname, con.conname,
                      replace(pg_get_constraintdef(con.oid), quote_ident($1) || '.', 'S.'))
          FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
          JOIN pg_namespace n ON n.oid = rel.relnamespace WHERE n.nspname = $1
        UNION ALL
        SELECT format('fk %s -> %s', con.conname,
                      CASE WHEN tn.nspname = $1 THEN 'S.' ELSE tn.nspname || '.' END || t.relname)
          FROM pg_constraint con JOIN pg_class t ON t.oid = con.confrelid
          JOIN pg_namespace tn ON tn.oid = t.relnamespace
          JOIN pg_class rel ON rel.oid = con.conrelid
          JOIN pg_namespace n ON n.oid = rel.relnamespace
         WHERE con.contype = 'f' AND n.nspname = $1
        UNION ALL
        SELECT format('sequence %s owned by %s', s.relname,
                      CASE WHEN tn.nspname = $1 THEN 'S.' ELSE tn.nspname || '.' END || t.relname)
          FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
          JOIN pg_depend dep ON dep.objid = s.oid AND dep.deptype IN ('a', 'i')
          JOIN pg_class t ON t.oid = dep.refobjid
          JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE s.relkind = 'S' AND n.nspname = $1
        "#,
    )
    .bind(schema)
    .fetch_all(&app.db)
    .await
    .unwrap();
    rows.into_iter().map(|(r,)| r).collect()
}

type TenantRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    String,
);

#[tokio::test]
async fn the_seeds_curl_creates_test_univ_as_a_complete_copy_of_the_template() {
    let app = TestApp::spawn_with(|env| {
        env.insert("TENANT_API_KEY".into(), "your_api_key".into());
    })
    .await;
    // The template's identity and another tenant's have moved on: the new tenant's must not.
    sqlx::query("INSERT INTO template_schema.user_mst (email) SELECT 'x' || g || '@t.kr' FROM generate_series(1, 5) g")
        .execute(&app.db)
        .await
        .unwrap();
    app.client
        .post(app.url("/api/tenant/create"))
        .header("X-API-Key", "your_api_key")
        .json(&json!({"tenant_id": "other_univ", "tenant_name": "x", "admin_email": "a@b.kr", "application_id": 7, "application_kind": "demo"}))
        .send().await.unwrap();
    sqlx::query("INSERT INTO other_univ.user_mst (email) SELECT 'y' || g || '@t.kr' FROM generate_series(1, 3) g")
        .execute(&app.db)
        .await
        .unwrap();

    // Sent exactly as the seed's 7.1.2 shows.
    let resp = app
        .client
        .post(app.url("/api/tenant/create"))
        .header("Content-Type", "application/json")
        .header("X-API-Key", "your_api_key")
        .body(
            r#"{
    "tenant_id": "test_univ",
    "tenant_name": "테스트대학교",
    "admin_email": "admin@test.ac.kr",
    "admin_name": "관리자",
    "application_id": 1,
    "application_kind": "service"
  }"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["tenant_id"], "test_univ");
    assert_eq!(
        body["access_url"],
        "https://myservice.k-university.ai?tenant=test_univ"
    );

    assert!(app.schema_exists("test_univ").await);
    let template = structure(&app, "template_schema").await;
    let tenant = structure(&app, "test_univ").await;
    assert!(
        template
            .iter()
            .any(|r| r.starts_with("fk chat_his_user_id_fkey -> S.user_mst")),
        "{template:#?}"
    );
    assert!(
        template
            .iter()
            .any(|r| r.starts_with("index CREATE INDEX chat_his_reg_dtm_idx"))
    );
    assert!(
        template
            .iter()
            .any(|r| r.contains("sequence user_mst_id_seq owned by S.user_mst"))
    );
    assert_eq!(template, tenant, "test_univ differs from the template");

    // The registry row carries the seed's columns.
    let row: TenantRow = sqlx::query_as(
        "SELECT tenant_id, tenant_name, admin_email, admin_name, application_id, application_kind, status FROM hltutor.tenants WHERE tenant_id = 'test_univ'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(row.1, "테스트대학교");
    assert_eq!(row.2.as_deref(), Some("admin@test.ac.kr"));
    assert_eq!(row.3.as_deref(), Some("관리자"));
    assert_eq!(row.4, Some(1));
    assert_eq!(row.5.as_deref(), Some("service"));
    assert_eq!(row.6, "active");

    // The admin is the tenant's first user: id 1, whatever the template or others hold.
    let admin: (i64, String, String, String) =
        sqlx::query_as("SELECT id, email, name, role FROM test_univ.user_mst")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        admin,
        (
            1,
            "admin@test.ac.kr".into(),
            "관리자".into(),
            "admin".into()
        )
    );
    let next: i64 =
        sqlx::query_scalar("INSERT INTO test_univ.user_mst (email) VALUES ('n@t.kr') RETURNING id")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(next, 2);
    // The foreign key points inside the tenant: a chat for a user of another schema fails.
    let err = sqlx::query(
        "INSERT INTO test_univ.chat_his (user_id, message, reply) VALUES (99, 'm', 'r')",
    )
    .execute(&app.db)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("chat_his_user_id_fkey"), "{err}");

    let events = app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events WHERE tenant_id = 'test_univ' AND event = 'created'").await;
    assert_eq!(events, 1);
    let version = app
        .scalar_i64(
            "SELECT version FROM hltutor.tenant_schema_versions WHERE schema_name = 'test_univ'",
        )
        .await;
    assert_eq!(version, mtpaas::schema::migrate::latest_tenant_version());
}

#[tokio::test]
async fn the_same_request_again_is_200_and_creates_nothing_twice() {
    let app = TestApp::spawn().await;
    let first = app.create_tenant("univ_8", 8).await;
    assert_eq!(first["created"], true);
    let again = app.create_tenant("univ_8", 8).await;
    assert_eq!(again["created"], false);
    assert_eq!(again["tenant_id"], "univ_8");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM univ_8.user_mst").await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events")
            .await,
        1
    );

    let other_app = app
        .create_tenant_raw(&TestApp::create_body("univ_8", 9))
        .await;
    let body = assert_json_error(other_app, 409).await;
    assert_eq!(body["code"], "tenant_exists");
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        1
    );
}

#[tokio::test]
async fn ten_concurrent_creates_make_one_tenant() {
    let app = TestApp::spawn().await;
    // Five from application 1 and five from application 2, all at once.
    let sends = (0..10).map(|i| {
        let body = TestApp::create_body("race_univ", if i % 2 == 0 { 1 } else { 2 });
        let app = &app;
        async move {
            let r = app.create_tenant_raw(&body).await;
            let status = r.status().as_u16();
            let json: Value = r.json().await.unwrap();
            (body["application_id"].as_i64().unwrap(), status, json)
        }
    });
    let results = join_all(sends).await;
    let created: Vec<_> = results
        .iter()
        .filter(|(_, s, j)| *s == 200 && j["created"] == true)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    let winner = created[0].0;
    for (app_id, status, json) in &results {
        if *app_id == winner {
            assert_eq!(*status, 200, "{json}");
        } else {
            assert_eq!(*status, 409, "{json}");
            assert_eq!(json["code"], "tenant_exists");
        }
    }
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM pg_namespace WHERE nspname = 'race_univ'")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM race_univ.user_mst")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events")
            .await,
        1
    );
    let app_of_row = app
        .scalar_i64("SELECT application_id::bigint FROM hltutor.tenants")
        .await;
    assert_eq!(app_of_row, winner);
}

#[tokio::test]
async fn a_failure_midway_through_provisioning_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    // The history insert is the last step: by then the row, the schema and the admin exist
    // inside the transaction. Make it fail for this tenant.
    sqlx::raw_sql(
        "CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.tenant_id = 'boom_univ' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER boom BEFORE INSERT ON hltutor.tenant_events FOR EACH ROW EXECUTE FUNCTION public.boom();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let resp = app
        .create_tenant_raw(&TestApp::create_body("boom_univ", 5))
        .await;
    let body = assert_json_error(resp, 500).await;
    assert!(
        !body["detail"].as_str().unwrap().contains("injected"),
        "cause leaked: {body}"
    );
    assert!(!app.schema_exists("boom_univ").await);
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        0
    );
    assert_eq!(
        app.scalar_i64(
            "SELECT count(*) FROM hltutor.tenant_schema_versions WHERE schema_name = 'boom_univ'"
        )
        .await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events")
            .await,
        0
    );
    let health = app
        .get("/api/users")
        .header("X-Tenant-ID", "boom_univ")
        .send()
        .await
        .unwrap();
    assert_json_error(health, 404).await;

    // Nothing was left that would stop a clean retry.
    sqlx::raw_sql("DROP TRIGGER boom ON hltutor.tenant_events")
        .execute(&app.db)
        .await
        .unwrap();
    let created = app.create_tenant("boom_univ", 5).await;
    assert_eq!(created["created"], true);
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM boom_univ.user_mst")
            .await,
        1
    );
}

const BAD_IDS: &[&str] = &[
    "Univ-8",
    "pg_x",
    "public",
    "hltutor",
    "template_schema",
    "a; DROP SCHEMA public",
    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghija", // 51
    "",
    "대학교",
    "information_schema",
];

#[tokio::test]
async fn bad_tenant_ids_in_the_body_are_refused_and_create_nothing() {
    let app = TestApp::spawn().await;
    for bad in BAD_IDS {
        let mut body = TestApp::create_body("x", 1);
        body["tenant_id"] = json!(bad);
        let resp = app.create_tenant_raw(&body).await;
        let err = assert_json_error(resp, 400).await;
        assert_eq!(err["code"], "invalid_tenant_id", "{bad:?}: {err}");
    }
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        0
    );
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenant_events")
            .await,
        0
    );
    // No schema appeared besides the central, template and system ones.
    let schemas: Vec<String> = sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname NOT IN ('public','information_schema','hltutor','template_schema') AND nspname NOT LIKE 'pg\\_%'")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(schemas.is_empty(), "{schemas:?}");
    // The schema `public` was not dropped.
    assert!(app.schema_exists("public").await);
}

#[tokio::test]
async fn bad_tenant_ids_in_x_tenant_id_get_400() {
    let app = TestApp::spawn().await;
    for bad in BAD_IDS {
        let value = reqwest::header::HeaderValue::from_bytes(bad.as_bytes()).unwrap();
        for path in ["/api/health", "/api/users"] {
            let resp = app
                .get(path)
                .header("X-Tenant-ID", value.clone())
                .send()
                .await
                .unwrap();
            let err = assert_json_error(resp, 400).await;
            assert_eq!(err["code"], "invalid_tenant_id", "{bad:?}");
        }
    }
}

#[tokio::test]
async fn the_create_route_requires_the_api_key() {
    let app = TestApp::spawn().await;
    let body = TestApp::create_body("keyless", 1);
    let none = app
        .post("/api/tenant/create")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_json_error(none, 401).await;
    let wrong = app
        .post("/api/tenant/create")
        .header("X-API-Key", format!("{API_KEY}x"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_json_error(wrong, 401).await;
    assert_eq!(
        app.scalar_i64("SELECT count(*) FROM hltutor.tenants").await,
        0
    );
}
