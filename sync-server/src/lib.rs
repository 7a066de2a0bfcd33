//! Kaunter's sync server: desks push their outboxes and pull their branch's changes over HTTP;
//! everything is stored in multi-tenant PostgreSQL under row-level security.
//!
//! Entry points: [`router`] over an [`AppState`] (the HTTP API), [`migrate::run`] (schema),
//! [`admin`] (head-office operations), [`cli`] (what the `sync-server` binary does) and
//! [`test_support`] (a migrated test database and a running server, for tests of any crate).

pub mod admin;
mod auth;
pub mod cli;
mod columns;
pub mod config;
pub mod db;
pub mod enrolment_code;
pub mod error;
mod extract;
pub mod ids;
pub mod licence;
pub mod mail;
pub mod migrate;
pub mod notices;
pub mod openapi;
pub mod password;
pub mod payments;
pub mod purge;
mod push_turns;
mod routes;
mod rows;
pub mod stamps;
pub mod subscription;
pub mod test_support;
mod throttle;
pub mod token;
pub mod totp;
mod validate;
pub mod web;
pub mod webhook;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, http};
use tower_http::compression::predicate::{NotForContentType, Predicate as _, SizeAbove};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use crate::config::Config;
pub use crate::db::Pool;
pub use crate::error::{Error, Result};

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1024 * 1024;
/// Answers at least this long are compressed for a caller that accepts it (a pull's page, a
/// list, head office's scripts); shorter ones gain too little to be worth the work.
pub const COMPRESS_FROM_BYTES: u16 = 1024;
/// Default time a request may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a client has to send a request's headers (slow-header attacks hold a
/// connection open by trickling them; the request time-out covers the body).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default life of a desk's access token under rotating credentials.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// What every handler shares: the app-role connection pool and the request limits.
#[derive(Clone)]
pub struct AppState {
    pool: Pool,
    body_limit_bytes: usize,
    request_timeout: Duration,
    header_read_timeout: Duration,
    access_token_ttl: Duration,
    /// The automatic tombstone purge's horizon; `None` turns it off.
    tombstone_horizon: Option<Duration>,
    /// The payment providers' webhook secrets; `None`: that provider's route is not configured.
    stripe_webhook_secret: Option<webhook::WebhookSecret>,
    fpx_webhook_secret: Option<webhook::WebhookSecret>,
    /// How far a webhook's time may be from the server's clock, either way.
    webhook_tolerance: Duration,
    /// Where e-mail notices go; `None`: they wait in the outbox.
    mailer: Option<std::sync::Arc<mail::Mailer>>,
    /// Head office's pages (see [`web`]); `None`: `GET /` says none are configured.
    web_pages: Option<web::WebPages>,
    /// How often [`serve`] sweeps businesses' notices ([`notices::sweep`]); `None`: never.
    notice_sweep: Option<Duration>,
    /// The pushes this server is working on, per device (see [`push_turns`]).
    push_turns: push_turns::PushTurns,
}

impl AppState {
    /// A state over `pool` (connections as the app role, never the owner) with default limits.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            tombstone_horizon: Some(purge::DEFAULT_HORIZON),
            stripe_webhook_secret: None,
            fpx_webhook_secret: None,
            webhook_tolerance: webhook::DEFAULT_TOLERANCE,
            mailer: None,
            web_pages: None,
            notice_sweep: None,
            push_turns: push_turns::PushTurns::default(),
        }
    }

    /// Opens the app-role pool the configuration names, refuses a role that row-level security
    /// would not bind (see [`db::check_app_role`]), applies the configured limits and reads the
    /// web directory, if one is named.
    pub async fn connect(config: &Config) -> Result<Self> {
        let web_pages = config
            .web_dir
            .as_deref()
            .map(web::WebPages::load)
            .transpose()?;
        if let Some(pages) = &web_pages {
            tracing::info!(
                assets = pages.asset_count(),
                "serving head office's pages at /"
            );
        }
        let pool = db::connect_pool(config.app_database_config()?, config.db_pool_size)?;
        db::check_app_role(&pool).await?;
        Ok(Self::new(pool)
            .with_body_limit_bytes(config.body_limit_bytes)
            .with_request_timeout(config.request_timeout())
            .with_header_read_timeout(config.header_read_timeout())
            .with_access_token_ttl(config.access_token_ttl())
            .with_tombstone_horizon(config.tombstone_horizon())
            .with_stripe_webhook_secret(config.stripe_webhook_secret.clone())
            .with_fpx_webhook_secret(config.fpx_webhook_secret.clone())
            .with_webhook_tolerance(config.webhook_tolerance())
            .with_mailer(config.mailer())
            .with_web_pages(web_pages)
            .with_notice_sweep(config.notice_sweep()))
    }

    pub fn with_body_limit_bytes(mut self, bytes: usize) -> Self {
        self.body_limit_bytes = bytes;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    pub fn with_access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    pub fn access_token_ttl(&self) -> Duration {
        self.access_token_ttl
    }

    pub fn with_tombstone_horizon(mut self, horizon: Option<Duration>) -> Self {
        self.tombstone_horizon = horizon;
        self
    }

    /// The secret Stripe's webhook deliveries are verified with (`None`: not configured).
    pub fn with_stripe_webhook_secret(mut self, secret: Option<webhook::WebhookSecret>) -> Self {
        self.stripe_webhook_secret = secret;
        self
    }

    /// The secret the FPX gateway's callbacks are verified with (`None`: not configured).
    pub fn with_fpx_webhook_secret(mut self, secret: Option<webhook::WebhookSecret>) -> Self {
        self.fpx_webhook_secret = secret;
        self
    }

    pub fn with_webhook_tolerance(mut self, tolerance: Duration) -> Self {
        self.webhook_tolerance = tolerance;
        self
    }

    pub fn stripe_webhook_secret(&self) -> Option<&webhook::WebhookSecret> {
        self.stripe_webhook_secret.as_ref()
    }

    pub fn fpx_webhook_secret(&self) -> Option<&webhook::WebhookSecret> {
        self.fpx_webhook_secret.as_ref()
    }

    pub fn webhook_tolerance(&self) -> Duration {
        self.webhook_tolerance
    }

    /// The most a request's body may hold, as sent or decompressed.
    pub fn body_limit_bytes(&self) -> usize {
        self.body_limit_bytes
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn push_turns(&self) -> &push_turns::PushTurns {
        &self.push_turns
    }

    pub fn tombstone_horizon(&self) -> Option<Duration> {
        self.tombstone_horizon
    }

    /// E-mail notices go to this relay (see [`mail`]); `None`: they wait in the outbox.
    pub fn with_mailer(mut self, mailer: Option<mail::Mailer>) -> Self {
        self.mailer = mailer.map(std::sync::Arc::new);
        self
    }

    pub fn mailer(&self) -> Option<std::sync::Arc<mail::Mailer>> {
        self.mailer.clone()
    }

    /// Head office's pages, served at `/` (see [`web`]); `None`: none.
    pub fn with_web_pages(mut self, pages: Option<web::WebPages>) -> Self {
        self.web_pages = pages;
        self
    }

    pub fn web_pages(&self) -> Option<&web::WebPages> {
        self.web_pages.as_ref()
    }

    /// Sweeps businesses' notices every `every` while [`serve`] runs (the first after one
    /// interval); `None` (the default): only desks' rounds look at them.
    pub fn with_notice_sweep(mut self, every: Option<Duration>) -> Self {
        self.notice_sweep = every;
        self
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("pool", &self.pool.status())
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("tombstone_horizon", &self.tombstone_horizon)
            .field("stripe_webhook_secret", &self.stripe_webhook_secret)
            .field("fpx_webhook_secret", &self.fpx_webhook_secret)
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("mailer", &self.mailer)
            .field("web_pages", &self.web_pages)
            .field("notice_sweep", &self.notice_sweep)
            .finish()
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No credentials (health, sign-up, login, enrolment).
    Anyone,
    /// A desk, by its bearer device token.
    Device,
    /// A person at head office, by the session cookie (and the CSRF token for changes).
    Session,
}

/// One route of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub caller: Caller,
}

/// Every route the API serves. [`router`] is built from this list, and the tenancy tests walk
/// it, so a new route cannot escape them.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/health",
        caller: Caller::Anyone,
    },
    Route {
        method: "GET",
        path: "/v1/openapi.json",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/signup",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/auth/login",
        caller: Caller::Anyone,
    },
    Route {
        method: "GET",
        path: "/v1/auth/session",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/auth/logout",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/devices",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/emergency-access",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/subscription",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/licence",
        caller: Caller::Device,
    },
    Route {
        method: "GET",
        path: "/v1/payments",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/payments/invoice",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/subscription/cancel",
        caller: Caller::Session,
    },
    Route {
        method: "PUT",
        path: "/v1/subscription/modules",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/webhooks/stripe",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/webhooks/fpx",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/emergency-access/review",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/devices/revoke",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/auth/totp/setup",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/auth/totp/confirm",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/auth/totp/disable",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/auth/pin",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/staff",
        caller: Caller::Device,
    },
    Route {
        method: "POST",
        path: "/v1/invitations/accept",
        caller: Caller::Anyone,
    },
    Route {
        method: "GET",
        path: "/v1/users",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/users/invite",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/users/reinvite",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/users/status",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/users/roles",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/users/totp-reset",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/roles",
        caller: Caller::Session,
    },
    Route {
        method: "GET",
        path: "/v1/branches",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/branches/add",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/branches/rename",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/branches/close",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/devices/refresh",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/devices/enrolment-codes",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/settings/security",
        caller: Caller::Session,
    },
    Route {
        method: "POST",
        path: "/v1/enrol",
        caller: Caller::Anyone,
    },
    Route {
        method: "POST",
        path: "/v1/sync/push",
        caller: Caller::Device,
    },
    Route {
        method: "GET",
        path: "/v1/sync/pull",
        caller: Caller::Device,
    },
    Route {
        method: "POST",
        path: "/v1/sync/status",
        caller: Caller::Device,
    },
    Route {
        method: "GET",
        path: "/v1/conflicts",
        caller: Caller::Device,
    },
    Route {
        method: "POST",
        path: "/v1/conflicts/resolve",
        caller: Caller::Device,
    },
];

/// The handler of a route in [`ROUTES`].
fn handler(route: &Route) -> axum::routing::MethodRouter<AppState> {
    match (route.method, route.path) {
        ("GET", "/v1/health") => get(routes::health::health),
        ("GET", "/v1/openapi.json") => get(openapi::serve),
        ("POST", "/v1/signup") => post(routes::signup::sign_up),
        ("POST", "/v1/auth/login") => post(routes::auth::login),
        ("GET", "/v1/auth/session") => get(routes::auth::session),
        ("POST", "/v1/auth/logout") => post(routes::auth::logout),
        ("GET", "/v1/devices") => get(routes::devices::list),
        ("POST", "/v1/devices/revoke") => post(routes::devices::revoke),
        ("GET", "/v1/emergency-access") => get(routes::emergency_access::list),
        ("GET", "/v1/subscription") => get(routes::subscription::show),
        ("GET", "/v1/licence") => get(routes::licence::licence),
        ("GET", "/v1/payments") => get(routes::billing::payments),
        ("GET", "/v1/payments/invoice") => get(routes::billing::invoice),
        ("POST", "/v1/subscription/cancel") => post(routes::billing::cancel),
        ("PUT", "/v1/subscription/modules") => put(routes::subscription::set_modules),
        ("POST", "/v1/webhooks/stripe") => post(routes::webhooks::stripe),
        ("POST", "/v1/webhooks/fpx") => post(routes::webhooks::fpx),
        ("POST", "/v1/emergency-access/review") => post(routes::emergency_access::review),
        ("POST", "/v1/auth/totp/setup") => post(routes::totp::setup),
        ("POST", "/v1/auth/totp/confirm") => post(routes::totp::confirm),
        ("POST", "/v1/auth/totp/disable") => post(routes::totp::disable),
        ("POST", "/v1/auth/pin") => post(routes::staff::set_pin),
        ("GET", "/v1/staff") => get(routes::staff::roster),
        ("POST", "/v1/invitations/accept") => post(routes::users::accept),
        ("GET", "/v1/users") => get(routes::users::list),
        ("POST", "/v1/users/invite") => post(routes::users::invite),
        ("POST", "/v1/users/reinvite") => post(routes::users::reinvite),
        ("POST", "/v1/users/status") => post(routes::users::set_status),
        ("POST", "/v1/users/roles") => post(routes::users::set_user_roles),
        ("POST", "/v1/users/totp-reset") => post(routes::users::reset_totp),
        ("GET", "/v1/roles") => get(routes::users::roles),
        ("GET", "/v1/branches") => get(routes::branches::list),
        ("POST", "/v1/branches/add") => post(routes::branches::add),
        ("POST", "/v1/branches/rename") => post(routes::branches::rename),
        ("POST", "/v1/branches/close") => post(routes::branches::close),
        ("POST", "/v1/devices/refresh") => post(routes::device_tokens::refresh),
        ("POST", "/v1/devices/enrolment-codes") => post(routes::branches::enrolment_code),
        ("POST", "/v1/settings/security") => post(routes::totp::security_settings),
        ("POST", "/v1/enrol") => post(routes::enrol::enrol),
        ("POST", "/v1/sync/push") => post(routes::push::push),
        ("GET", "/v1/sync/pull") => get(routes::pull::pull),
        ("POST", "/v1/sync/status") => post(routes::status::report),
        ("GET", "/v1/conflicts") => get(routes::conflicts::list),
        ("POST", "/v1/conflicts/resolve") => post(routes::conflicts::resolve),
        // Every test builds the router, so a listed route without a handler fails them all.
        (method, path) => panic!("no handler for {method} {path}"),
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The HTTP API, every answer of which, errors included, is JSON; and head office's pages at
/// `/` and `/assets/...` ([`web`], not part of [`ROUTES`]: no data, no credentials).
pub fn router(state: AppState) -> Router {
    let body_limit_bytes = state.body_limit_bytes;
    let request_timeout = state.request_timeout;
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, handler(route));
    }
    router
        .route("/", get(web::office_page))
        .route("/assets/{*path}", get(web::asset))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Enforced where the body is read (extract.rs), so an oversized body gets a JSON 413;
        // there also on what a compressed body decompresses to.
        .layer(DefaultBodyLimit::max(body_limit_bytes))
        .layer(Extension(extract::BodyLimit(body_limit_bytes)))
        // Answers compressed as the caller accepts (desks: zstd; browsers: zstd or gzip), at
        // the fastest level: a branch's first download is mostly this JSON, about ten times
        // smaller compressed, on links where that is minutes. Images (but SVG) and fonts come
        // compressed already.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(
                    SizeAbove::new(COMPRESS_FROM_BYTES)
                        .and(NotForContentType::IMAGES)
                        .and(NotForContentType::const_new("font/")),
                ),
        )
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        // And every answer (the time-out's too) says the server reads zstd request bodies
        // (RFC 7694): a desk compresses its pushes once it has seen this, so it still talks
        // to an older server.
        .layer(SetResponseHeaderLayer::if_not_present(
            http::header::ACCEPT_ENCODING,
            http::HeaderValue::from_static("zstd"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Gives up on a request that takes longer than the limit, with a JSON answer (tower-http's
/// timeout layer answers with an empty body). Dropping the handler rolls its transaction back.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout.into_response(),
    }
}

/// Most connections served at once; more wait in the listen queue until one closes.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long shutdown waits for open connections to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes open requests
/// (for at most [`SHUTDOWN_GRACE`]).
///
/// HTTP/1.1 only (desks and browsers behind the TLS proxy speak it; HTTP/2 without TLS has no
/// header time-out). Each connection gets the header time-out, which also ends a connection
/// that sends nothing and an idle keep-alive one (the request time-out then bounds the body
/// and the handler), and the peer's address (login throttles per address). At most
/// [`MAX_CONNECTIONS`] are open at once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let header_read_timeout = state.header_read_timeout;
    // The notice sweep lives as long as this function: dropped (the server stopped, or this
    // future dropped), its task is aborted.
    let _sweeping = state.notice_sweep.map(|every| {
        let (pool, mailer) = (state.pool().clone(), state.mailer());
        AbortOnDrop(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // An interval's first tick is at once: the first sweep waits one interval.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match notices::sweep(&pool, mailer.clone()).await {
                    Ok(0) => {}
                    Ok(looked_at) => tracing::debug!(looked_at, "notice sweep"),
                    Err(error) => {
                        tracing::warn!(%error, "notice sweep failed; next at the next interval")
                    }
                }
            }
        }))
    });
    let app = router(state);
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let builder = builder.clone();
        let watcher = connections.watcher();
        tokio::spawn(async move {
            // hyper's header time-out starts with the first byte: a connection that sends none
            // gets the same time to start.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace; closing them");
    }
    Ok(())
}
