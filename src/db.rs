//! The central Postgres pool (the registry, provisioning, usage, webhooks, operators)
//! and the connect options every connection mtpaas opens starts from.
//!
//! # `sslmode`, as libpq means it
//!
//! `DATABASE_URL`'s `sslmode` (or `PGSSLMODE`; default `prefer`) and `sslrootcert`
//! (or `PGSSLROOTCERT`, else `~/.postgresql/root.crt` when that file exists) mean
//! what they mean to libpq, so mtpaas connects wherever `psql` does and verifies
//! whatever `psql` verifies. TLS is OpenSSL's (sqlx's `tls-native-tls` here, and
//! `tokio-native-tls` in `tenant_db::wire`): like libpq it accepts any certificate
//! (self-signed, X.509 v1, expired: what Citus generates) when it is not asked to
//! verify one. [`TlsSettings::from_url`] applies libpq's rules that sqlx does not:
//!
//! - `require` with a root certificate present verifies the server's certificate
//!   against it, as `verify-ca` does (libpq keeps this for compatibility);
//! - `verify-ca`/`verify-full` without a root certificate is an error at once, naming
//!   the file libpq would have read (sqlx would trust the system's CAs instead);
//! - over a Unix socket TLS is never used, whatever `sslmode` says.
//!
//! Where sqlx still differs from libpq (the read connections, `tenant_db::wire`, do
//! not): `allow` does not retry with TLS when the server refuses an unencrypted
//! connection, `prefer` does not retry without TLS when the server refuses an
//! encrypted one (a `hostnossl`-only `pg_hba.conf`), and `verify-*` trust the system's
//! CAs besides `sslrootcert`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::config::Config;

/// How long start-up waits for Postgres to accept connections.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

pub fn pool_options(config: &Config) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .min_connections(0)
        .acquire_timeout(config.db_acquire_timeout)
        // Per-connection catalog caches grow with every schema a connection touches;
        // recycling connections bounds Postgres backend memory with many tenants.
        .max_lifetime(config.db_max_lifetime)
        .idle_timeout(Duration::from_secs(120))
        // No ping before each acquire: a dead connection fails its query and is dropped.
        .test_before_acquire(false)
}

/// The options of every sqlx connection: `DATABASE_URL` as sqlx reads it, with
/// libpq's TLS rules applied (module docs); an error when they make it unusable.
pub fn connect_options(config: &Config) -> anyhow::Result<PgConnectOptions> {
    let url = config.database_url.expose_secret();
    let opts: PgConnectOptions = url.parse()?;
    let tls = TlsSettings::from_url(&opts, url)?;
    Ok(tls.apply(opts).application_name("mtpaas"))
}

/// Connects, retrying while Postgres is not yet up (containers start in any order).
/// A TLS failure (a certificate that does not verify, a server without TLS under
/// `require`) is not something waiting mends: it fails at once.
pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    let opts = connect_options(config)?;
    let started = std::time::Instant::now();
    loop {
        match pool_options(config).connect_with(opts.clone()).await {
            Ok(pool) => return Ok(pool),
            Err(e @ sqlx::Error::Tls(_)) => {
                let mode = ssl_mode_name(opts.get_ssl_mode());
                return Err(anyhow::anyhow!(
                    "cannot connect to Postgres over TLS (sslmode={mode}): {e}"
                ));
            }
            Err(e) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(error = %e, "waiting for Postgres");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("cannot connect to Postgres: {e}")),
        }
    }
}

/// `sslmode`'s name as libpq spells it.
pub fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// A certificate or key: a file, or PEM given inline (as sqlx accepts in `PGSSL*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn from_setting(value: &str) -> Self {
        let t = value.trim();
        if t.starts_with("-----BEGIN") && t.ends_with("-----") {
            Pem::Inline(value.to_owned())
        } else {
            Pem::File(PathBuf::from(value))
        }
    }

    fn exists(&self) -> bool {
        match self {
            Pem::File(p) => p.is_file(),
            Pem::Inline(_) => true,
        }
    }

    /// Its bytes; the error names the file.
    pub fn read(&self, what: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("cannot read {what} file \"{}\": {e}", p.display())),
            Pem::Inline(s) => Ok(s.as_bytes().to_vec()),
        }
    }

    /// Where it comes from, for messages (never the inline text itself).
    pub fn describe(&self) -> String {
        match self {
            Pem::File(p) => format!("\"{}\"", p.display()),
            Pem::Inline(_) => "(inline PEM)".to_owned(),
        }
    }
}

/// How a connection to Postgres uses TLS: libpq's reading of the URL (module docs).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// What is done: `Disable` over a Unix socket, `VerifyCa` for `require` with a
    /// root certificate present.
    pub mode: PgSslMode,
    /// The root certificate(s) the server's certificate is verified against; set
    /// (and present) whenever `mode` verifies.
    pub root_cert: Option<Pem>,
    /// A client certificate and its key (`sslcert`/`sslkey`), sent when the server
    /// asks for one.
    pub client_cert: Option<(Pem, Pem)>,
}

impl TlsSettings {
    /// Reads `url`'s TLS parameters (sqlx's names and aliases), then the `PGSSL*`
    /// variables, then libpq's default root certificate file; `opts` is what sqlx
    /// parsed from the same `url` (it holds `sslmode`, also from `PGSSLMODE`).
    pub fn from_url(opts: &PgConnectOptions, url: &str) -> anyhow::Result<Self> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self::from_parts(opts, url, env, home_root_cert())
    }

    fn from_parts(
        opts: &PgConnectOptions,
        url: &str,
        env: impl Fn(&str) -> Option<String>,
        default_root: Option<PathBuf>,
    ) -> anyhow::Result<Self> {
        let mut root = None;
        let mut cert = None;
        let mut key = None;
        if let Ok(u) = url::Url::parse(url) {
            for (k, v) in u.query_pairs() {
                match &*k {
                    "sslrootcert" | "ssl-root-cert" | "ssl-ca" => root = Some(v.into_owned()),
                    "sslcert" | "ssl-cert" => cert = Some(v.into_owned()),
                    "sslkey" | "ssl-key" => key = Some(v.into_owned()),
                    _ => {}
                }
            }
        }
        let root = root.or_else(|| env("PGSSLROOTCERT"));
        let cert = cert.or_else(|| env("PGSSLCERT"));
        let key = key.or_else(|| env("PGSSLKEY"));
        let root_cert = match &root {
            Some(r) => Some(Pem::from_setting(r)).filter(Pem::exists),
            None => default_root.clone().filter(|p| p.is_file()).map(Pem::File),
        };
        let client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((Pem::from_setting(&c), Pem::from_setting(&k))),
            _ => None,
        };
        let requested = opts.get_ssl_mode();
        let mode = if opts.get_socket().is_some() {
            // libpq never requests TLS over a Unix socket, in any sslmode.
            PgSslMode::Disable
        } else {
            match requested {
                PgSslMode::Require if root_cert.is_some() => PgSslMode::VerifyCa,
                m => m,
            }
        };
        if matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull) && root_cert.is_none() {
            let missing = match (&root, &default_root) {
                (Some(r), _) => format!("\"{r}\" (sslrootcert)"),
                (None, Some(d)) => format!("\"{}\" (libpq's default)", d.display()),
                (None, None) => "(none given, and no home directory)".to_owned(),
            };
            anyhow::bail!(
                "sslmode={} needs the root certificate that signed the server's certificate: \
                 root certificate file {missing} does not exist; set sslrootcert=<file> in \
                 DATABASE_URL (or PGSSLROOTCERT), or use sslmode=require to encrypt without \
                 verifying",
                ssl_mode_name(requested)
            );
        }
        Ok(Self {
            mode,
            root_cert,
            client_cert,
        })
    }

    /// `opts` doing what these settings say.
    pub fn apply(&self, opts: PgConnectOptions) -> PgConnectOptions {
        let mut opts = opts.ssl_mode(self.mode);
        // sqlx already has the root certificate given in the URL or PGSSLROOTCERT;
        // setting it again covers libpq's default file.
        match &self.root_cert {
            Some(Pem::File(p)) => opts = opts.ssl_root_cert(p),
            Some(Pem::Inline(s)) => opts = opts.ssl_root_cert_from_pem(s.as_bytes().to_vec()),
            None => {}
        }
        opts
    }

    /// Whether the server's certificate is checked (against `root_cert`).
    pub fn verifies(&self) -> bool {
        matches!(self.mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
    }
}

/// libpq's default root certificate file, `~/.postgresql/root.crt`.
fn home_root_cert() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".postgresql").join("root.crt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(
        url: &str,
        env: &[(&str, &str)],
        home: Option<&str>,
    ) -> anyhow::Result<TlsSettings> {
        let opts: PgConnectOptions = url.parse().unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TlsSettings::from_parts(
            &opts,
            url,
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            home.map(PathBuf::from),
        )
    }

    /// A file that exists, for the root certificate rules (its content is not read).
    fn existing() -> String {
        env!("CARGO_MANIFEST_DIR").to_owned() + "/Cargo.toml"
    }

    #[test]
    fn modes_that_do_not_verify_keep_their_meaning() {
        for (mode, want) in [
            ("disable", PgSslMode::Disable),
            ("allow", PgSslMode::Allow),
            ("prefer", PgSslMode::Prefer),
            ("require", PgSslMode::Require),
        ] {
            let s = settings(
                &format!("postgres://a@db.example/d?sslmode={mode}"),
                &[],
                None,
            )
            .unwrap();
            assert_eq!(ssl_mode_name(s.mode), ssl_mode_name(want), "{mode}");
            assert!(!s.verifies());
        }
    }

    #[test]
    fn require_with_a_root_certificate_verifies_it_like_libpq() {
        let url = format!(
            "postgres://a@db.example/d?sslmode=require&sslrootcert={}",
            existing()
        );
        let s = settings(&url, &[], None).unwrap();
        assert_eq!(ssl_mode_name(s.mode), ssl_mode_name(PgSslMode::VerifyCa));
        assert_eq!(s.root_cert, Some(Pem::File(existing().into())));
        // From PGSSLROOTCERT, and from libpq's default file.
        let s = settings(
            "postgres://a@h/d?sslmode=require",
            &[("PGSSLROOTCERT", &existing())],
            None,
        );
        assert_eq!(
            ssl_mode_name(s.unwrap().mode),
            ssl_mode_name(PgSslMode::VerifyCa)
        );
        let s = settings("postgres://a@h/d?sslmode=require", &[], Some(&existing()));
        assert_eq!(
            ssl_mode_name(s.unwrap().mode),
            ssl_mode_name(PgSslMode::VerifyCa)
        );
        // A root certificate file that does not exist: require stays require.
        let s = settings(
            "postgres://a@h/d?sslmode=require&sslrootcert=/nonexistent/ca.crt",
            &[],
            None,
        );
        assert_eq!(
            ssl_mode_name(s.unwrap().mode),
            ssl_mode_name(PgSslMode::Require)
        );
        let s = settings(
            "postgres://a@h/d?sslmode=require",
            &[],
            Some("/nonexistent/root.crt"),
        );
        assert_eq!(
            ssl_mode_name(s.unwrap().mode),
            ssl_mode_name(PgSslMode::Require)
        );
    }

    #[test]
    fn verifying_without_a_root_certificate_fails_at_once_naming_the_file() {
        for mode in ["verify-ca", "verify-full"] {
            let e = settings(
                &format!("postgres://a@h/d?sslmode={mode}"),
                &[],
                Some("/nonexistent/.postgresql/root.crt"),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains(&format!("sslmode={mode}")), "{e}");
            assert!(e.contains("/nonexistent/.postgresql/root.crt"), "{e}");
            assert!(e.contains("sslrootcert"), "{e}");
            let e = settings(
                &format!("postgres://a@h/d?sslmode={mode}&sslrootcert=/nope/ca.crt"),
                &[],
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("\"/nope/ca.crt\""), "{e}");
            let url = format!("postgres://a@h/d?sslmode={mode}&sslrootcert={}", existing());
            let s = settings(&url, &[], None).unwrap();
            assert!(s.verifies());
        }
    }

    #[test]
    fn a_unix_socket_never_uses_tls() {
        for mode in ["prefer", "require", "verify-full"] {
            let url = format!("postgres://a@localhost/d?host=/run/postgresql&sslmode={mode}");
            let s = settings(&url, &[], None).unwrap();
            assert_eq!(ssl_mode_name(s.mode), "disable", "{mode}");
        }
    }

    #[test]
    fn client_certificates_and_inline_pem_are_read() {
        let url = "postgres://a@h/d?sslcert=/c/client.crt&sslkey=/c/client.key";
        let s = settings(url, &[], None).unwrap();
        assert_eq!(
            s.client_cert,
            Some((
                Pem::File("/c/client.crt".into()),
                Pem::File("/c/client.key".into())
            ))
        );
        let pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----";
        let s = settings(
            "postgres://a@h/d?sslmode=verify-ca",
            &[("PGSSLROOTCERT", pem)],
            None,
        )
        .unwrap();
        assert!(matches!(&s.root_cert, Some(Pem::Inline(p)) if p == pem));
        assert_eq!(s.root_cert.unwrap().describe(), "(inline PEM)");
    }
}
