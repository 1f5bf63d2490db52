//! `POST /api/tenant/create`: the market's automatic onboarding (seed 5.3, 7.1.2).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::api_key::MarketApiKey;
use crate::auth::setup;
use crate::config::Config;
use crate::error::{ApiJson, Error, Result};
use crate::schema::provision::{Actor, NewTenant, Provisioned, create_tenant};
use crate::state::AppState;
use crate::tenancy::TenantStatus;

pub fn router() -> Router<AppState> {
    Router::new().route("/tenant/create", post(create))
}

/// The seed's payload. Unknown fields are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateTenantRequest {
    /// The tenant's schema name; not `public`, `information_schema`, `pg_*`, the
    /// central or the template schema.
    #[schema(pattern = "^[a-z][a-z0-9_]{0,49}$", example = "test_univ")]
    pub tenant_id: String,
    #[schema(pattern = "\\S", max_length = 200, example = "테스트대학교")]
    pub tenant_name: String,
    #[schema(format = Email, max_length = 200, example = "admin@test.ac.kr")]
    pub admin_email: String,
    #[schema(max_length = 100, example = "관리자")]
    pub admin_name: Option<String>,
    #[schema(max_length = 200)]
    pub university_name: Option<String>,
    #[schema(max_length = 100)]
    pub contact: Option<String>,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    /// The market's application id.
    #[schema(minimum = 1, example = 1)]
    pub application_id: Option<i32>,
    #[schema(pattern = "^(demo|service)$", example = "service")]
    pub application_kind: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateTenantResponse {
    pub success: bool,
    pub tenant_id: String,
    pub access_url: String,
    /// False when the same request had already been carried out.
    pub created: bool,
    /// One-time token (72 h) with which the admin sets a password; on a repeated
    /// request, a fresh one while the admin has not set a password yet.
    pub setup_token: Option<String>,
    /// The frontend link carrying the setup token.
    pub setup_url: Option<String>,
}

fn limited(field: &'static str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        return Err(Error::unprocessable(
            "invalid_field",
            format!("{field} is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn optional(field: &'static str, v: Option<String>, max: usize) -> Result<Option<String>> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) => limited(field, &s, max).map(|_| Some(s)),
        None => Ok(None),
    }
}

/// Checks an email's shape: one `@`, something on both sides, no spaces.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl CreateTenantRequest {
    /// Checks every field and parses the tenant id (the API and `mtpaas tenant create`).
    pub fn validate(self, config: &Config) -> Result<NewTenant> {
        let tenant_id = config.parse_tenant(&self.tenant_id).map_err(|e| {
            Error::bad_request("invalid_tenant_id", format!("Invalid tenant id: {e}"))
        })?;
        let tenant_name = self.tenant_name.trim().to_owned();
        if tenant_name.is_empty() {
            return Err(Error::unprocessable(
                "invalid_field",
                "tenant_name must not be empty",
            ));
        }
        limited("tenant_name", &tenant_name, 200)?;
        let admin_email = self.admin_email.trim().to_owned();
        limited("admin_email", &admin_email, 200)?;
        if !valid_email(&admin_email) {
            return Err(Error::unprocessable(
                "invalid_field",
                "admin_email is not an email address",
            ));
        }
        if let Some(kind) = &self.application_kind
            && kind != "demo"
            && kind != "service"
        {
            return Err(Error::unprocessable(
                "invalid_field",
                "application_kind must be 'demo' or 'service'",
            ));
        }
        if self.application_id.is_some_and(|a| a <= 0) {
            return Err(Error::unprocessable(
                "invalid_field",
                "application_id must be positive",
            ));
        }
        Ok(NewTenant {
            tenant_id,
            tenant_name,
            admin_email,
            admin_name: optional("admin_name", self.admin_name, 100)?,
            university_name: optional("university_name", self.university_name, 200)?,
            contact: optional("contact", self.contact, 100)?,
            description: optional("description", self.description, 10_000)?,
            application_id: self.application_id,
            application_kind: self.application_kind,
        })
    }
}

#[utoipa::path(post, path = "/api/tenant/create", tag = "tenants",
    request_body = CreateTenantRequest,
    responses((status = 200, body = CreateTenantResponse), (status = 401), (status = 409), (status = 422)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _key: MarketApiKey,
    ApiJson(body): ApiJson<CreateTenantRequest>,
) -> Result<Json<CreateTenantResponse>> {
    let req = body.validate(&state.config)?;
    // Provision in a task of its own: a client that hangs up mid-way must not cut the
    // transaction short (it would roll back anyway; this just finishes the work).
    let task_state = state.clone();
    let task_req = req.clone();
    let outcome = tokio::spawn(async move {
        create_tenant(
            &task_state.db,
            &task_state.config.central_schema,
            &task_req,
            Actor::Market,
        )
        .await
    })
    .await
    .map_err(|e| Error::Internal(anyhow::anyhow!("provisioning task failed: {e}")))??;
    let (created, setup_token) = match outcome {
        Provisioned::Created { setup_token, .. } => {
            state.directory.set(&req.tenant_id, TenantStatus::Active);
            tracing::info!(tenant_id = %req.tenant_id, "tenant created");
            (true, Some(setup_token))
        }
        Provisioned::AlreadyExists => {
            let token = setup::reissue_for_admin(
                &state.db,
                &state.config.central_schema,
                &req.tenant_id,
                &req.admin_email,
            )
            .await?;
            (false, token)
        }
    };
    let base = &state.config.public_base_url;
    Ok(Json(CreateTenantResponse {
        success: true,
        access_url: format!("{base}?tenant={}", req.tenant_id),
        setup_url: setup_token
            .as_deref()
            .map(|t| setup::setup_url(base, &req.tenant_id, t)),
        tenant_id: req.tenant_id.to_string(),
        created,
        setup_token,
    }))
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn email_shapes() {
        assert!(valid_email("admin@test.ac.kr"));
        assert!(valid_email("e2e@test.com"));
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a b@c.d", "a@b@c.d", "a@.b", "a@b.",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
