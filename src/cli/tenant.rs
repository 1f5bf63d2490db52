//! `mtpaas tenant list | show | create | suspend | reinstate | delete`: the API's tenant
//! operations for operators on the host, recorded in the history with actor `cli`.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::auth::setup;
use crate::config::Config;
use crate::http::tenants::CreateTenantRequest;
use crate::schema::provision::{Actor, Provisioned, create_tenant};
use crate::tenancy::directory::TenantStatus;
use crate::tenancy::lifecycle::{self, TenantRow};
use crate::tenant_id::TenantId;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum TenantCommand {
    /// List tenants, newest first.
    List {
        /// Only tenants with this status (active, suspended, deleted, purged).
        #[arg(long)]
        status: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant, its schema version and its history.
    Show {
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant: schema, registry row, admin user and history, in one transaction.
    Create(CreateArgs),
    /// Suspend an active tenant: its requests get 403 on every replica within a second.
    Suspend(ChangeArgs),
    /// Make a suspended or soft-deleted tenant active again.
    Reinstate(ChangeArgs),
    /// Soft-delete a tenant: its requests get 410; its schema is kept until `mtpaas purge`.
    Delete(ChangeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// The tenant id, which is also its schema name: `^[a-z][a-z0-9_]{0,49}$`.
    pub tenant: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub admin_email: String,
    #[arg(long)]
    pub admin_name: Option<String>,
    #[arg(long)]
    pub university: Option<String>,
    #[arg(long)]
    pub contact: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// The service market's application id.
    #[arg(long)]
    pub application_id: Option<i32>,
    /// demo or service.
    #[arg(long)]
    pub application_kind: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    pub tenant: String,
    /// Why, for the history (at most 255 characters).
    #[arg(long)]
    pub reason: Option<String>,
}

/// A tenant's registry row, its times as written, and its schema version: what the CLI
/// shows.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TenantRecord {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub tenant: TenantRow<NaiveDateTime>,
    pub schema_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TenantEvent {
    pub event: String,
    pub actor: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

fn select_records(central: &TenantId) -> String {
    let c = central.quoted();
    format!(
        "SELECT t.tenant_id, t.tenant_name, t.status, t.admin_email, t.admin_name, \
                t.university_name, t.contact, t.description, t.application_id, \
                t.application_kind, t.created_at, t.updated_at, t.suspended_at, \
                t.suspended_reason, t.deleted_at, t.deleted_reason, v.version AS schema_version \
           FROM {c}.tenants t \
           LEFT JOIN {c}.tenant_schema_versions v ON v.schema_name = t.tenant_id"
    )
}

pub async fn list(
    pool: &PgPool,
    central: &TenantId,
    status: Option<TenantStatus>,
) -> anyhow::Result<Vec<TenantRecord>> {
    let sql = format!(
        "{} WHERE $1::text IS NULL OR t.status = $1 ORDER BY t.created_at DESC NULLS LAST, t.tenant_id",
        select_records(central)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(status.map(|s| s.as_str()))
        .fetch_all(pool)
        .await?)
}

pub async fn show(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
) -> anyhow::Result<Option<(TenantRecord, Vec<TenantEvent>)>> {
    let sql = format!("{} WHERE t.tenant_id = $1", select_records(central));
    let Some(record) = sqlx::query_as::<_, TenantRecord>(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let events = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT event, actor, detail, at FROM {}.tenant_events WHERE tenant_id = $1 ORDER BY id",
        central.quoted()
    )))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    Ok(Some((record, events)))
}

/// A status change asked for by an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Suspend,
    Reinstate,
    Delete,
}

impl StatusChange {
    fn target(self) -> TenantStatus {
        match self {
            Self::Suspend => TenantStatus::Suspended,
            Self::Reinstate => TenantStatus::Active,
            Self::Delete => TenantStatus::Deleted,
        }
    }
}

/// What a status change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    Changed {
        from: TenantStatus,
        to: TenantStatus,
    },
    /// The tenant already had the status asked for: nothing was written.
    Unchanged(TenantStatus),
}

/// Changes a tenant's status through the same lifecycle rules as the superadmin API
/// (`tenancy::lifecycle`): the row, a history event and the `pg_notify` every
/// replica's status cache follows, in one transaction.
pub async fn change_status(
    pool: &PgPool,
    central: &TenantId,
    tenant: &TenantId,
    change: StatusChange,
    reason: Option<&str>,
    actor: &str,
) -> anyhow::Result<StatusOutcome> {
    if reason.is_some_and(|r| r.trim().chars().count() > lifecycle::MAX_REASON_CHARS) {
        anyhow::bail!("the reason is longer than 255 characters");
    }
    let mut conn = pool.acquire().await?;
    let mut tx = sqlx::Acquire::begin(&mut *conn).await?;
    let done = lifecycle::change_status(
        &mut tx,
        central,
        tenant,
        change.target(),
        lifecycle::Cause::new(actor, reason),
    )
    .await
    .map_err(|e| match e {
        crate::error::Error::Conflict { detail, .. } => anyhow::anyhow!(
            "{detail} (a purged tenant comes back with `mtpaas restore`; a deleted one \
                 must be reinstated before it can be suspended)"
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    tx.commit().await?;
    Ok(if done.changed() {
        StatusOutcome::Changed {
            from: done.previous,
            to: done.current,
        }
    } else {
        StatusOutcome::Unchanged(done.current)
    })
}

pub async fn run(config: &Config, cmd: TenantCommand) -> anyhow::Result<()> {
    let pool = super::connect(config, 2).await?;
    super::ensure_central(&pool, config).await?;
    let central = &config.central_schema;
    match cmd {
        TenantCommand::List { status, json } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(TenantStatus::parse(s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown status {s:?}: expected active, suspended, deleted or purged"
                    )
                })?),
            };
            let rows = list(&pool, central, status).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "tenants": rows, "total": rows.len() })
                    )?
                );
            } else {
                print!("{}", table(&rows));
            }
            Ok(())
        }
        TenantCommand::Show { tenant, json } => {
            let id = parse_id(&tenant)?;
            let Some((record, events)) = show(&pool, central, &id).await? else {
                anyhow::bail!("tenant {id} not found");
            };
            // On Citus, the node that holds the tenant's schema.
            let node = crate::cluster::node_of(&pool, &id).await?;
            if json {
                let mut v = serde_json::to_value(&record)?;
                if let Some(n) = &node {
                    v["node"] = serde_json::Value::from(n.as_str());
                }
                v["events"] = serde_json::to_value(&events)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let text = details(&record, &events);
                match &node {
                    // Right after the status, before the history.
                    Some(n) => {
                        let at = text.find("history:\n").unwrap_or(text.len());
                        print!("{}{:<17}{n}\n{}", &text[..at], "node", &text[at..]);
                    }
                    None => print!("{text}"),
                }
            }
            Ok(())
        }
        TenantCommand::Create(a) => {
            let req = CreateTenantRequest {
                tenant_id: a.tenant,
                tenant_name: a.name,
                admin_email: a.admin_email,
                admin_name: a.admin_name,
                university_name: a.university,
                contact: a.contact,
                description: a.description,
                application_id: a.application_id,
                application_kind: a.application_kind,
            }
            .validate(config)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            match create_tenant(&pool, central, &req, Actor::Cli)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Provisioned::Created {
                    admin_user_id,
                    setup_token,
                } => {
                    let base = &config.public_base_url;
                    println!(
                        "created tenant {} (admin user {admin_user_id}); access: {base}?tenant={}",
                        req.tenant_id, req.tenant_id
                    );
                    // For the operator to hand to the tenant's admin: it works once.
                    println!(
                        "admin password setup link (one use): {}",
                        setup::setup_url(base, &req.tenant_id, &setup_token)
                    );
                }
                Provisioned::AlreadyExists => {
                    println!("tenant {} already exists: nothing created", req.tenant_id);
                }
            }
            Ok(())
        }
        TenantCommand::Suspend(a) => status_command(&pool, config, a, StatusChange::Suspend).await,
        TenantCommand::Reinstate(a) => {
            status_command(&pool, config, a, StatusChange::Reinstate).await
        }
        TenantCommand::Delete(a) => status_command(&pool, config, a, StatusChange::Delete).await,
    }
}

fn parse_id(s: &str) -> anyhow::Result<TenantId> {
    TenantId::parse(s).map_err(|e| anyhow::anyhow!("invalid tenant id {s:?}: {e}"))
}

async fn status_command(
    pool: &PgPool,
    config: &Config,
    a: ChangeArgs,
    change: StatusChange,
) -> anyhow::Result<()> {
    let id = parse_id(&a.tenant)?;
    match change_status(
        pool,
        &config.central_schema,
        &id,
        change,
        a.reason.as_deref(),
        Actor::Cli.as_str(),
    )
    .await?
    {
        StatusOutcome::Changed { from, to } => {
            println!("tenant {id}: {} -> {}", from.as_str(), to.as_str());
        }
        StatusOutcome::Unchanged(s) => {
            println!("tenant {id} is already {}: nothing changed", s.as_str());
        }
    }
    Ok(())
}

fn fmt_time(t: Option<NaiveDateTime>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// The `tenant list` table.
pub fn table(rows: &[TenantRecord]) -> String {
    let header = [
        "TENANT", "STATUS", "VERSION", "APP", "KIND", "CREATED", "NAME",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let t = &r.tenant;
            [
                t.tenant_id.clone(),
                t.status.clone(),
                r.schema_version
                    .map_or_else(|| "-".into(), |v| v.to_string()),
                t.application_id
                    .map_or_else(|| "-".into(), |v| v.to_string()),
                t.application_kind.clone().unwrap_or_else(|| "-".into()),
                fmt_time(t.created_at),
                t.tenant_name.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&format!("{} tenant(s)\n", rows.len()));
    out
}

/// The `tenant show` text.
pub fn details(r: &TenantRecord, events: &[TenantEvent]) -> String {
    let t = &r.tenant;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let mut field = |k: &str, v: String| out.push_str(&format!("{k:<17}{v}\n"));
    field("tenant_id", t.tenant_id.clone());
    field("tenant_name", t.tenant_name.clone());
    field("status", t.status.clone());
    field(
        "schema_version",
        r.schema_version
            .map_or_else(|| "-".into(), |v| v.to_string()),
    );
    field("admin_email", opt(&t.admin_email));
    field("admin_name", opt(&t.admin_name));
    field("university_name", opt(&t.university_name));
    field("contact", opt(&t.contact));
    field(
        "application",
        format!(
            "{} ({})",
            t.application_id
                .map_or_else(|| "-".into(), |v| v.to_string()),
            opt(&t.application_kind)
        ),
    );
    field("created_at", fmt_time(t.created_at));
    field("updated_at", fmt_time(Some(t.updated_at)));
    if t.suspended_at.is_some() {
        field(
            "suspended",
            format!("{} {}", fmt_time(t.suspended_at), opt(&t.suspended_reason)),
        );
    }
    if t.deleted_at.is_some() {
        field(
            "deleted",
            format!("{} {}", fmt_time(t.deleted_at), opt(&t.deleted_reason)),
        );
    }
    if let Some(d) = &t.description {
        field("description", d.clone());
    }
    out.push_str("history:\n");
    for e in events {
        out.push_str(&format!(
            "  {}  {:<12} {:<11} {}\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            e.event,
            e.actor,
            e.detail
        ));
    }
    out
}
