//! Head office's pages served by the server (`--web-dir`): the page at `/` with its security
//! headers, the build's assets with their content types, nothing outside the directory whatever
//! the path says (`..` plain or encoded, symbolic links, dot files, the desk's page), the API's
//! JSON 404 for every unknown path, and what `/` says when no web directory is configured.
//!
//! Most requests go through the router without a socket (any raw path can be sent that way);
//! one test sends raw request lines to the real server over TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use clap::Parser as _;
use kaunter_sync_server::cli::Cli;
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use kaunter_sync_server::web::{CONTENT_SECURITY_POLICY, WebPages};
use kaunter_sync_server::{AppState, db, router};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

const OFFICE_HTML: &str = "<!doctype html><title>Kaunter head office</title><script type=\"module\" src=\"./assets/office-abc123.js\"></script>";
const OFFICE_JS: &str = "console.log('office');";
const OFFICE_CSS: &str = "body { color: black; }";
const LOGO_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
/// A script long enough to be worth compressing.
fn vendor_js() -> String {
    (0..200)
        .map(|i| format!("export const label{i} = 'Cawangan {i}';\n"))
        .collect()
}
/// What lies next to the web directory and must never be served.
const SECRET: &str = "SECRET-OUTSIDE-THE-WEB-DIR";

/// A built front-end in a fresh temporary folder: `<root>/dist` is the web directory, with a
/// secret file beside it, a link to that secret inside `assets/`, a dot file and the desk's page.
struct Build {
    root: PathBuf,
}

impl Build {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("kaunter-web-{}", uuid::Uuid::now_v7()));
        let dist = root.join("dist");
        std::fs::create_dir_all(dist.join("assets/fonts")).unwrap();
        std::fs::write(dist.join("office.html"), OFFICE_HTML).unwrap();
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Desk</title>",
        )
        .unwrap();
        std::fs::write(dist.join("assets/office-abc123.js"), OFFICE_JS).unwrap();
        std::fs::write(dist.join("assets/office-abc123.css"), OFFICE_CSS).unwrap();
        std::fs::write(dist.join("assets/logo.svg"), LOGO_SVG).unwrap();
        std::fs::write(dist.join("assets/fonts/inter.woff2"), b"wOF2").unwrap();
        std::fs::write(dist.join("assets/vendor-def456.js"), vendor_js()).unwrap();
        std::fs::write(dist.join("assets/fonts/big.woff2"), vec![b'w'; 4096]).unwrap();
        std::fs::write(dist.join("assets/.env"), SECRET).unwrap();
        std::fs::write(root.join("secret.txt"), SECRET).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("secret.txt"), dist.join("assets/link.js")).unwrap();
        Self { root }
    }

    fn dist(&self) -> PathBuf {
        self.root.join("dist")
    }
}

impl Drop for Build {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A state whose pool is never used: these routes touch no database.
fn state_without_database() -> AppState {
    let config: tokio_postgres::Config = "host=127.0.0.1 port=9 user=nobody dbname=none"
        .parse()
        .unwrap();
    AppState::new(db::connect_pool(config, 1).unwrap())
}

fn app(web_dir: Option<&Path>) -> axum::Router {
    let pages = web_dir.map(|dir| WebPages::load(dir).unwrap());
    router(state_without_database().with_web_pages(pages))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn assert_json_not_found(&self, what: &str) {
        assert_eq!(self.status, StatusCode::NOT_FOUND, "{what}: {}", self.body);
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            "application/json",
            "{what}"
        );
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap();
        assert_eq!(body["code"], "not_found", "{what}");
        assert!(!self.body.contains(SECRET), "{what} shows the secret");
    }
}

async fn request(app: &axum::Router, method: Method, uri: &str) -> Answer {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &axum::Router, uri: &str) -> Answer {
    request(app, Method::GET, uri).await
}

#[tokio::test]
async fn the_office_page_is_served_at_the_root_with_its_security_headers() {
    let build = Build::new();
    let app = app(Some(&build.dist()));
    let answer = get(&app, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, OFFICE_HTML);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let policy = answer.header(header::CONTENT_SECURITY_POLICY);
    assert_eq!(policy, CONTENT_SECURITY_POLICY);
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(answer.header(header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(answer.header(header::REFERRER_POLICY), "no-referrer");
    assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-cache");

    // HEAD answers the same headers with no body; other methods are the API's JSON 405.
    let head = request(&app, Method::HEAD, "/").await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(
        head.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(head.body, "");
    let post = request(&app, Method::POST, "/").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header(header::CONTENT_TYPE), "application/json");
}

#[tokio::test]
async fn assets_are_served_with_their_content_types() {
    let build = Build::new();
    let app = app(Some(&build.dist()));
    for (path, content_type, body) in [
        (
            "/assets/office-abc123.js",
            "text/javascript; charset=utf-8",
            OFFICE_JS,
        ),
        (
            "/assets/office-abc123.css",
            "text/css; charset=utf-8",
            OFFICE_CSS,
        ),
        ("/assets/logo.svg", "image/svg+xml", LOGO_SVG),
        ("/assets/fonts/inter.woff2", "font/woff2", "wOF2"),
    ] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.header(header::CONTENT_TYPE), content_type, "{path}");
        assert_eq!(answer.body, body, "{path}");
        assert_eq!(
            answer.header(header::CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(answer.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(
            answer.header(header::CONTENT_SECURITY_POLICY),
            CONTENT_SECURITY_POLICY
        );
    }
}

/// `uri` asked for by a browser that accepts `encodings`: the answer's headers and its bytes
/// as sent.
async fn get_encoded(
    app: &axum::Router,
    uri: &str,
    encodings: &str,
) -> (axum::http::HeaderMap, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .uri(uri)
                .header(header::ACCEPT_ENCODING, encodings)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .unwrap();
    (headers, bytes.to_vec())
}

#[tokio::test]
async fn a_browser_gets_scripts_compressed_but_not_fonts_or_short_files() {
    let build = Build::new();
    let app = app(Some(&build.dist()));
    let (headers, body) =
        get_encoded(&app, "/assets/vendor-def456.js", "gzip, deflate, zstd").await;
    assert_eq!(headers[header::CONTENT_ENCODING], "zstd");
    assert_eq!(headers[header::VARY], "accept-encoding");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(body.len() * 3 < vendor_js().len(), "{} bytes", body.len());
    assert_eq!(zstd::decode_all(&body[..]).unwrap(), vendor_js().as_bytes());
    // Not asked for: as it is.
    let plain = get(&app, "/assets/vendor-def456.js").await;
    assert!(plain.headers.get(header::CONTENT_ENCODING).is_none());
    assert_eq!(plain.body, vendor_js());
    // A font is compressed already; a short file gains nothing.
    for path in ["/assets/fonts/big.woff2", "/assets/office-abc123.js"] {
        let (headers, _) = get_encoded(&app, path, "zstd").await;
        assert!(headers.get(header::CONTENT_ENCODING).is_none(), "{path}");
    }
}

#[tokio::test]
async fn nothing_outside_the_build_is_served_whatever_the_path_says() {
    let build = Build::new();
    let app = app(Some(&build.dist()));
    for path in [
        "/assets/../secret.txt",
        "/assets/../../secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/..%2F..%2Fsecret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/assets/..%5csecret.txt",
        "/assets//etc/passwd",
        "/assets/%2fetc%2fpasswd",
        "/assets/fonts/../../secret.txt",
        "/assets/link.js",
        "/assets/.env",
        "/assets/",
        "/assets",
        "/secret.txt",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/office.html",
        "/index.html",
        "/dist/office.html",
    ] {
        get(&app, path).await.assert_json_not_found(path);
    }
}

#[tokio::test]
async fn unknown_api_paths_keep_the_json_404() {
    let build = Build::new();
    for app in [app(Some(&build.dist())), app(None)] {
        for path in [
            "/v1/nope",
            "/v1/",
            "/v1/assets/office-abc123.js",
            "/v2/health",
        ] {
            get(&app, path).await.assert_json_not_found(path);
        }
        // The API's own routes are untouched (this one needs no database).
        let document = get(&app, "/v1/openapi.json").await;
        assert_eq!(document.status, StatusCode::OK);
        assert_eq!(document.header(header::CONTENT_TYPE), "application/json");
    }
}

#[tokio::test]
async fn without_a_web_directory_the_root_says_how_to_configure_one() {
    let app = app(None);
    let answer = get(&app, "/").await;
    answer.assert_json_not_found("/ without a web directory");
    let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("--web-dir"), "{message}");
    assert!(message.contains("KAUNTER_WEB_DIR"), "{message}");
    get(&app, "/assets/office-abc123.js")
        .await
        .assert_json_not_found("an asset without a web directory");
}

#[test]
fn a_directory_without_the_office_page_is_refused() {
    let build = Build::new();
    std::fs::remove_file(build.dist().join("office.html")).unwrap();
    let error = WebPages::load(&build.dist()).unwrap_err().to_string();
    assert!(error.contains("office.html"), "{error}");
    assert!(error.contains("npm --prefix ui run build"), "{error}");
    let missing = WebPages::load(&build.root.join("no-such-dir"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("office.html"), "{missing}");
}

#[test]
fn the_web_directory_is_a_flag_and_an_environment_variable() {
    let cli = Cli::try_parse_from([
        "sync-server",
        "--database-url",
        "postgres://owner@127.0.0.1/kaunter",
        "--web-dir",
        "/srv/kaunter/ui",
        "serve",
    ])
    .unwrap();
    assert_eq!(cli.config.web_dir, Some(PathBuf::from("/srv/kaunter/ui")));
    let without = Cli::try_parse_from([
        "sync-server",
        "--database-url",
        "postgres://owner@127.0.0.1/kaunter",
    ])
    .unwrap();
    // Unset unless KAUNTER_WEB_DIR is in this test's environment.
    assert_eq!(
        without.config.web_dir,
        std::env::var_os("KAUNTER_WEB_DIR").map(PathBuf::from)
    );
}

/// The raw request line `line` sent to the real server; the whole answer as text.
async fn raw(server: &TestServer, line: &str) -> String {
    let address = server.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{line}\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_real_server_refuses_raw_traversal_requests() {
    let build = Build::new();
    let db = TestDatabase::create().await.unwrap();
    let pool = db::connect_pool(db.app_config().unwrap(), 4).unwrap();
    let state = AppState::new(pool).with_web_pages(Some(WebPages::load(&build.dist()).unwrap()));
    let server = TestServer::start(state).await.unwrap();

    let page = raw(&server, "GET / HTTP/1.1").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(OFFICE_HTML), "{page}");
    for line in [
        "GET /assets/../secret.txt HTTP/1.1",
        "GET /assets/../../secret.txt HTTP/1.1",
        "GET /assets/%2e%2e/secret.txt HTTP/1.1",
        "GET /assets/..%2fsecret.txt HTTP/1.1",
        "GET /assets/link.js HTTP/1.1",
        "GET /../secret.txt HTTP/1.1",
    ] {
        let answer = raw(&server, line).await;
        assert!(
            !answer.contains(SECRET),
            "{line} shows the secret: {answer}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"),
            "{line}: {answer}"
        );
    }
    let unknown = raw(&server, "GET /v1/nope HTTP/1.1").await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("\"code\":\"not_found\""), "{unknown}");
    drop(server);
    db.drop_db().await.unwrap();
}
