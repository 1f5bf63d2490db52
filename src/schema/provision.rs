//! Provisioning: a new tenant's schema, registry row, admin user and `created` event,
//! all in one transaction.
//!
//! The schema is built by running the same tenant migrations that built the template,
//! in order, with `search_path` set to the new schema only. Every table, column,
//! default, index, constraint and foreign key is therefore identical to the template's
//! by construction, foreign keys point inside the new schema, and identity columns get
//! sequences of their own (`mtpaas check` verifies the copy against the template). The
//! DDL goes one statement per message (`CREATE SCHEMA` and the path in the first), as
//! Citus needs to distribute the schema: creating a tenant costs BEGIN, claiming the
//! row, one round trip per DDL statement, admin + version + event + notify, COMMIT.

use serde::Serialize;
use sqlx::{Acquire, Executor, PgPool};

use crate::auth::password::{SETUP_TOKEN_TTL_HOURS, new_setup_token};
use crate::error::{Error, Result};
use crate::schema::migrate::{execute_each, latest_tenant_version, pending_script};
use crate::tenancy::directory::CHANNEL;
use crate::tenant_id::TenantId;

/// A validated request for a new tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub admin_email: String,
    pub admin_name: Option<String>,
    pub university_name: Option<String>,
    pub contact: Option<String>,
    pub description: Option<String>,
    pub application_id: Option<i32>,
    pub application_kind: Option<String>,
}

/// What provisioning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Provisioned {
    /// A new tenant, with its admin user and the admin's one-time setup token.
    Created {
        admin_user_id: i64,
        setup_token: String,
    },
    /// The same request was already carried out: nothing was created.
    AlreadyExists,
}

/// Who asked, for the history.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Market,
    Cli,
    Superadmin,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Market => "market",
            Actor::Cli => "cli",
            Actor::Superadmin => "superadmin",
        }
    }
}

/// Creates a tenant, or recognises the same request again.
///
/// Concurrent creates of one id serialise on the registry's primary key: the first
/// claims the row; the others wait for it to commit, then see the row and answer
/// `AlreadyExists` (same application) or a 409 (another application). If the first
/// fails, everything it did is rolled back and a waiting one proceeds.
pub async fn create_tenant(
    pool: &PgPool,
    central: &TenantId,
    req: &NewTenant,
    actor: Actor,
) -> Result<Provisioned> {
    let c = central.quoted();
    let t = req.tenant_id.quoted();
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;

    let claimed: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {c}.tenants (tenant_id, tenant_name, admin_email, admin_name, \
         university_name, contact, description, application_id, application_kind, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active') \
         ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id"
    )))
    .bind(req.tenant_id.as_str())
    .bind(&req.tenant_name)
    .bind(&req.admin_email)
    .bind(&req.admin_name)
    .bind(&req.university_name)
    .bind(&req.contact)
    .bind(&req.description)
    .bind(req.application_id)
    .bind(&req.application_kind)
    .fetch_optional(&mut *tx)
    .await?;

    if claimed.is_none() {
        let (app, email): (Option<i32>, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(
            format!("SELECT application_id, admin_email FROM {c}.tenants WHERE tenant_id = $1"),
        ))
        .bind(req.tenant_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        let same = app == req.application_id
            && (app.is_some() || email.as_deref() == Some(req.admin_email.as_str()));
        return if same {
            Ok(Provisioned::AlreadyExists)
        } else {
            Err(Error::conflict(
                "tenant_exists",
                format!(
                    "Tenant id {} is already taken by another application",
                    req.tenant_id
                ),
            ))
        };
    }

    // One statement per message (`migrate::statements`: what Citus needs); the schema
    // and the path in the first.
    let ddl = async {
        tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {t}; SET LOCAL search_path TO {t}"
        ))))
        .await?;
        execute_each(&mut tx, &pending_script(0)).await
    };
    if let Err(e) = ddl.await {
        if let sqlx::Error::Database(dbe) = &e
            && dbe.code().as_deref() == Some("42P06")
        {
            return Err(Error::conflict(
                "schema_exists",
                format!(
                    "A schema named {} already exists in the database",
                    req.tenant_id
                ),
            ));
        }
        return Err(e.into());
    }

    let detail = format!(
        "Tenant created (application {}, {})",
        req.application_id
            .map_or_else(|| "none".to_owned(), |a| a.to_string()),
        req.application_kind.as_deref().unwrap_or("unspecified")
    );
    let channel = CHANNEL;
    let (setup_token, token_hash) = new_setup_token();
    let (admin_user_id,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH admin AS ( \
             INSERT INTO {t}.user_mst (email, name, role) VALUES ($2, $3, 'admin') RETURNING id \
         ), version AS ( \
             INSERT INTO {c}.tenant_schema_versions (schema_name, version) VALUES ($1, $4) \
             ON CONFLICT (schema_name) DO UPDATE SET version = EXCLUDED.version, updated_at = now() \
         ), event AS ( \
             INSERT INTO {c}.tenant_events (tenant_id, event, actor, detail) VALUES ($1, 'created', $5, $6) \
         ), token AS ( \
             INSERT INTO {c}.setup_tokens (token_hash, tenant_id, user_id, expires_at) \
             SELECT $7, $1, id, now() + make_interval(hours => $8) FROM admin \
         ) \
         SELECT (SELECT id FROM admin) FROM pg_notify('{channel}', $1)"
    )))
    .bind(req.tenant_id.as_str())
    .bind(&req.admin_email)
    .bind(req.admin_name.as_deref().unwrap_or(""))
    .bind(latest_tenant_version())
    .bind(actor.as_str())
    .bind(&detail)
    .bind(&token_hash)
    .bind(SETUP_TOKEN_TTL_HOURS as i32)
    .fetch_one(&mut *tx)
    .await?;

    tx.commit().await?;
    Ok(Provisioned::Created {
        admin_user_id,
        setup_token,
    })
}
