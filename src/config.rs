//! Configuration: one struct read from the environment (and `.env`, loaded first).
//!
//! In production (`MTPAAS_ENV=production`) every required setting must be present, and a
//! missing one stops start-up with one line naming it. In development, missing secrets
//! are generated and shown once on the terminal. There is never a built-in secret.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::tenant_id::{TenantId, parse_schema_name};

/// Largest request body accepted anywhere (webhooks and every JSON API).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting of the service. `Debug` never shows a secret (`SecretString`).
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database_url: SecretString,
    pub central_schema: TenantId,
    pub template_schema: TenantId,
    /// `None` when `DEFAULT_TENANT` is the central schema: "no tenant".
    pub default_tenant: Option<TenantId>,
    pub base_domain: Option<String>,
    pub public_base_url: String,
    pub host: IpAddr,
    pub port: u16,
    pub tenant_api_key: SecretString,
    pub webhook_secret: Option<SecretString>,
    pub webhook_signing_secret: Option<SecretString>,
    pub webhook_require_signature: bool,
    pub superadmin_token: SecretString,
    pub jwt_secret: SecretString,
    pub market_database_url: Option<SecretString>,
    pub market_service_title: String,
    pub market_timeout: Duration,
    pub ai_backend_url: Option<String>,
    pub ai_backend_api_key: Option<SecretString>,
    pub ai_backend_model: String,
    pub ai_timeout: Duration,
    pub db_max_connections: u32,
    /// Tenant-scoped connections, besides the central pool (see `tenant_db::pools`).
    pub db_tenant_connections: u32,
    /// A tenant connection takes other tenants' requests only while it has served
    /// fewer tenants than this (see `tenant_db::pools`).
    pub db_conn_tenants: u32,
    /// Tenant reads over their own extended-protocol connections (`tenant_db::wire`);
    /// false: through sqlx on the tenant connections, like writes.
    pub db_wire_reads: bool,
    pub db_acquire_timeout: Duration,
    /// Bounds the per-connection catalog caches that grow with the schemas a
    /// connection has touched.
    pub db_max_lifetime: Duration,
    pub request_timeout: Duration,
    pub usage_flush_interval: Duration,
    pub demo_expiry_interval: Option<Duration>,
    pub retention_days: u32,
    pub purge_in_server: bool,
    pub backup_dir: String,
    /// Where pg_dump, pg_restore and psql are (default: PATH). They must be of the
    /// server's major version or newer.
    pub pg_bin_dir: Option<String>,
    pub log_format: LogFormat,
    /// How long an operator console sign-in lasts (`CONSOLE_SESSION_TTL_SECS`).
    pub console_session_ttl: Duration,
    /// Secrets generated at start-up in development, to show once.
    pub generated_secrets: Vec<(&'static str, String)>,
}

/// Why the configuration could not be built: one line, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required setting {0} (MTPAAS_ENV=production)")]
    Missing(&'static str),
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where settings come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<String> {
        self.get(key).cloned().filter(|v| !v.trim().is_empty())
    }
}

impl Config {
    /// Reads `.env` (if present) and then the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_source(&ProcessEnv)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let environment = match src.get("MTPAAS_ENV").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "MTPAAS_ENV",
                    reason: format!("expected production or development, got {other:?}"),
                });
            }
        };
        let prod = environment == Environment::Production;
        let mut generated = Vec::new();

        let mut secret = |name: &'static str| -> Result<SecretString, ConfigError> {
            match src.get(name) {
                Some(v) => Ok(SecretString::from(v)),
                None if prod => Err(ConfigError::Missing(name)),
                None => {
                    let v = random_secret();
                    generated.push((name, v.clone()));
                    Ok(SecretString::from(v))
                }
            }
        };
        let tenant_api_key = secret("TENANT_API_KEY")?;
        let superadmin_token = secret("SUPERADMIN_TOKEN")?;
        let jwt_secret = secret("JWT_SECRET")?;
        if jwt_secret.expose_secret().len() < 32 {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: "must be at least 32 characters".into(),
            });
        }

        let webhook_signing_secret = src.get("WEBHOOK_SIGNING_SECRET").map(SecretString::from);
        if let Some(s) = &webhook_signing_secret {
            crate::signature::Verifier::from_secrets(s.expose_secret()).map_err(|e| {
                ConfigError::Invalid {
                    name: "WEBHOOK_SIGNING_SECRET",
                    reason: e.to_string(),
                }
            })?;
        }
        let webhook_require_signature = parse_bool(src, "WEBHOOK_REQUIRE_SIGNATURE", false)?;
        let webhook_secret = match src.get("SERVICE_MARKET_WEBHOOK_SECRET") {
            Some(v) => Some(SecretString::from(v)),
            // In production the market must be able to reach the webhooks: one of the
            // two secrets is required (the static one unless signatures are required).
            None if prod && webhook_signing_secret.is_none() => {
                return Err(ConfigError::Missing("SERVICE_MARKET_WEBHOOK_SECRET"));
            }
            None if prod || webhook_signing_secret.is_some() => None,
            None => {
                let v = random_secret();
                generated.push(("SERVICE_MARKET_WEBHOOK_SECRET", v.clone()));
                Some(SecretString::from(v))
            }
        };
        if webhook_require_signature && webhook_signing_secret.is_none() {
            return Err(ConfigError::Missing("WEBHOOK_SIGNING_SECRET"));
        }

        let database_url = match src.get("DATABASE_URL") {
            Some(v) => v,
            None if prod => return Err(ConfigError::Missing("DATABASE_URL")),
            None => "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        };

        let schema = |name: &'static str, default: &str| -> Result<TenantId, ConfigError> {
            let v = src.get(name).unwrap_or_else(|| default.to_owned());
            parse_schema_name(&v).map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })
        };
        let central_schema = schema("CENTRAL_SCHEMA", "hltutor")?;
        let template_schema = schema("TEMPLATE_SCHEMA", "template_schema")?;
        if central_schema == template_schema {
            return Err(ConfigError::Invalid {
                name: "TEMPLATE_SCHEMA",
                reason: "must differ from CENTRAL_SCHEMA".into(),
            });
        }
        let default_tenant = match src.get("DEFAULT_TENANT") {
            None => None,
            Some(v) if v == central_schema.as_str() => None,
            Some(v) => Some(
                TenantId::parse_for(&v, &[template_schema.as_str()]).map_err(|e| {
                    ConfigError::Invalid {
                        name: "DEFAULT_TENANT",
                        reason: e.to_string(),
                    }
                })?,
            ),
        };

        let port = parse_num(src, "PORT", 8085u16)?;
        let host = match src.get("HOST") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: "HOST",
                reason: format!("not an IP address: {v:?}"),
            })?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let public_base_url = match src.get("PUBLIC_BASE_URL") {
            Some(v) => v.trim_end_matches('/').to_owned(),
            None if prod => return Err(ConfigError::Missing("PUBLIC_BASE_URL")),
            None => format!("http://localhost:{port}"),
        };

        let market_database_url = match src.get("SERVICE_MARKET_DATABASE_URL") {
            Some(v) => Some(SecretString::from(v)),
            None => src.get("SERVICE_MARKET_DB_HOST").map(|host| {
                let port = src
                    .get("SERVICE_MARKET_DB_PORT")
                    .unwrap_or_else(|| "3306".into());
                let user = src
                    .get("SERVICE_MARKET_DB_USER")
                    .unwrap_or_else(|| "root".into());
                let name = src
                    .get("SERVICE_MARKET_DB_NAME")
                    .unwrap_or_else(|| "market_place_db".into());
                let auth = match src.get("SERVICE_MARKET_DB_PASSWORD") {
                    Some(p) => format!("{}:{}", url_escape(&user), url_escape(&p)),
                    None => url_escape(&user),
                };
                SecretString::from(format!("mysql://{auth}@{host}:{port}/{name}"))
            }),
        };

        let log_format = match src.get("LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            None | Some("text") | Some("pretty") => LogFormat::Text,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "LOG_FORMAT",
                    reason: format!("expected json or text, got {other:?}"),
                });
            }
        };

        let demo_expiry_secs: u64 = parse_num(src, "DEMO_EXPIRY_INTERVAL_SECS", 300)?;
        let db_max_connections = parse_num(src, "DB_MAX_CONNECTIONS", 20)?;
        let console_session_secs: u64 = parse_num(src, "CONSOLE_SESSION_TTL_SECS", 8 * 3600)?;
        if !(1..=30 * 86_400).contains(&console_session_secs) {
            return Err(ConfigError::Invalid {
                name: "CONSOLE_SESSION_TTL_SECS",
                reason: "must be between 1 and 2592000 (30 days)".into(),
            });
        }
        Ok(Config {
            environment,
            database_url: SecretString::from(database_url),
            central_schema,
            template_schema,
            default_tenant,
            base_domain: src
                .get("BASE_DOMAIN")
                .map(|d| d.trim_matches('.').to_ascii_lowercase()),
            public_base_url,
            host,
            port,
            tenant_api_key,
            webhook_secret,
            webhook_signing_secret,
            webhook_require_signature,
            superadmin_token,
            jwt_secret,
            market_database_url,
            market_service_title: src
                .get("SERVICE_MARKET_SERVICE_TITLE")
                .unwrap_or_else(|| "KELI Tutor".into()),
            market_timeout: Duration::from_millis(parse_num(
                src,
                "SERVICE_MARKET_DB_TIMEOUT_MS",
                3000,
            )?),
            ai_backend_url: src.get("AI_BACKEND_URL"),
            ai_backend_api_key: src.get("AI_BACKEND_API_KEY").map(SecretString::from),
            ai_backend_model: src
                .get("AI_BACKEND_MODEL")
                .unwrap_or_else(|| "gpt-4o-mini".into()),
            ai_timeout: Duration::from_millis(parse_num(src, "AI_BACKEND_TIMEOUT_MS", 30_000)?),
            db_max_connections,
            db_tenant_connections: parse_num(src, "DB_TENANT_CONNECTIONS", db_max_connections)?,
            db_conn_tenants: parse_num(src, "DB_CONN_TENANTS", 200)?,
            db_wire_reads: parse_bool(src, "DB_WIRE_READS", true)?,
            db_acquire_timeout: Duration::from_millis(parse_num(
                src,
                "DB_ACQUIRE_TIMEOUT_MS",
                5000,
            )?),
            db_max_lifetime: Duration::from_secs(parse_num(src, "DB_MAX_LIFETIME_SECS", 600)?),
            request_timeout: Duration::from_millis(parse_num(src, "REQUEST_TIMEOUT_MS", 30_000)?),
            usage_flush_interval: Duration::from_millis(parse_num(
                src,
                "USAGE_FLUSH_INTERVAL_MS",
                5000,
            )?),
            demo_expiry_interval: (demo_expiry_secs > 0)
                .then(|| Duration::from_secs(demo_expiry_secs)),
            retention_days: parse_num(src, "RETENTION_DAYS", 30)?,
            purge_in_server: parse_bool(src, "PURGE_IN_SERVER", false)?,
            backup_dir: src.get("BACKUP_DIR").unwrap_or_else(|| "backups".into()),
            pg_bin_dir: src.get("PG_BIN_DIR"),
            log_format,
            console_session_ttl: Duration::from_secs(console_session_secs),
            generated_secrets: generated,
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Schemas a tenant may never be named after.
    pub fn reserved_schemas(&self) -> [&str; 2] {
        [self.central_schema.as_str(), self.template_schema.as_str()]
    }

    /// Parses a tenant id against this deployment's reserved schemas.
    pub fn parse_tenant(&self, s: &str) -> Result<TenantId, crate::tenant_id::InvalidTenantId> {
        TenantId::parse_for(s, &self.reserved_schemas())
    }

    /// Shows the secrets generated for this development run, once, on the terminal.
    pub fn announce_generated_secrets(&self) {
        if self.generated_secrets.is_empty() {
            return;
        }
        eprintln!("mtpaas: development mode; generated secrets for this run:");
        for (name, value) in &self.generated_secrets {
            eprintln!("  {name}={value}");
        }
        eprintln!("  (set them in .env to keep them; MTPAAS_ENV=production requires them)");
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn parse_bool(src: &dyn Source, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match src.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::Invalid {
            name,
            reason: format!("expected true or false, got {other:?}"),
        }),
    }
}

fn parse_num<T: std::str::FromStr>(
    src: &dyn Source,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match src.get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("not a number: {v:?}"),
        }),
    }
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn development_generates_missing_secrets() {
        let c = Config::from_source(&env(&[])).unwrap();
        assert_eq!(c.environment, Environment::Development);
        let names: Vec<_> = c.generated_secrets.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"TENANT_API_KEY"));
        assert!(names.contains(&"JWT_SECRET"));
        assert!(names.contains(&"SUPERADMIN_TOKEN"));
        assert_eq!(c.central_schema.as_str(), "hltutor");
        assert_eq!(c.port, 8085);
        assert!(c.default_tenant.is_none());
        // Two runs never share a generated secret.
        let d = Config::from_source(&env(&[])).unwrap();
        assert_ne!(
            c.tenant_api_key.expose_secret(),
            d.tenant_api_key.expose_secret()
        );
    }

    #[test]
    fn production_names_the_missing_setting() {
        let err = Config::from_source(&env(&[("MTPAAS_ENV", "production")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required setting TENANT_API_KEY (MTPAAS_ENV=production)"
        );
        let err = Config::from_source(&env(&[
            ("MTPAAS_ENV", "production"),
            ("TENANT_API_KEY", "k"),
            ("SUPERADMIN_TOKEN", "s"),
            ("JWT_SECRET", &"j".repeat(32)),
            ("SERVICE_MARKET_WEBHOOK_SECRET", "w"),
            ("PUBLIC_BASE_URL", "https://x"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Config::from_source(&env(&[("TENANT_API_KEY", "very-secret-key-1")])).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("very-secret-key-1"));
    }

    #[test]
    fn seed_market_db_variables_build_a_url() {
        let c = Config::from_source(&env(&[
            ("SERVICE_MARKET_DB_HOST", "service-market-db"),
            ("SERVICE_MARKET_DB_USER", "market_user"),
            ("SERVICE_MARKET_DB_PASSWORD", "p@ss"),
        ]))
        .unwrap();
        assert_eq!(
            c.market_database_url.unwrap().expose_secret(),
            "mysql://market_user:p%40ss@service-market-db:3306/market_place_db"
        );
    }

    #[test]
    fn invalid_schema_names_are_refused() {
        let err = Config::from_source(&env(&[("CENTRAL_SCHEMA", "x; drop")])).unwrap_err();
        assert!(err.to_string().contains("CENTRAL_SCHEMA"));
    }
}
