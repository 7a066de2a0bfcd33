//! Fixtures for tests against the real PostgreSQL, for this crate and for other crates'
//! end-to-end tests: a fresh, migrated database per test, and the real server on a free port.
//!
//! ```no_run
//! # async fn example() -> kaunter_sync_server::Result<()> {
//! use kaunter_sync_server::{admin, test_support::TestDatabase};
//!
//! let db = TestDatabase::create().await?;          // kt_test_<random>, migrated
//! let server = db.spawn_server().await?;           // http://127.0.0.1:<port>
//! let business = admin::create_business(server.pool(), "Klinik Demo", "Main", None).await?;
//! let code = admin::create_enrolment_code(
//!     server.pool(), business.tenant_id, business.branch_id,
//!     admin::DEFAULT_ENROLMENT_CODE_TTL,
//! ).await?;
//! // ... POST {server.base_url}/v1/enrol with `code` ...
//! db.drop_db().await?;                             // or let Drop clean up
//! # Ok(()) }
//! ```
//!
//! The cluster is `postgres://postgres@127.0.0.1:5432` unless `KAUNTER_TEST_PG_URL` names
//! another (URL form, a superuser or a role with CREATEDB and CREATEROLE). The role
//! `kaunter_app` is cluster-wide and shared by every test database.

use std::fmt;

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use crate::config::APP_ROLE;
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::{AppState, migrate};

/// Environment variable naming the test cluster (URL form).
pub const TEST_PG_URL_ENV: &str = "KAUNTER_TEST_PG_URL";
const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database made for one test, migrated, dropped when this value is dropped (best effort) or by
/// [`TestDatabase::drop_db`].
pub struct TestDatabase {
    /// `kt_test_<16 hex digits>`.
    pub name: String,
    /// URL of the database as the owner (the cluster user): migrations, catalog checks, seeding
    /// rows behind row-level security's back (a superuser bypasses it).
    pub owner_url: String,
    /// URL of the database as `kaunter_app`: what the server uses; row-level security applies.
    pub app_url: String,
    /// URL of the cluster's maintenance database, to create and drop test databases from.
    cluster_url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates `kt_test_<random>` and applies every migration as the owner.
    pub async fn create() -> Result<Self> {
        let database = Self::create_unmigrated().await?;
        migrate::run(&database.owner_config()?).await?;
        Ok(database)
    }

    /// Creates `kt_test_<random>` with no schema at all (for tests of migrations themselves).
    pub async fn create_unmigrated() -> Result<Self> {
        let cluster_url =
            std::env::var(TEST_PG_URL_ENV).unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_owned());
        let cluster: tokio_postgres::Config = cluster_url
            .parse()
            .map_err(|_| Error::Config(format!("{TEST_PG_URL_ENV} does not parse")))?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        let name = format!("kt_test_{}", hex::encode(random));

        let client = connect(&cluster_url).await?;
        // The name is ours (hex), so interpolating it is safe.
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        drop(client);

        let owner_user = cluster.get_user().unwrap_or("postgres");
        let owner_url = database_url(&cluster, owner_user, cluster.get_password(), &name);
        let app_url = database_url(&cluster, APP_ROLE, None, &name);
        Ok(Self {
            name,
            owner_url,
            app_url,
            cluster_url,
            dropped: false,
        })
    }

    pub fn owner_config(&self) -> Result<tokio_postgres::Config> {
        parse(&self.owner_url)
    }

    pub fn app_config(&self) -> Result<tokio_postgres::Config> {
        parse(&self.app_url)
    }

    /// A small pool of `kaunter_app` connections, e.g. for [`crate::admin`] functions.
    pub fn app_pool(&self) -> Result<Pool> {
        db::connect_pool(self.app_config()?, 4)
    }

    /// One connection as the owner (bypasses row-level security: use it to inspect, not to
    /// prove isolation).
    pub async fn owner_client(&self) -> Result<tokio_postgres::Client> {
        connect(&self.owner_url).await
    }

    /// One connection as `kaunter_app`.
    pub async fn app_client(&self) -> Result<tokio_postgres::Client> {
        connect(&self.app_url).await
    }

    /// Starts the real server (default limits) on this database. See [`TestServer::start`].
    pub async fn spawn_server(&self) -> Result<TestServer> {
        TestServer::start(AppState::new(db::connect_pool(self.app_config()?, 8)?)).await
    }

    /// Waits (at most 10 s) until `count` connections to this database wait for a lock: a
    /// request seen queueing for a lock a test holds.
    pub async fn lock_waiters(&self, count: i64) -> Result<()> {
        let owner = self.owner_client().await?;
        for _ in 0..1000 {
            let waiting: i64 = owner
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await?
                .try_get(0)?;
            if waiting >= count {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Err(Error::Internal(format!(
            "{count} connections never waited for a lock"
        )))
    }

    /// Drops the database now, waiting for it; prefer this to relying on Drop.
    pub async fn drop_db(mut self) -> Result<()> {
        self.dropped = true;
        drop_database(&self.cluster_url, &self.name).await
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    /// Best effort: drops the database from a helper thread with its own runtime (Drop cannot
    /// await, and may run inside a runtime that must not be blocked on itself).
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (cluster_url, name) = (self.cluster_url.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime
                && let Err(error) = runtime.block_on(drop_database(&cluster_url, &name))
            {
                eprintln!("test_support: could not drop {name}: {error}");
            }
        });
        let _ = cleanup.join();
    }
}

/// The real router served on `127.0.0.1:<free port>` inside the current tokio runtime; stopped
/// when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    state: AppState,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Serves `state` and returns once the port is bound. Refuses a pool whose role is not bound
    /// by row-level security, as the real server does.
    pub async fn start(state: AppState) -> Result<Self> {
        db::check_app_role(state.pool()).await?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let served = state.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = crate::serve(listener, served, std::future::pending()).await {
                eprintln!("test_support: server stopped: {error}");
            }
        });
        Ok(Self {
            base_url,
            state,
            task,
        })
    }

    /// `base_url` + `path`, e.g. `server.url("/v1/health")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The server's own pool (as `kaunter_app`).
    pub fn pool(&self) -> &Pool {
        self.state.pool()
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse(url: &str) -> Result<tokio_postgres::Config> {
    url.parse()
        .map_err(|_| Error::Config("a test database URL does not parse".to_owned()))
}

/// Connects once; the connection is driven by a spawned task until the client is dropped.
async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = parse(url)?.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn drop_database(cluster_url: &str, name: &str) -> Result<()> {
    let client = connect(cluster_url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// `postgres://user[:password]@host:port/dbname` on the cluster's first TCP host.
fn database_url(
    cluster: &tokio_postgres::Config,
    user: &str,
    password: Option<&[u8]>,
    dbname: &str,
) -> String {
    let host = cluster
        .get_hosts()
        .iter()
        .find_map(|host| match host {
            Host::Tcp(name) => Some(name.clone()),
            #[cfg(unix)]
            Host::Unix(_) => None,
        })
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = cluster.get_ports().first().copied().unwrap_or(5432);
    let credentials = match password {
        Some(password) => format!(
            "{}:{}",
            percent_encode(user.as_bytes()),
            percent_encode(password)
        ),
        None => percent_encode(user.as_bytes()),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    format!("postgres://{credentials}@{host}:{port}/{dbname}")
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The password [`sign_up_form`]'s admin gets.
pub const ADMIN_PASSWORD: &str = "kuda merah lompat tinggi";

/// A valid sign-up of a clinic in Kuala Lumpur with this slug, name and admin e-mail (password
/// [`ADMIN_PASSWORD`]); tests change the fields they are about.
pub fn sign_up_form(
    slug: &str,
    business_name: &str,
    admin_email: &str,
) -> kaunter_protocol::http::SignUpRequest {
    kaunter_protocol::http::SignUpRequest {
        business_name: business_name.into(),
        slug: slug.into(),
        industry: "HEALTHCARE".into(),
        email: format!("pejabat@{slug}.my"),
        phone: "03-2145 8899".into(),
        address_line1: "12, Jalan Tun Razak".into(),
        address_line2: String::new(),
        postcode: "50400".into(),
        city: "Kuala Lumpur".into(),
        state: "W.P. Kuala Lumpur".into(),
        branch_name: format!("Cawangan {business_name}"),
        admin_name: format!("Pentadbir {business_name}"),
        admin_email: admin_email.into(),
        admin_password: ADMIN_PASSWORD.into(),
        // English, so tests read Kaunter's e-mails in English (an empty choice means Malay).
        language: "en".into(),
    }
}

/// A mail relay for tests: it speaks just enough SMTP to take messages and keeps them, or, when
/// `refusing`, refuses every recipient (550) so a test sees the sender try again later.
#[derive(Debug, Clone)]
pub struct SmtpCapture {
    pub addr: std::net::SocketAddr,
    messages: std::sync::Arc<std::sync::Mutex<Vec<CapturedMail>>>,
    refusing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// One message the capture relay took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    pub to: String,
    /// Headers and body as sent after DATA.
    pub data: String,
}

impl CapturedMail {
    /// The subject line, RFC 2047 base64 decoded when it is encoded.
    pub fn subject(&self) -> String {
        use base64::Engine as _;
        let raw = self
            .data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or_default();
        match raw
            .strip_prefix("=?UTF-8?B?")
            .and_then(|rest| rest.strip_suffix("?="))
        {
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default(),
            None => raw.to_owned(),
        }
    }

    /// The body, decoded from base64.
    pub fn body(&self) -> String {
        use base64::Engine as _;
        let encoded: String = self
            .data
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    }
}

impl SmtpCapture {
    pub async fn start() -> Result<Self> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|error| Error::Internal(error.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|error| Error::Internal(error.to_string()))?;
        let capture = SmtpCapture {
            addr,
            messages: Default::default(),
            refusing: Default::default(),
        };
        let (messages, refusing) = (capture.messages.clone(), capture.refusing.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (messages, refusing) = (messages.clone(), refusing.clone());
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 capture ready\r\n").await;
                    let mut to = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") {
                            b"250-capture\r\n250 8BITMIME\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            if refusing.load(std::sync::atomic::Ordering::SeqCst) {
                                b"550 no such mailbox here\r\n"
                            } else {
                                to = line[8..].trim_matches(['<', '>', ' ']).to_owned();
                                b"250 OK\r\n"
                            }
                        } else if upper == "DATA" {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push_str("\r\n");
                            }
                            if let Ok(mut kept) = messages.lock() {
                                kept.push(CapturedMail {
                                    to: to.clone(),
                                    data,
                                });
                            }
                            b"250 queued\r\n"
                        } else if upper == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        } else {
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(capture)
    }

    /// Every message taken so far.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.messages
            .lock()
            .map(|kept| kept.clone())
            .unwrap_or_default()
    }

    /// Waits (at most 10 s) until `count` messages were taken, and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<CapturedMail> {
        for _ in 0..200 {
            let taken = self.messages();
            if taken.len() >= count {
                return taken;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.messages()
    }

    /// From now on, refuse (or again take) every recipient.
    pub fn refuse(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The branch digest of what a pull gave (`changes` from cursor 0, every page), as a
/// checkpoint spells it: each row's changes (adjacent, one per stamp its fields won at) merged
/// into one record, and the rows' digests summed as the desks sum them.
pub fn digest_of_pulled(changes: &[kaunter_protocol::http::PulledChange]) -> String {
    let mut rows: Vec<(uuid::Uuid, kaunter_core::lww::LwwRecord<serde_json::Value>)> = Vec::new();
    for pulled in changes {
        if rows
            .last()
            .is_none_or(|(id, _)| *id != pulled.change.row_id)
        {
            rows.push((pulled.change.row_id, kaunter_core::lww::LwwRecord::new()));
        }
        if let Some((_, record)) = rows.last_mut() {
            kaunter_protocol::merge::apply_change(record, &pulled.change);
        }
    }
    let digest = rows.iter().fold(0u64, |digest, (id, record)| {
        kaunter_protocol::merge::update_digest(
            digest,
            0,
            kaunter_protocol::merge::row_digest(*id, record),
        )
    });
    format!("{digest:016x}")
}
