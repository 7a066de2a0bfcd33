//! Slow clients are cut off, over a real socket: one that trickles its headers loses the
//! connection after the header time-out, one that stops sending its body gets the JSON 503 of
//! the request time-out, and neither holds up a well-behaved client meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kaunter_sync_server::AppState;
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_all(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut buffer = Vec::new();
    let closed = tokio::time::timeout(within, stream.read_to_end(&mut buffer))
        .await
        .is_ok();
    (String::from_utf8_lossy(&buffer).into_owned(), closed)
}

#[tokio::test]
async fn trickled_headers_and_stalled_bodies_are_cut_off() {
    let db = TestDatabase::create().await.unwrap();
    let state = AppState::new(db.app_pool().unwrap())
        .with_header_read_timeout(Duration::from_secs(1))
        .with_request_timeout(Duration::from_secs(2));
    let server = TestServer::start(state).await.unwrap();
    let address = server.base_url.trim_start_matches("http://").to_owned();

    // Headers that never end: the server closes the connection after about a second.
    let started = Instant::now();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: kaunter\r\nX-Slow: ")
        .await
        .unwrap();
    // Meanwhile a normal request is answered at once.
    let health = reqwest::get(server.url("/v1/health")).await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let (answer, closed) = read_all(&mut slow, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert!(closed, "the connection stayed open");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );

    // A connection that never sends a byte is closed too.
    let started = Instant::now();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let (answer, closed) = read_all(&mut silent, Duration::from_secs(10)).await;
    assert!(closed, "a silent connection stayed open");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A body that stops half-way: the request time-out answers with the JSON error.
    let mut stalled = TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(
            b"POST /v1/signup HTTP/1.1\r\nHost: kaunter\r\nContent-Type: application/json\r\n\
              Content-Length: 400\r\nConnection: close\r\n\r\n{\"business_name\": \"Kli",
        )
        .await
        .unwrap();
    let (answer, closed) = read_all(&mut stalled, Duration::from_secs(10)).await;
    assert!(closed, "the connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("took too long"), "{answer:?}");
    drop(server);
    db.drop_db().await.unwrap();
}
