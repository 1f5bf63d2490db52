//! Tenant reads over Postgres's extended protocol: the tenant's `search_path` and the
//! prepared read pipelined in one message under a single `Sync`.
//!
//! # Why its own connection
//!
//! A read must set the tenant's path and run under it with nothing left on the
//! connection afterwards (`tenant_db::conn`). With sqlx that takes one simple-protocol
//! message, `SET LOCAL search_path …; EXECUTE …`, which Postgres parses twice, runs
//! through an extra portal and answers in text. The extended protocol does the same in
//! one round trip with less work: `Bind`/`Execute` of a prepared
//! `set_config('search_path', $1, true)`, then `Bind`/`Execute` of the read prepared for
//! this tenant, then one `Sync`. Postgres runs everything before a `Sync` as one implicit
//! transaction (it commits at the `Sync`), so the path is local to that transaction and
//! gone when the answer's `ReadyForQuery` arrives; if any step fails, Postgres skips the
//! rest up to the `Sync`, so the read never runs under another path. Rows come in the
//! binary format. sqlx sends a `Sync` after each statement, so it cannot send this;
//! messages are encoded and decoded by `postgres-protocol` (the rust-postgres project's
//! codec, also used for SCRAM and MD5 authentication) and values by `postgres-types`.
//!
//! # What is held per connection
//!
//! The statements prepared on it (`"<read>:<tenant>"`, each prepared under its tenant's
//! path in the same message as its first use, with its result columns' types), and
//! whether a message is in flight: a read whose future was dropped before its
//! `ReadyForQuery` leaves the connection unusable ([`WireConn::is_usable`]) until the
//! rest of the reply is read ([`WireConn::finish`], which `tenant_db::conn::read_tenant`
//! runs on a task when a request is dropped mid-read); one that cannot be finished is
//! closed by its holder (`tenant_db::pools::TenantConns`).
//!
//! # Scope
//!
//! TCP or a Unix socket, authentication by trust, password, MD5 or SCRAM-SHA-256
//! (with `tls-server-end-point` channel binding over TLS when Postgres offers it;
//! `DATABASE_URL`'s password, else `PGPASSWORD`), TLS in every `sslmode` as libpq
//! does it (`crate::db`'s [`TlsSettings`] say what is asked; OpenSSL does it, through
//! `tokio-native-tls`):
//!
//! - `disable`: plain, and nothing else is done (the fast path keeps its speed);
//! - `allow`: plain; if Postgres refuses the connection, again over TLS;
//! - `prefer`: `SSLRequest`; TLS if Postgres answers `S`, plain on the same socket if
//!   it answers `N`, and plain on a new one if the handshake fails or Postgres refuses
//!   the encrypted connection;
//! - `require`: TLS or nothing, any certificate accepted (self-signed, X.509 v1);
//! - `verify-ca`: the certificate must chain to `sslrootcert` (only to it: the
//!   system's CAs are not trusted, as with libpq); `verify-full`: and name the host.
//!
//! Over a Unix socket TLS is never used (libpq's rule).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{
    ChannelBinding, SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramSha256,
};
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use postgres_types::{FromSql, Type};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::db::{Pem, TlsSettings};
use crate::error::PgErrorResponse;
use crate::tenant_db::prepared::PreparedRead;
use crate::tenant_id::TenantId;

/// The statement every read binds first (fully qualified: found whatever the path).
const SET_PATH: &str = "set_path";
const SET_PATH_SQL: &str = "SELECT pg_catalog.set_config('search_path', $1, true)";

/// Where and as whom the read connections connect.
#[derive(Clone)]
pub struct WireOptions {
    target: Target,
    /// `hostaddr` (libpq's and sqlx's): the address a TCP connection is made to, the
    /// target's host still naming the server for TLS.
    hostaddr: Option<IpAddr>,
    user: String,
    password: Option<String>,
    database: String,
    application_name: String,
    /// `None`: plain only (`sslmode=disable`, or a Unix socket).
    tls: Option<Tls>,
}

/// How a TCP connection uses TLS: `mode` (never `Disable`) and the connector built
/// once from the certificates.
#[derive(Clone)]
struct Tls {
    mode: PgSslMode,
    connector: tokio_native_tls::TlsConnector,
}

#[derive(Clone, Debug)]
enum Target {
    Tcp(String, u16),
    Unix(std::path::PathBuf),
}

impl fmt::Debug for WireOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireOptions")
            .field("target", &self.target)
            .field("hostaddr", &self.hostaddr)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .field("sslmode", &self.tls.as_ref().map(|t| t.mode))
            .finish()
    }
}

impl WireOptions {
    /// The options sqlx parsed from `url` (with `crate::db`'s TLS rules applied), with
    /// the password from `url` (or `PGPASSWORD`); an error when a certificate or key
    /// named there cannot be read.
    pub fn from_config(opts: &PgConnectOptions, url: &str) -> anyhow::Result<Self> {
        let target = match opts.get_socket() {
            Some(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{}", opts.get_port()))),
            None => Target::Tcp(opts.get_host().to_owned(), opts.get_port()),
        };
        let settings = TlsSettings::from_url(opts, url)?;
        let tls = match (&target, settings.mode) {
            (Target::Unix(_), _) | (_, PgSslMode::Disable) => None,
            (Target::Tcp(..), mode) => Some(Tls {
                mode,
                connector: connector(&settings)?,
            }),
        };
        let password = url::Url::parse(url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
            .map(|p| {
                percent_encoding::percent_decode_str(&p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .or_else(|| std::env::var("PGPASSWORD").ok());
        let user = opts.get_username().to_owned();
        Ok(Self {
            target,
            hostaddr: hostaddr(url),
            database: opts.get_database().unwrap_or(&user).to_owned(),
            user,
            password,
            application_name: opts.get_application_name().unwrap_or("mtpaas").to_owned(),
            tls,
        })
    }

    /// What is done about TLS (`Disable` when it is never tried).
    pub fn ssl_mode(&self) -> PgSslMode {
        self.tls.as_ref().map_or(PgSslMode::Disable, |t| t.mode)
    }
}

/// The OpenSSL connector for `settings`: accepting any certificate unless the mode
/// verifies, and then trusting only the root certificate given (libpq does not use
/// the system's CAs either).
fn connector(settings: &TlsSettings) -> anyhow::Result<tokio_native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    // libpq's default ssl_min_protocol_version.
    b.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    match settings.mode {
        PgSslMode::VerifyFull => {}
        PgSslMode::VerifyCa => {
            b.danger_accept_invalid_hostnames(true);
        }
        _ => {
            b.danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
    }
    if settings.verifies() {
        b.disable_built_in_roots(true);
        if let Some(root) = &settings.root_cert {
            let pem = root.read("root certificate")?;
            let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("root certificate {} is not PEM: {e}", root.describe())
            })?;
            if certs.is_empty() {
                anyhow::bail!("root certificate {} holds no certificate", root.describe());
            }
            for c in certs {
                b.add_root_certificate(c);
            }
        }
    }
    if let Some((cert, key)) = &settings.client_cert {
        let identity = identity(cert, key)?;
        b.identity(identity);
    }
    let c = b
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up TLS for Postgres: {e}"))?;
    Ok(c.into())
}

fn identity(cert: &Pem, key: &Pem) -> anyhow::Result<native_tls::Identity> {
    let c = cert.read("client certificate")?;
    let k = key.read("client key")?;
    native_tls::Identity::from_pkcs8(&c, &k).map_err(|e| {
        anyhow::anyhow!(
            "client certificate {} with key {} cannot be used (the key must be PKCS#8 PEM): {e}",
            cert.describe(),
            key.describe()
        )
    })
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One read connection (module docs).
pub struct WireConn {
    io: Box<dyn Io>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Statements prepared here, by name, with their result columns' types.
    prepared: HashMap<String, Arc<[Type]>>,
    /// A message is being sent or its `ReadyForQuery` has not been read.
    in_flight: bool,
    /// The read in flight, for [`WireConn::finish`].
    pending: Option<Pending>,
    /// Over TLS.
    encrypted: bool,
}

/// A read whose reply has not been read (yet).
struct Pending {
    name: String,
    /// Its result columns when the statement was already prepared here.
    known: Option<Arc<[Type]>>,
    /// The whole message was written.
    sent: bool,
}

fn db_error(body: &ErrorResponseBody) -> sqlx::Error {
    let mut code = String::new();
    let mut message = String::new();
    let mut context = None;
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let text = || String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'C' => code = text(),
            b'M' => message = text(),
            b'W' => context = Some(text()),
            _ => {}
        }
    }
    sqlx::Error::Database(Box::new(PgErrorResponse::new(code, message, context)))
}

fn protocol(what: impl fmt::Display) -> sqlx::Error {
    sqlx::Error::Protocol(format!("tenant read connection: {what}"))
}

fn encode(r: std::io::Result<()>) -> Result<(), sqlx::Error> {
    r.map_err(|e| protocol(format!("cannot encode a message: {e}")))
}

fn no_tls() -> sqlx::Error {
    sqlx::Error::Tls("server does not support TLS".into())
}

/// `hostaddr` as sqlx reads it (as libpq does): the URL's, else `PGHOSTADDR`'s. sqlx
/// keeps it to itself, so it is read here from the same places.
fn hostaddr(url: &str) -> Option<IpAddr> {
    let from_url = url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "hostaddr")
            .map(|(_, v)| v.into_owned())
    });
    match from_url {
        Some(v) => v.parse().ok(),
        None => std::env::var("PGHOSTADDR").ok()?.parse().ok(),
    }
}

/// A TCP connection to `hostaddr` when there is one, else to `host`.
async fn tcp(hostaddr: Option<IpAddr>, host: &str, port: u16) -> Result<TcpStream, sqlx::Error> {
    let s = match hostaddr {
        Some(ip) => TcpStream::connect((ip, port)).await?,
        None => TcpStream::connect((host, port)).await?,
    };
    s.set_nodelay(true)?;
    Ok(s)
}

/// What authentication knows of the connection (for SCRAM's channel binding).
enum Channel {
    Plain,
    /// Over TLS; `end_point`: the hash of the server's certificate
    /// (`tls-server-end-point`), when OpenSSL could compute it.
    Tls {
        end_point: Option<Vec<u8>>,
    },
}

/// What Postgres made of an `SSLRequest`.
enum Upgrade {
    /// Encrypted.
    Tls(Box<dyn Io>, Channel),
    /// `N`: the same socket, to go on without TLS.
    Refused(TcpStream),
}

/// `SSLRequest`, then the TLS handshake if Postgres agrees. Only its one-byte answer
/// is read before the handshake: nothing sent unencrypted after it is taken.
async fn upgrade(mut s: TcpStream, host: &str, tls: &Tls) -> Result<Upgrade, sqlx::Error> {
    let mut w = BytesMut::with_capacity(8);
    frontend::ssl_request(&mut w);
    s.write_all(&w).await?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {}
        b'N' => return Ok(Upgrade::Refused(s)),
        other => {
            return Err(protocol(format!(
                "unexpected answer to SSLRequest: 0x{other:02x}"
            )));
        }
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let stream = tls
        .connector
        .connect(host, s)
        .await
        .map_err(|e| sqlx::Error::Tls(Box::new(e)))?;
    let end_point = stream.get_ref().tls_server_end_point().ok().flatten();
    Ok(Upgrade::Tls(Box::new(stream), Channel::Tls { end_point }))
}

impl WireConn {
    /// Connects as libpq would in the options' `sslmode` (module docs),
    /// authenticates and prepares the statement that sets the path.
    pub async fn connect(opts: &WireOptions) -> Result<Self, sqlx::Error> {
        let (host, port, tls) = match (&opts.target, &opts.tls) {
            (Target::Tcp(host, port), Some(tls)) => (host.as_str(), *port, tls),
            (Target::Tcp(host, port), None) => {
                let io = Box::new(tcp(opts.hostaddr, host, *port).await?);
                return Self::start(io, Channel::Plain, opts).await;
            }
            (Target::Unix(path), _) => {
                let io = Box::new(tokio::net::UnixStream::connect(path).await?);
                return Self::start(io, Channel::Plain, opts).await;
            }
        };
        let connect = || tcp(opts.hostaddr, host, port);
        // A new TCP connection and a session over it without TLS.
        let plain =
            || async move { Self::start(Box::new(connect().await?), Channel::Plain, opts).await };
        match tls.mode {
            PgSslMode::Disable => plain().await,
            PgSslMode::Allow => {
                match plain().await {
                    // Refused (pg_hba.conf may allow only TLS): again over TLS.
                    Err(sqlx::Error::Database(_)) => {
                        let s = connect().await?;
                        match upgrade(s, host, tls).await? {
                            Upgrade::Tls(io, cb) => Self::start(io, cb, opts).await,
                            Upgrade::Refused(_) => Err(no_tls()),
                        }
                    }
                    other => other,
                }
            }
            PgSslMode::Prefer => {
                let s = connect().await?;
                match upgrade(s, host, tls).await {
                    Ok(Upgrade::Tls(io, cb)) => match Self::start(io, cb, opts).await {
                        // Refused over TLS (pg_hba.conf may allow only plain): again without.
                        Err(sqlx::Error::Database(_)) => plain().await,
                        other => other,
                    },
                    Ok(Upgrade::Refused(s)) => Self::start(Box::new(s), Channel::Plain, opts).await,
                    Err(sqlx::Error::Tls(_)) => plain().await,
                    Err(e) => Err(e),
                }
            }
            PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull => {
                let s = connect().await?;
                match upgrade(s, host, tls).await? {
                    Upgrade::Tls(io, cb) => Self::start(io, cb, opts).await,
                    Upgrade::Refused(_) => Err(no_tls()),
                }
            }
        }
    }

    /// Whether this connection is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The start-up on a connected (and maybe encrypted) stream.
    async fn start(
        io: Box<dyn Io>,
        channel: Channel,
        opts: &WireOptions,
    ) -> Result<Self, sqlx::Error> {
        let mut conn = WireConn {
            io,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(1024),
            prepared: HashMap::new(),
            in_flight: true,
            pending: None,
            encrypted: matches!(channel, Channel::Tls { .. }),
        };
        let params = [
            ("user", opts.user.as_str()),
            ("database", opts.database.as_str()),
            ("application_name", opts.application_name.as_str()),
            ("client_encoding", "UTF8"),
        ];
        encode(frontend::startup_message(params, &mut conn.wbuf))?;
        conn.send().await?;
        conn.authenticate(opts, channel).await?;
        // Ready: prepare the path statement.
        encode(frontend::parse(
            SET_PATH,
            SET_PATH_SQL,
            [Type::TEXT.oid()],
            &mut conn.wbuf,
        ))?;
        frontend::sync(&mut conn.wbuf);
        conn.send().await?;
        let mut error = None;
        loop {
            match conn.next().await? {
                Message::ParseComplete => {}
                Message::ErrorResponse(body) => error = Some(db_error(&body)),
                Message::ReadyForQuery(_) => break,
                _ => return Err(protocol("unexpected reply to Parse")),
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        conn.in_flight = false;
        Ok(conn)
    }

    async fn authenticate(
        &mut self,
        opts: &WireOptions,
        channel: Channel,
    ) -> Result<(), sqlx::Error> {
        let password = || {
            opts.password
                .as_deref()
                .ok_or_else(|| protocol("Postgres asks for a password and none is configured"))
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.next().await? {
                Message::AuthenticationOk | Message::BackendKeyData(_) => {}
                Message::AuthenticationCleartextPassword => {
                    encode(frontend::password_message(
                        password()?.as_bytes(),
                        &mut self.wbuf,
                    ))?;
                    self.send().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(opts.user.as_bytes(), password()?.as_bytes(), body.salt());
                    encode(frontend::password_message(hash.as_bytes(), &mut self.wbuf))?;
                    self.send().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let (mut plain, mut plus) = (false, false);
                    let mut mechanisms = body.mechanisms();
                    while let Ok(Some(m)) = mechanisms.next() {
                        plain |= m == SCRAM_SHA_256;
                        plus |= m == SCRAM_SHA_256_PLUS;
                    }
                    // As libpq (channel_binding=prefer): bind to the TLS connection
                    // when Postgres offers it; over TLS without it, say we could.
                    let (mechanism, binding) = match &channel {
                        Channel::Tls {
                            end_point: Some(cb),
                        } if plus => (
                            SCRAM_SHA_256_PLUS,
                            ChannelBinding::tls_server_end_point(cb.clone()),
                        ),
                        Channel::Tls { end_point: Some(_) } if plain => {
                            (SCRAM_SHA_256, ChannelBinding::unrequested())
                        }
                        _ if plain => (SCRAM_SHA_256, ChannelBinding::unsupported()),
                        _ => return Err(protocol("no supported SASL mechanism offered")),
                    };
                    let s = ScramSha256::new(password()?.as_bytes(), binding);
                    encode(frontend::sasl_initial_response(
                        mechanism,
                        s.message(),
                        &mut self.wbuf,
                    ))?;
                    scram = Some(s);
                    self.send().await?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL out of order"))?;
                    s.update(body.data())
                        .map_err(|e| protocol(format!("SCRAM: {e}")))?;
                    encode(frontend::sasl_response(s.message(), &mut self.wbuf))?;
                    self.send().await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| protocol("SASL out of order"))?;
                    s.finish(body.data())
                        .map_err(|e| protocol(format!("SCRAM: {e}")))?;
                }
                Message::ErrorResponse(body) => return Err(db_error(&body)),
                Message::ReadyForQuery(_) => return Ok(()),
                _ => return Err(protocol("unsupported authentication request")),
            }
        }
    }

    /// False after a message was cut short (its future dropped) and not finished
    /// ([`Self::finish`]): close it.
    pub fn is_usable(&self) -> bool {
        !self.in_flight
    }

    /// Reads the rest of the reply of a read that was cut short (its future dropped
    /// after the message was sent), so that the connection can be used again; an
    /// error when that is not possible (the message was cut short while being sent,
    /// or the connection failed): close it then.
    pub async fn finish(&mut self) -> Result<(), sqlx::Error> {
        if !self.in_flight {
            return Ok(());
        }
        match &self.pending {
            Some(p) if p.sent => {}
            _ => return Err(protocol("a message was cut short while being sent")),
        }
        match self.receive().await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(_)) => Ok(()), // the read failed; the connection did not
            Err(e) => Err(e),
        }
    }

    /// Runs `read` under `tenant`'s path with integer arguments (`None` is NULL):
    /// one message, one round trip (module docs). A statement that Postgres no longer
    /// has (26000) or whose result columns changed (0A000, after a migration) is
    /// prepared again in a second message.
    pub async fn read(
        &mut self,
        tenant: &TenantId,
        read: &PreparedRead,
        args: &[Option<i64>],
    ) -> Result<Vec<WireRow>, sqlx::Error> {
        let name = format!("{}:{}", read.name, tenant.as_str());
        let path = format!("{}, public", tenant.quoted());
        match self.read_once(&name, &path, read, args, false).await {
            Err(e) if has_sqlstate(&e, "26000") || has_sqlstate(&e, "0A000") => {
                self.read_once(&name, &path, read, args, true).await
            }
            other => other,
        }
    }

    async fn read_once(
        &mut self,
        name: &str,
        path: &str,
        read: &PreparedRead,
        args: &[Option<i64>],
        again: bool,
    ) -> Result<Vec<WireRow>, sqlx::Error> {
        if self.in_flight {
            return Err(protocol("a previous message was cut short"));
        }
        let known = if again {
            None
        } else {
            self.prepared.get(name).cloned()
        };
        let w = &mut self.wbuf;
        w.clear();
        bind(w, SET_PATH, &[Some(path)], 0)?;
        encode(frontend::execute("", 0, w))?;
        if known.is_none() {
            if again {
                encode(frontend::close(b'S', name, w))?;
            }
            let types = read.params.iter().map(Type::oid);
            encode(frontend::parse(name, read.sql, types, w))?;
            encode(frontend::describe(b'S', name, w))?;
        }
        let texts: Vec<Option<String>> = args.iter().map(|a| a.map(|v| v.to_string())).collect();
        let values: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        bind(w, name, &values, 1)?;
        encode(frontend::execute("", 0, w))?;
        frontend::sync(w);
        self.in_flight = true;
        self.pending = Some(Pending {
            name: name.to_owned(),
            known,
            sent: false,
        });
        self.send().await?;
        if let Some(p) = &mut self.pending {
            p.sent = true;
        }
        self.receive().await
    }

    /// The reply to the read in flight (`self.pending`), up to its `ReadyForQuery`.
    async fn receive(&mut self) -> Result<Vec<WireRow>, sqlx::Error> {
        // Kept in `self.pending` until the reply is read: a read dropped meanwhile is
        // finished from it.
        let (name, known) = match &self.pending {
            Some(p) => (p.name.clone(), p.known.clone()),
            None => return Err(protocol("no read in flight")),
        };
        let name = name.as_str();
        let mut columns = known;
        let mut parsed = false;
        let mut error = None;
        let mut completed = 0; // CommandComplete seen: 1 after the path, 2 after the read
        let mut rows = Vec::new();
        loop {
            match self.next().await? {
                Message::ReadyForQuery(_) => break,
                Message::CommandComplete(_) => completed += 1,
                Message::DataRow(body) if completed == 1 => {
                    let columns = columns
                        .clone()
                        .ok_or_else(|| protocol("a row before its description"))?;
                    rows.push(WireRow { body, columns });
                }
                Message::RowDescription(body) => {
                    let mut types = Vec::new();
                    let mut fields = body.fields();
                    while let Some(f) = fields.next().map_err(protocol)? {
                        types.push(Type::from_oid(f.type_oid()).unwrap_or(Type::UNKNOWN));
                    }
                    columns = Some(types.into());
                }
                Message::CloseComplete => {
                    self.prepared.remove(name);
                }
                Message::ErrorResponse(body) => {
                    error.get_or_insert(db_error(&body));
                }
                Message::ParseComplete => parsed = true,
                Message::DataRow(_)
                | Message::BindComplete
                | Message::ParameterDescription(_)
                | Message::NoData => {}
                _ => return Err(protocol("unexpected reply to a read")),
            }
        }
        self.in_flight = false;
        self.pending = None;
        // A statement parsed here stays prepared even when a later step failed and
        // the transaction was rolled back (prepared statements are not transactional).
        if parsed {
            match &columns {
                Some(c) => {
                    self.prepared.insert(name.to_owned(), c.clone());
                }
                None => return Err(protocol("a statement prepared without its description")),
            }
        }
        if let Some(e) = error {
            if has_sqlstate(&e, "26000") {
                self.prepared.remove(name);
            }
            return Err(e);
        }
        Ok(rows)
    }

    /// The connection's own `search_path` now, outside any read: a check that no read
    /// leaves its tenant's path behind.
    pub async fn current_search_path(&mut self) -> Result<String, sqlx::Error> {
        if self.in_flight {
            return Err(protocol("a previous message was cut short"));
        }
        self.wbuf.clear();
        encode(frontend::query("SHOW search_path", &mut self.wbuf))?;
        self.in_flight = true;
        self.send().await?;
        let mut path = None;
        let mut error = None;
        loop {
            match self.next().await? {
                Message::ReadyForQuery(_) => break,
                Message::DataRow(body) => {
                    let mut ranges = body.ranges();
                    if let Ok(Some(Some(r))) = ranges.next() {
                        path = Some(String::from_utf8_lossy(&body.buffer()[r]).into_owned());
                    }
                }
                Message::ErrorResponse(body) => error = Some(db_error(&body)),
                _ => {}
            }
        }
        self.in_flight = false;
        match error {
            Some(e) => Err(e),
            None => path.ok_or_else(|| protocol("SHOW returned no row")),
        }
    }

    async fn send(&mut self) -> Result<(), sqlx::Error> {
        self.io.write_all(&self.wbuf).await?;
        self.wbuf.clear();
        Ok(())
    }

    /// The next message, skipping notices, notifications and parameter reports.
    async fn next(&mut self) -> Result<Message, sqlx::Error> {
        loop {
            match Message::parse(&mut self.rbuf).map_err(protocol)? {
                Some(
                    Message::NoticeResponse(_)
                    | Message::NotificationResponse(_)
                    | Message::ParameterStatus(_),
                ) => {}
                Some(m) => return Ok(m),
                None => {
                    if self.io.read_buf(&mut self.rbuf).await? == 0 {
                        return Err(sqlx::Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }
}

/// `Bind` of the unnamed portal to `statement`, text parameters, results in `results`
/// format (0 text, 1 binary).
fn bind(
    w: &mut BytesMut,
    statement: &str,
    values: &[Option<&str>],
    results: i16,
) -> Result<(), sqlx::Error> {
    frontend::bind(
        "",
        statement,
        [0i16],
        values.iter().copied(),
        |v, buf| match v {
            Some(v) => {
                buf.put_slice(v.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        [results],
        w,
    )
    .map_err(|e| match e {
        frontend::BindError::Conversion(e) => protocol(format!("cannot encode an argument: {e}")),
        frontend::BindError::Serialization(e) => protocol(format!("cannot encode Bind: {e}")),
    })
}

fn has_sqlstate(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some(code))
}

/// One row of a read, its values in the binary format.
pub struct WireRow {
    body: DataRowBody,
    columns: Arc<[Type]>,
}

impl fmt::Debug for WireRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireRow")
            .field("columns", &self.columns)
            .field("bytes", &self.body.buffer().len())
            .finish()
    }
}

impl WireRow {
    /// Column `index` as `T`; an error if the column's type is not one `T` reads.
    pub fn get<'a, T: FromSql<'a>>(&'a self, index: usize) -> Result<T, sqlx::Error> {
        let ty = self
            .columns
            .get(index)
            .ok_or(sqlx::Error::ColumnIndexOutOfBounds {
                index,
                len: self.columns.len(),
            })?;
        if !T::accepts(ty) {
            return Err(sqlx::Error::ColumnDecode {
                index: index.to_string(),
                source: format!(
                    "column of type {ty} cannot be read as {}",
                    std::any::type_name::<T>()
                )
                .into(),
            });
        }
        let mut ranges = self.body.ranges();
        let range =
            ranges
                .nth(index)
                .map_err(protocol)?
                .ok_or(sqlx::Error::ColumnIndexOutOfBounds {
                    index,
                    len: self.columns.len(),
                })?;
        let raw = range.map(|r| &self.body.buffer()[r]);
        T::from_sql_nullable(ty, raw).map_err(|source| sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source,
        })
    }
}

/// A type a read's rows map to ([`WireRow`]; the sqlx path uses `FromRow`).
pub trait FromWireRow: Sized {
    fn from_wire_row(row: &WireRow) -> Result<Self, sqlx::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ssl_mode_name;

    fn opts(url: &str) -> anyhow::Result<WireOptions> {
        let o: PgConnectOptions = url.parse().unwrap();
        WireOptions::from_config(&o.application_name("mtpaas"), url)
    }

    /// A self-signed root certificate (no key: it only has to parse).
    const ROOT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUCGF5G6yCBdEAS5RqGTayeA4wezgwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVbXRwYWFzLXVuaXQtdGVzdC1yb290MCAXDTI2MTIwMzEyMjQw
OFoYDzIxMjYxMTA5MTIyNDA4WjAgMR4wHAYDVQQDDBVtdHBhYXMtdW5pdC10ZXN0
LXJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS7zyjX0c4zAqVVofFt5j3i
4RIldbXio1KvlDHx3Rx3P22dsG+GQb5+oUMmohXXRImRbK6ofGlbXz6CqAO9GRF0
o1MwUTAdBgNVHQ4EFgQUMibrDdlIAB2amsSuOwvHl1uMBzcwHwYDVR0jBBgwFoAU
MibrDdlIAB2amsSuOwvHl1uMBzcwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiEAstSaw/LkeOi3N4IKKcmHp7JB6NitaVl3n3dKSjLllpYCIF2dorl0
AwMJK+cCw+eHUiHQ69nTF5rEGlM2e1e5RIUQ
-----END CERTIFICATE-----
";

    fn root_file() -> String {
        let p = std::env::temp_dir().join(format!("mtpaas-wire-root-{}.crt", std::process::id()));
        std::fs::write(&p, ROOT_PEM).unwrap();
        p.display().to_string()
    }

    #[test]
    fn options_follow_the_url() {
        let o = opts("postgres://app:p%40ss@db.example:6543/mt?sslmode=disable").unwrap();
        assert!(matches!(&o.target, Target::Tcp(h, 6543) if h == "db.example"));
        assert_eq!(o.user, "app");
        assert_eq!(o.password.as_deref(), Some("p@ss"));
        assert_eq!(o.database, "mt");
        assert_eq!(o.application_name, "mtpaas");
        assert!(
            !format!("{o:?}").contains("p@ss"),
            "the password is not printed"
        );
        let sock = opts("postgres://a@localhost/d?host=/run/postgresql").unwrap();
        assert!(
            matches!(&sock.target, Target::Unix(p) if p.ends_with(".s.PGSQL.5432")),
            "{:?}",
            sock.target
        );
    }

    #[test]
    fn hostaddr_is_connected_to_and_host_names_the_server() {
        let o = opts("postgres://a@db.example:6543/d?hostaddr=127.0.0.2&sslmode=disable").unwrap();
        assert!(matches!(&o.target, Target::Tcp(h, 6543) if h == "db.example"));
        assert_eq!(o.hostaddr, Some("127.0.0.2".parse().unwrap()));
        let o = opts("postgres://a@db.example/d?hostaddr=::1").unwrap();
        assert_eq!(o.hostaddr, Some("::1".parse().unwrap()));
    }

    #[test]
    fn every_sslmode_gets_read_connections_doing_what_libpq_does() {
        let root = root_file();
        for (url, want) in [
            (
                "postgres://a@db.example/d?sslmode=disable",
                PgSslMode::Disable,
            ),
            ("postgres://a@db.example/d?sslmode=allow", PgSslMode::Allow),
            // The default, to another host and to this one alike.
            ("postgres://a@db.example/d", PgSslMode::Prefer),
            ("postgres://a@127.0.0.1/d", PgSslMode::Prefer),
            ("postgres://a@[::1]/d?sslmode=prefer", PgSslMode::Prefer),
            (
                "postgres://a@127.0.0.1/d?sslmode=require",
                PgSslMode::Require,
            ),
            // Never TLS over a Unix socket.
            (
                "postgres://a@localhost/d?host=/run/postgresql&sslmode=require",
                PgSslMode::Disable,
            ),
        ] {
            let o = opts(url).unwrap();
            assert_eq!(ssl_mode_name(o.ssl_mode()), ssl_mode_name(want), "{url}");
            // disable: no connector at all, nothing more is done on that path.
            let disabled = matches!(want, PgSslMode::Disable);
            assert_eq!(o.tls.is_none(), disabled, "{url}");
        }
        for (mode, want) in [
            ("require", PgSslMode::VerifyCa),
            ("verify-ca", PgSslMode::VerifyCa),
            ("verify-full", PgSslMode::VerifyFull),
        ] {
            let url = format!("postgres://a@db.example/d?sslmode={mode}&sslrootcert={root}");
            let got = opts(&url).unwrap().ssl_mode();
            assert_eq!(ssl_mode_name(got), ssl_mode_name(want), "{mode}");
        }
        for mode in ["verify-ca", "verify-full"] {
            let url = format!("postgres://a@h/d?sslmode={mode}&sslrootcert=/nonexistent/root.crt");
            let e = opts(&url).unwrap_err().to_string();
            assert!(e.contains("/nonexistent/root.crt"), "{e}");
        }
        // A root certificate that is not one: named, at start-up.
        let bad = env!("CARGO_MANIFEST_DIR").to_owned() + "/Cargo.toml";
        let url = format!("postgres://a@h/d?sslmode=verify-ca&sslrootcert={bad}");
        let e = opts(&url).unwrap_err().to_string();
        assert!(e.contains(&bad), "{e}");
        let _ = std::fs::remove_file(root);
    }

    #[test]
    fn a_bind_carries_text_arguments_nulls_and_the_result_format() {
        let mut w = BytesMut::new();
        bind(&mut w, "users:t1", &[Some("42"), None], 1).unwrap();
        let b = &w[..];
        assert_eq!(b[0], b'B');
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(len + 1, b.len());
        let body = &b[5..];
        // portal "" then the statement name
        assert_eq!(body[0], 0);
        assert_eq!(&body[1..10], b"users:t1\0");
        let rest = &body[10..];
        // one parameter format code (text), two values: "42" and NULL (-1), one result
        // format code (binary)
        assert_eq!(&rest[..4], &[0, 1, 0, 0]);
        assert_eq!(&rest[4..6], &[0, 2]);
        assert_eq!(&rest[6..10], &2i32.to_be_bytes());
        assert_eq!(&rest[10..12], b"42");
        assert_eq!(&rest[12..16], &(-1i32).to_be_bytes());
        assert_eq!(&rest[16..], &[0, 1, 0, 1]);
    }

    #[test]
    fn an_error_relayed_from_a_citus_node_keeps_its_context() {
        // ErrorResponse as the coordinator sends it when a worker ends the statement's
        // session under it: the worker's SQLSTATE, and Citus's context line naming it.
        let mut fields = Vec::new();
        for (t, v) in [
            (b'S', "ERROR"),
            (b'C', "57P01"),
            (b'M', "terminating connection due to administrator command"),
            (b'W', "while executing command on 127.0.0.1:9702"),
        ] {
            fields.push(t);
            fields.extend_from_slice(v.as_bytes());
            fields.push(0);
        }
        fields.push(0);
        let mut buf = BytesMut::new();
        buf.put_u8(b'E');
        buf.put_i32(4 + fields.len() as i32);
        buf.put_slice(&fields);
        let Ok(Some(Message::ErrorResponse(body))) = Message::parse(&mut buf) else {
            panic!("not parsed as an ErrorResponse");
        };
        let sqlx::Error::Database(e) = db_error(&body) else {
            panic!("not a database error");
        };
        assert_eq!(e.code().as_deref(), Some("57P01"));
        assert_eq!(
            e.message(),
            "terminating connection due to administrator command"
        );
        assert!(crate::error::node_unreachable(e.as_ref()));
        assert!(!crate::error::session_ended(e.as_ref()));
    }
}
