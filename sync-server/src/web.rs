//! Head office's web pages: the built front-end (`npm --prefix ui run build` makes `ui/dist`)
//! served by the server itself, so one address gives the API and the pages that use it (the
//! session cookie is SameSite=Strict and the pages call the API from the same origin).
//!
//! What is served, and nothing else: `GET /` answers `office.html`, `GET /assets/<file>` the
//! files under `assets/` (Vite's hashed bundles). They are read into memory once, when the server
//! starts ([`WebPages::load`]), and looked up by name: no request path ever reaches the file
//! system, so `..`, encoded or not, names nothing. Dot files and anything that is not a regular
//! file (symbolic links included) are left out. A rebuilt front-end is served after a restart.
//! Without a web directory `GET /` answers a JSON 404 that says how to configure one; every
//! other unknown path, `/v1/...` included, keeps the API's JSON 404.
//!
//! The page and its assets carry the security headers: `Content-Security-Policy` (only this
//! origin's scripts, styles, images and connections; no framing, no plugins, no `<base>`),
//! `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`
//! and `Cross-Origin-Opener-Policy: same-origin`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kaunter_protocol::http::{ErrorBody, error_code};

use crate::AppState;
use crate::error::{Error, Result};

/// The page `GET /` answers, at the top of the web directory.
pub const OFFICE_PAGE: &str = "office.html";
/// The folder of the page's scripts, styles and images (Vite's `build.assetsDir`).
pub const ASSETS_DIR: &str = "assets";
/// The most the web directory may hold in memory: a front-end build is well under a megabyte; a
/// directory far larger is the wrong one.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Deepest folder nesting read under `assets/`.
const MAX_DEPTH: usize = 8;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'";

/// One file as it is served.
#[derive(Clone)]
struct StaticFile {
    bytes: Bytes,
    content_type: &'static str,
}

/// The head-office pages, read once from the web directory.
#[derive(Clone)]
pub struct WebPages {
    office_page: StaticFile,
    /// By their path under `assets/`, `/`-separated (`office-3f2a.js`, `fonts/x.woff2`).
    assets: Arc<HashMap<String, StaticFile>>,
}

impl fmt::Debug for WebPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebPages")
            .field("office_page_bytes", &self.office_page.bytes.len())
            .field("assets", &self.assets.len())
            .finish()
    }
}

impl WebPages {
    /// Reads `dir`'s `office.html` and every regular file under its `assets/`. A directory
    /// without `office.html` is refused: it is not a front-end build (or not built yet).
    pub fn load(dir: &Path) -> Result<Self> {
        let config_error = |what: String| Error::Config(format!("web directory: {what}"));
        let office_path = dir.join(OFFICE_PAGE);
        let Some(mut total) = regular_file(&office_path) else {
            return Err(config_error(format!(
                "{} has no {OFFICE_PAGE}; build the front-end first (npm --prefix ui run build) and name its dist directory",
                dir.display()
            )));
        };
        let office_page = read_file(&office_path, total)?;
        let mut assets = HashMap::new();
        let assets_dir = dir.join(ASSETS_DIR);
        if is_plain_dir(&assets_dir) {
            collect(&assets_dir, "", 0, &mut assets, &mut total)?;
        }
        if total > MAX_TOTAL_BYTES {
            return Err(config_error(format!(
                "{} holds more than {} MiB; name the front-end's dist directory",
                dir.display(),
                MAX_TOTAL_BYTES / (1024 * 1024)
            )));
        }
        Ok(Self {
            office_page,
            assets: Arc::new(assets),
        })
    }

    /// How many files under `assets/` are served.
    pub fn asset_count(&self) -> usize {
        self.assets.len()
    }
}

/// The file's size when `path` is a regular file (not a link to one).
fn regular_file(path: &Path) -> Option<u64> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|metadata| metadata.file_type().is_file())
        .map(|metadata| metadata.len())
}

fn is_plain_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_dir())
}

fn read_file(path: &Path, size: u64) -> Result<StaticFile> {
    if size > MAX_TOTAL_BYTES {
        return Err(Error::Config(format!(
            "web directory: {} is larger than {} MiB",
            path.display(),
            MAX_TOTAL_BYTES / (1024 * 1024)
        )));
    }
    let bytes = std::fs::read(path).map_err(|error| {
        Error::Config(format!(
            "web directory: reading {}: {error}",
            path.display()
        ))
    })?;
    Ok(StaticFile {
        bytes: Bytes::from(bytes),
        content_type: content_type(path),
    })
}

/// Adds every regular file under `dir` (whose path under `assets/` is `prefix`) to `files`.
fn collect(
    dir: &Path,
    prefix: &str,
    depth: usize,
    files: &mut HashMap<String, StaticFile>,
    total: &mut u64,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        Error::Config(format!("web directory: reading {}: {error}", dir.display()))
    })?;
    for entry in entries {
        let entry = entry.map_err(|error| {
            Error::Config(format!("web directory: reading {}: {error}", dir.display()))
        })?;
        // Names that are not UTF-8, and dot files (.DS_Store, editors' swap files), are not part
        // of a build.
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let key = format!("{prefix}{name}");
        if let Some(size) = regular_file(&path) {
            *total = total.saturating_add(size);
            if *total > MAX_TOTAL_BYTES {
                return Ok(());
            }
            files.insert(key, read_file(&path, size)?);
        } else if depth < MAX_DEPTH && is_plain_dir(&path) {
            collect(&path, &format!("{key}/"), depth + 1, files, total)?;
        }
    }
    Ok(())
}

/// The `Content-Type` a file is served with, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// How long a browser may keep an answer.
#[derive(Debug, Clone, Copy)]
enum Caching {
    /// The page: asked again each time, so a new build's bundle names are picked up.
    Revalidate,
    /// Vite's bundles: their names change with their content.
    Immutable,
}

fn serve(file: &StaticFile, caching: Caching) -> Response {
    let cache_control = match caching {
        Caching::Revalidate => "no-cache",
        Caching::Immutable => "public, max-age=31536000, immutable",
    };
    let mut response = file.bytes.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    with_security_headers(response)
}

/// The headers every answer of this module carries.
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `GET /`: head office's page, or (with no web directory configured) a JSON 404 saying so.
pub async fn office_page(State(state): State<AppState>) -> Response {
    match state.web_pages() {
        Some(pages) => serve(&pages.office_page, Caching::Revalidate),
        None => {
            let body = ErrorBody {
                code: error_code::NOT_FOUND.to_owned(),
                message: "This server has no head-office pages: start it with --web-dir \
                          (KAUNTER_WEB_DIR) naming the built front-end (ui/dist). The API is \
                          under /v1/."
                    .to_owned(),
                expected_seq: None,
                fields: Vec::new(),
            };
            with_security_headers((StatusCode::NOT_FOUND, axum::Json(body)).into_response())
        }
    }
}

/// `GET /assets/<path>`: a file of the build, by its exact name; anything else is the API's
/// JSON 404.
pub async fn asset(State(state): State<AppState>, UrlPath(path): UrlPath<String>) -> Response {
    match state
        .web_pages()
        .and_then(|pages| pages.assets.get(path.as_str()))
    {
        Some(file) => serve(file, Caching::Immutable),
        None => Error::NotFound.into_response(),
    }
}
