//! HTTP calls to the sync server, one function per route, with the server's error body
//! translated once.
//!
//! A desk enrolled with rotating credentials sends a short-lived device token; when the server
//! answers 401, the client trades its refresh token for a new pair once (saving it to the OS
//! keyring before using it) and repeats the request. A refused refresh means the desk was
//! revoked: it keeps everything and asks to be enrolled again.
//!
//! Bodies travel compressed with zstd: answers when the server compresses them (reqwest asks
//! for it and decompresses), and a push's batch once the server has said it reads zstd bodies
//! (its answers carry `Accept-Encoding: zstd`, RFC 7694), so the desk still talks to a server
//! that does not.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kaunter_store::DeskCredentials;
use zeroize::Zeroizing;

use kaunter_protocol::SCHEMA_VERSION;
use kaunter_protocol::http::{
    ConflictView, ConflictsResponse, DeskStatusReport, EnrolRequest, EnrolResponse, ErrorBody,
    OutboxEntry, PullResponse, PushRequest, PushResponse, RefreshRequest, RefreshResponse,
    Resolution, ResolveConflictRequest, StaffResponse, error_code,
};
use reqwest::StatusCode;

use crate::error::{Result, SyncError};

pub struct SyncClient {
    http: reqwest::Client,
    base_url: String,
    /// The device token now in use.
    token: Mutex<Zeroizing<String>>,
    /// Where the credentials live, when they can be renewed (rotating credentials).
    stored: Option<DeskCredentials>,
    /// One refresh at a time: requests that all find the token expired share one exchange.
    refreshing: tokio::sync::Mutex<()>,
    /// Whether the server said it reads zstd request bodies.
    server_reads_zstd: AtomicBool,
    /// Whether a compressed push was refused as such anyway (by a proxy on the way): then
    /// pushes go plain for as long as this client lives, whatever the server says.
    compressed_refused: AtomicBool,
}

/// A push body at least this long is compressed (when the server reads zstd); a shorter one
/// gains too little.
pub const COMPRESS_FROM_BYTES: usize = 1024;
/// zstd's fastest level: a 500-entry batch (about 230 kB of JSON) shrinks about sevenfold in
/// well under a millisecond, where higher levels cost several times the time for a few per
/// cent more.
const ZSTD_LEVEL: i32 = 1;

/// A push body as sent: `body` is JSON, or JSON compressed with zstd when `compressed`.
#[derive(Debug, Clone)]
pub struct PushBody {
    pub body: Vec<u8>,
    pub compressed: bool,
}

impl PushBody {
    /// `request` as JSON, compressed with zstd if `compress` and it is long enough to gain.
    pub fn new(request: &PushRequest, compress: bool) -> Result<PushBody> {
        let json = serde_json::to_vec(request).map_err(|e| SyncError::Protocol(e.to_string()))?;
        if !compress || json.len() < COMPRESS_FROM_BYTES {
            return Ok(PushBody {
                body: json,
                compressed: false,
            });
        }
        let body = zstd::bulk::compress(&json, ZSTD_LEVEL)
            .map_err(|e| SyncError::Protocol(format!("compressing a push failed: {e}")))?;
        Ok(PushBody {
            body,
            compressed: true,
        })
    }
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncClient")
            .field("base_url", &self.base_url)
            .field("token", &"[redacted]")
            .finish()
    }
}

fn normalise_base_url(url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed =
        reqwest::Url::parse(trimmed).map_err(|_| SyncError::BadServerUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(SyncError::BadServerUrl(url.to_owned()));
    }
    Ok(trimmed.to_owned())
}

fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| SyncError::Protocol(e.to_string()))
}

fn transport_error(error: reqwest::Error) -> SyncError {
    if error.is_decode() {
        SyncError::Protocol(error.to_string())
    } else {
        // Connection refused, DNS, TLS, timeouts, a dropped connection: the desk is offline.
        SyncError::Offline(error.without_url().to_string())
    }
}

async fn read<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport_error)?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol(e.to_string()));
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(SyncError::Unauthorized);
    }
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Err(SyncError::Refused {
            status: status.as_u16(),
            code: body.code,
            message: body.message,
            expected_seq: body.expected_seq,
        }),
        // A proxy or captive portal answered, not our server.
        Err(_) => Err(SyncError::Offline(format!(
            "the server answered HTTP {status} without a Kaunter error body"
        ))),
    }
}

impl SyncClient {
    /// A client with a fixed device token (a long-lived one, or a test's).
    pub fn new(base_url: &str, token: &str) -> Result<SyncClient> {
        Ok(SyncClient {
            http: http_client()?,
            base_url: normalise_base_url(base_url)?,
            token: Mutex::new(Zeroizing::new(token.to_owned())),
            stored: None,
            refreshing: tokio::sync::Mutex::new(()),
            server_reads_zstd: AtomicBool::new(false),
            compressed_refused: AtomicBool::new(false),
        })
    }

    /// A client over the desk's stored credentials: it renews them when the server says the
    /// device token is no longer good and a refresh token is kept.
    pub fn with_credentials(base_url: &str, credentials: DeskCredentials) -> Result<SyncClient> {
        let token = credentials.device_token()?;
        Ok(SyncClient {
            stored: Some(credentials),
            ..SyncClient::new(base_url, &token)?
        })
    }

    /// Uses `token` from now on (after a re-enrolment stored new credentials).
    pub fn use_token(&self, token: &str) {
        let mut current = match self.token.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Zeroizing::new(token.to_owned());
    }

    fn current_token(&self) -> Zeroizing<String> {
        match self.token.lock() {
            Ok(token) => token.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sends the request `build` makes with the current device token; on a 401, renews the
    /// credentials once (when they can be) and sends it again.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<T> {
        read(self.respond(build).await?).await
    }

    /// [`Self::call`]'s answer, before it is read.
    async fn respond(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let token = self.current_token();
        let response = build(&self.http, &token)
            .send()
            .await
            .map_err(transport_error)?;
        self.note_encodings(response.headers());
        if response.status() != StatusCode::UNAUTHORIZED || !self.renew(&token).await? {
            return Ok(response);
        }
        let token = self.current_token();
        let response = build(&self.http, &token)
            .send()
            .await
            .map_err(transport_error)?;
        self.note_encodings(response.headers());
        Ok(response)
    }

    /// Remembers that the server reads zstd request bodies when an answer says so (an answer
    /// without the header, such as a proxy's, changes nothing).
    fn note_encodings(&self, headers: &reqwest::header::HeaderMap) {
        let reads_zstd = headers
            .get_all(reqwest::header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|coding| {
                let mut parts = coding.split(';').map(str::trim);
                let name = parts.next().unwrap_or_default();
                // `zstd;q=0` says it is not taken.
                let refused = parts.any(|parameter| {
                    parameter
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                name.eq_ignore_ascii_case("zstd") && !refused
            });
        if reads_zstd {
            self.server_reads_zstd.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this client's pushes go compressed: the server said it reads zstd bodies.
    pub fn compresses_pushes(&self) -> bool {
        self.server_reads_zstd.load(Ordering::Relaxed)
            && !self.compressed_refused.load(Ordering::Relaxed)
    }

    /// Trades the refresh token for a new pair, unless another request already did since
    /// `stale` was sent. `Ok(false)`: nothing to renew with (a fixed or long-lived token).
    /// The new pair is saved before it is used; if the answer is lost, the next try presents
    /// the same refresh token again, which the server accepts within a short grace.
    async fn renew(&self, stale: &str) -> Result<bool> {
        let Some(stored) = &self.stored else {
            return Ok(false);
        };
        let _one_at_a_time = self.refreshing.lock().await;
        if self.current_token().as_str() != stale {
            return Ok(true);
        }
        let Some(refresh_token) = stored.refresh_token()? else {
            return Ok(false);
        };
        let response = self
            .http
            .post(format!("{}/v1/devices/refresh", self.base_url))
            .json(&RefreshRequest {
                refresh_token: refresh_token.to_string(),
            })
            .send()
            .await
            .map_err(transport_error)?;
        let renewed: RefreshResponse = read(response).await?;
        stored.save(&renewed.device_token, &renewed.refresh_token)?;
        match self.token.lock() {
            Ok(mut token) => *token = Zeroizing::new(renewed.device_token),
            Err(poisoned) => *poisoned.into_inner() = Zeroizing::new(renewed.device_token),
        }
        tracing::info!(until = %renewed.access_expires_at, "device credentials renewed");
        Ok(true)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Exchanges an enrolment code for a long-lived device token.
    pub async fn enrol(base_url: &str, code: &str, device_name: &str) -> Result<EnrolResponse> {
        Self::enrol_with(base_url, code, device_name, false, None, 0).await
    }

    /// Exchanges an enrolment code for rotating credentials: a short-lived device token and a
    /// refresh token (keep both with [`DeskCredentials::save`]).
    pub async fn enrol_rotating(
        base_url: &str,
        code: &str,
        device_name: &str,
    ) -> Result<EnrolResponse> {
        Self::enrol_with(base_url, code, device_name, true, None, 0).await
    }

    /// Re-enrolment of a desk head office removed: with the reconnect code head office issued
    /// for it, it takes its place again under `device_id` (rotating credentials), keeping its
    /// data and outbox. `last_seq` is the last outbox seq the desk ever wrote.
    pub async fn reenrol(
        base_url: &str,
        code: &str,
        device_name: &str,
        device_id: uuid::Uuid,
        last_seq: i64,
    ) -> Result<EnrolResponse> {
        Self::enrol_with(base_url, code, device_name, true, Some(device_id), last_seq).await
    }

    async fn enrol_with(
        base_url: &str,
        code: &str,
        device_name: &str,
        rotating_credentials: bool,
        replaces_device: Option<uuid::Uuid>,
        last_seq: i64,
    ) -> Result<EnrolResponse> {
        let base_url = normalise_base_url(base_url)?;
        let response = http_client()?
            .post(format!("{base_url}/v1/enrol"))
            .json(&EnrolRequest {
                code: code.to_owned(),
                device_name: device_name.to_owned(),
                rotating_credentials,
                replaces_device,
                last_seq,
            })
            .send()
            .await
            .map_err(transport_error)?;
        match read(response).await {
            // The enrol route answers 401 for a bad code; that is not a revoked device.
            Err(SyncError::Unauthorized) => Err(SyncError::Refused {
                status: 401,
                code: error_code::ENROLMENT_CODE_INVALID.to_owned(),
                message: "The enrolment code is not valid (wrong, used or expired).".to_owned(),
                expected_seq: None,
            }),
            other => other,
        }
    }

    pub async fn push_entries(&self, entries: Vec<OutboxEntry>) -> Result<PushResponse> {
        let request = PushRequest {
            schema_version: SCHEMA_VERSION,
            entries,
        };
        let body = PushBody::new(&request, self.compresses_pushes())?;
        let response = self.send_push(&body).await?;
        // A compressed push answered 415 or 400, by the server or by anything on the way (a
        // proxy that does not pass compressed bodies on, or mangles them; a server rolled back
        // to a version that does not read them): the body was refused before anything was
        // applied. It goes again as it is; if that is taken, later pushes go plain too.
        let status = response.status();
        if body.compressed
            && (status == StatusCode::UNSUPPORTED_MEDIA_TYPE || status == StatusCode::BAD_REQUEST)
        {
            let answer = read(self.send_push(&PushBody::new(&request, false)?).await?).await;
            if answer.is_ok() {
                tracing::info!(%status, "a compressed push was refused and the plain one taken; sending pushes plain");
                self.compressed_refused.store(true, Ordering::Relaxed);
            }
            return answer;
        }
        read(response).await
    }

    async fn send_push(&self, body: &PushBody) -> Result<reqwest::Response> {
        self.respond(|http, token| {
            let request = http
                .post(format!("{}/v1/sync/push", self.base_url))
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            let request = if body.compressed {
                request.header(reqwest::header::CONTENT_ENCODING, "zstd")
            } else {
                request
            };
            request.body(body.body.clone())
        })
        .await
    }

    /// Tells the server this desk's sync state, for head office.
    pub async fn report_status(&self, report: &DeskStatusReport) -> Result<()> {
        self.call::<serde_json::Value>(|http, token| {
            http.post(format!("{}/v1/sync/status", self.base_url))
                .bearer_auth(token)
                .json(report)
        })
        .await
        .map(|_| ())
    }

    pub async fn pull_page(&self, cursor: i64, limit: u32, count: bool) -> Result<PullResponse> {
        let url = format!(
            "{}/v1/sync/pull?cursor={cursor}&limit={limit}&count={count}&schema_version={}",
            self.base_url,
            kaunter_protocol::SCHEMA_VERSION
        );
        self.call(|http, token| http.get(&url).bearer_auth(token))
            .await
    }

    /// A licence lease for this desk, signed by the server (enforced offline by the store).
    pub async fn licence(&self) -> Result<kaunter_protocol::http::SignedLicence> {
        let url = format!("{}/v1/licence", self.base_url);
        self.call(|http, token| http.get(&url).bearer_auth(token))
            .await
    }

    /// The people who may sign in at this desk, with their PIN hashes.
    pub async fn staff(&self) -> Result<StaffResponse> {
        let url = format!("{}/v1/staff", self.base_url);
        self.call(|http, token| http.get(&url).bearer_auth(token))
            .await
    }

    /// The conflicts of this desk's branch: only the open ones unless `all`.
    pub async fn conflicts(&self, all: bool) -> Result<ConflictsResponse> {
        let state = if all { "all" } else { "open" };
        let url = format!(
            "{}/v1/conflicts?state={state}&schema_version={SCHEMA_VERSION}",
            self.base_url
        );
        self.call(|http, token| http.get(&url).bearer_auth(token))
            .await
    }

    /// Records a person's decision on a conflict (the data side travels as ordinary changes).
    pub async fn resolve_conflict(
        &self,
        conflict_id: uuid::Uuid,
        resolution: Resolution,
    ) -> Result<ConflictView> {
        let body = ResolveConflictRequest {
            conflict_id,
            resolution,
        };
        self.call(|http, token| {
            http.post(format!("{}/v1/conflicts/resolve", self.base_url))
                .bearer_auth(token)
                .json(&body)
        })
        .await
    }
}

/// The two calls a sync round makes. [`SyncClient`] makes them over HTTP; the simulation wraps
/// it to lose, repeat and reorder them.
pub trait Transport: Send + Sync {
    fn push(
        &self,
        entries: Vec<OutboxEntry>,
    ) -> impl std::future::Future<Output = Result<PushResponse>> + Send;
    /// `count`: also ask how many changes there are from the cursor on.
    fn pull(
        &self,
        cursor: i64,
        limit: u32,
        count: bool,
    ) -> impl std::future::Future<Output = Result<PullResponse>> + Send;
}

impl Transport for SyncClient {
    fn push(
        &self,
        entries: Vec<OutboxEntry>,
    ) -> impl std::future::Future<Output = Result<PushResponse>> + Send {
        self.push_entries(entries)
    }

    fn pull(
        &self,
        cursor: i64,
        limit: u32,
        count: bool,
    ) -> impl std::future::Future<Output = Result<PullResponse>> + Send {
        self.pull_page(cursor, limit, count)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        assert_eq!(
            normalise_base_url(" http://127.0.0.1:8787/ ").unwrap(),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            normalise_base_url("https://sync.example.my").unwrap(),
            "https://sync.example.my"
        );
        for bad in ["", "127.0.0.1:8787", "ftp://x", "http://"] {
            assert!(normalise_base_url(bad).is_err(), "{bad}");
        }
    }
}
