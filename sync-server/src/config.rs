//! The server's one typed configuration: flags, each with a `KAUNTER_*` environment variable and
//! a default where one is safe. Database URLs are secrets and never appear in Debug output.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use tokio_postgres::config::Host;

use crate::error::{Error, Result};
use crate::webhook::WebhookSecret;

/// The role the server connects as: not the owner, not a superuser, no BYPASSRLS. Created by the
/// first migration.
pub const APP_ROLE: &str = "kaunter_app";

/// Server configuration. Flags go before the subcommand (`sync-server --listen ... serve`), or
/// come from the environment.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL URL of the schema owner: used to run migrations (which also create the
    /// kaunter_app role if it is missing). Never used to serve requests.
    #[arg(long, env = "KAUNTER_DATABASE_URL", hide_env_values = true)]
    pub database_url: DatabaseUrl,

    /// PostgreSQL URL the server and the admin commands use, as a role under row-level
    /// security. Default: the database URL with the user replaced by kaunter_app and no password.
    #[arg(long, env = "KAUNTER_APP_DATABASE_URL", hide_env_values = true)]
    pub app_database_url: Option<DatabaseUrl>,

    /// Address and port to listen on.
    #[arg(long, env = "KAUNTER_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// Largest accepted request body, in bytes; larger bodies get 413 payload_too_large.
    #[arg(long, env = "KAUNTER_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Seconds a request may take before the server gives up on it and answers 503.
    #[arg(long, env = "KAUNTER_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "KAUNTER_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Minutes a desk's access token lives under rotating credentials (it renews it with its
    /// refresh token).
    #[arg(long, env = "KAUNTER_ACCESS_TOKEN_MINUTES", default_value_t = 15)]
    pub access_token_minutes: u64,

    /// Most database connections the server keeps open at once.
    #[arg(long, env = "KAUNTER_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// Deleted records older than this many days are purged for good, once a day per business
    /// (after one of its pushes); desks away longer download their branch again. 0: never purge
    /// automatically (`sync-server admin purge-tombstones` still does).
    #[arg(long, env = "KAUNTER_TOMBSTONE_HORIZON_DAYS", default_value_t = 90)]
    pub tombstone_horizon_days: u64,

    /// Stripe's signing secret of the webhook endpoint (`whsec_...`) that
    /// `POST /v1/webhooks/stripe` verifies deliveries with. Unset: that route answers 503
    /// webhook_not_configured. Prefer the environment to the flag (flags show in `ps`).
    #[arg(long, env = "KAUNTER_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<WebhookSecret>,

    /// The mail relay (`host:port`, plain SMTP, typically the machine's own Postfix) that
    /// e-mail notices and receipts are handed to. Unset: they wait in the outbox.
    #[arg(long, env = "KAUNTER_SMTP_RELAY")]
    pub smtp_relay: Option<String>,

    /// The address notices are sent from.
    #[arg(long, env = "KAUNTER_MAIL_FROM", default_value = "kaunter@localhost")]
    pub mail_from: String,

    /// The FPX / e-wallet gateway's X-Signature key that `POST /v1/webhooks/fpx` verifies
    /// callbacks with. Unset: that route answers 503 webhook_not_configured.
    #[arg(long, env = "KAUNTER_FPX_WEBHOOK_SECRET", hide_env_values = true)]
    pub fpx_webhook_secret: Option<WebhookSecret>,

    /// Seconds a webhook's time (Stripe's signature timestamp, the gateway's paid_at) may be
    /// from the server's clock, either way, before it is refused as webhook_stale.
    #[arg(long, env = "KAUNTER_WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,

    /// The built head-office pages (`npm --prefix ui run build` makes `ui/dist`): `office.html`
    /// is served at `/` and its `assets/` under `/assets/`, read once at start (restart after a
    /// rebuild). Unset: `GET /` answers a JSON 404 saying so; the API is the same either way.
    #[arg(long, env = "KAUNTER_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// Seconds between the server's own sweeps of businesses' notices (trial warnings, expiry,
    /// suspension, retries), which reach a business none of whose desks syncs; 0 turns the
    /// sweep off (desks' rounds still look at their business's notices).
    #[arg(long, env = "KAUNTER_NOTICE_SWEEP_SECS", default_value_t = 300)]
    pub notice_sweep_secs: u64,
}

impl Config {
    /// Connection settings of the role requests run as.
    /// The automatic purge's horizon, if it is on.
    pub fn tombstone_horizon(&self) -> Option<Duration> {
        (self.tombstone_horizon_days > 0)
            .then(|| Duration::from_secs(self.tombstone_horizon_days.saturating_mul(24 * 60 * 60)))
    }

    /// Where e-mail notices go, if a relay is configured.
    pub fn mailer(&self) -> Option<crate::mail::Mailer> {
        self.smtp_relay.as_ref().map(|relay| crate::mail::Mailer {
            relay: relay.clone(),
            from: self.mail_from.clone(),
        })
    }

    pub fn app_database_config(&self) -> Result<tokio_postgres::Config> {
        match &self.app_database_url {
            Some(url) => url.to_pg_config(),
            None => Ok(with_user_and_no_password(
                &self.database_url.to_pg_config()?,
                APP_ROLE,
            )),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_minutes.clamp(1, 24 * 60) * 60)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    pub fn webhook_tolerance(&self) -> Duration {
        Duration::from_secs(self.webhook_tolerance_secs)
    }

    /// `None`: no sweep.
    pub fn notice_sweep(&self) -> Option<Duration> {
        (self.notice_sweep_secs > 0).then(|| Duration::from_secs(self.notice_sweep_secs))
    }
}

/// A PostgreSQL connection string (URL or `key=value` form). It may hold a password, so Debug
/// prints `[redacted]`; checked to parse when the configuration is read.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The string itself; call only to connect.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn to_pg_config(&self) -> Result<tokio_postgres::Config> {
        self.0
            .parse::<tokio_postgres::Config>()
            .map_err(|_| Error::Config("the database URL does not parse".to_owned()))
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        // The parse error could quote the URL, password included: say only that it failed.
        text.parse::<tokio_postgres::Config>()
            .map(|_| Self(text.to_owned()))
            .map_err(|_| "not a valid PostgreSQL connection string".to_owned())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([redacted])")
    }
}

/// The same server, database and options as `base`, as `user`, with no password.
/// (tokio-postgres can set but not clear a password, so the config is rebuilt.)
pub fn with_user_and_no_password(
    base: &tokio_postgres::Config,
    user: &str,
) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config.user(user);
    for host in base.get_hosts() {
        match host {
            Host::Tcp(name) => {
                config.host(name);
            }
            #[cfg(unix)]
            Host::Unix(path) => {
                config.host_path(path);
            }
        }
    }
    for address in base.get_hostaddrs() {
        config.hostaddr(*address);
    }
    for port in base.get_ports() {
        config.port(*port);
    }
    if let Some(dbname) = base.get_dbname() {
        config.dbname(dbname);
    }
    if let Some(options) = base.get_options() {
        config.options(options);
    }
    if let Some(name) = base.get_application_name() {
        config.application_name(name);
    }
    if let Some(timeout) = base.get_connect_timeout() {
        config.connect_timeout(*timeout);
    }
    config
        .ssl_mode(base.get_ssl_mode())
        .target_session_attrs(base.get_target_session_attrs())
        .channel_binding(base.get_channel_binding())
        .keepalives(base.get_keepalives())
        .keepalives_idle(base.get_keepalives_idle());
    config
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let url: DatabaseUrl = "postgres://owner:hunter2@db.example:5433/kaunter"
            .parse()
            .unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn app_config_swaps_the_user_and_drops_the_password() {
        let url: DatabaseUrl =
            "postgres://owner:hunter2@db.example:5433/kaunter?application_name=x"
                .parse()
                .unwrap();
        let app = with_user_and_no_password(&url.to_pg_config().unwrap(), APP_ROLE);
        assert_eq!(app.get_user(), Some(APP_ROLE));
        assert_eq!(app.get_password(), None);
        assert_eq!(app.get_dbname(), Some("kaunter"));
        assert_eq!(app.get_ports(), &[5433]);
        assert_eq!(app.get_hosts(), &[Host::Tcp("db.example".to_owned())]);
        assert_eq!(app.get_application_name(), Some("x"));
    }
}
