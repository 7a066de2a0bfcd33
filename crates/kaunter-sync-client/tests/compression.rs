//! A desk's pushes on the wire: plain until the server says it reads zstd bodies, compressed
//! after, and plain again for good when something on the way refuses them. The server here is
//! a stand-in that records what arrives and can refuse compressed bodies as a proxy might; the
//! real server's side of compression is tested in sync-server's `http_api.rs`, and every other
//! test's pushes after the first go compressed to the real server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use kaunter_protocol::SCHEMA_VERSION;
use kaunter_protocol::http::{
    Change, Entity, ErrorBody, OutboxEntry, PushRequest, PushResponse, WireStamp, error_code,
};
use kaunter_sync_client::{COMPRESS_FROM_BYTES, SyncClient, SyncError};
use serde_json::json;
use uuid::Uuid;

/// What the stand-in received: each push's `Content-Encoding` and the request it held.
type Received = Arc<Mutex<Vec<(Option<String>, PushRequest)>>>;

/// How the stand-in answers. Every answer says it reads zstd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Takes compressed pushes like plain ones.
    Reads,
    /// Refuses compressed pushes with an HTML 415, as a proxy does.
    ProxyRefuses,
    /// Answers compressed pushes with the server's 400 (a proxy that strips the coding but
    /// passes the bytes on, or a server rolled back to a version that reads no zstd).
    Mangled,
    /// Refuses every push with the server's 400, compressed or not.
    RefusesAll,
}

/// The server's 400 body.
fn bad_request() -> Response {
    let refusal = ErrorBody {
        code: error_code::BAD_REQUEST.to_owned(),
        message: "The request body could not be read.".to_owned(),
        expected_seq: None,
        fields: Vec::new(),
    };
    (StatusCode::BAD_REQUEST, axum::Json(refusal)).into_response()
}

/// A stand-in server on a free port answering as `behaviour` says.
async fn stand_in(behaviour: Behaviour) -> (String, Received) {
    let received = Received::default();
    let log = received.clone();
    let push = move |headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            let encoding = headers
                .get("content-encoding")
                .map(|value| value.to_str().unwrap().to_owned());
            let json = match encoding.as_deref() {
                Some("zstd") => zstd::decode_all(&body[..]).unwrap(),
                None => body.to_vec(),
                Some(other) => panic!("unexpected content-encoding {other}"),
            };
            let request: PushRequest = serde_json::from_slice(&json).unwrap();
            let acked_seq = request.entries.last().map_or(0, |entry| entry.seq);
            log.lock().unwrap().push((encoding.clone(), request));
            let compressed = encoding.is_some();
            let mut answer = match behaviour {
                Behaviour::ProxyRefuses if compressed => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    [("content-type", "text/html")],
                    "<html><body><h1>415 Unsupported Media Type</h1></body></html>",
                )
                    .into_response(),
                Behaviour::Mangled if compressed => bad_request(),
                Behaviour::RefusesAll => bad_request(),
                _ => axum::Json(PushResponse {
                    acked_seq,
                    rejected: Vec::new(),
                })
                .into_response(),
            };
            answer
                .headers_mut()
                .insert("accept-encoding", "zstd".parse().unwrap());
            answer
        }
    };
    let app = axum::Router::new().route("/v1/sync/push", axum::routing::post(push));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// `count` registrations numbered from `first`.
fn entries(first: i64, count: i64) -> Vec<OutboxEntry> {
    let (device, branch) = (Uuid::now_v7(), Uuid::now_v7());
    (first..first + count)
        .map(|seq| OutboxEntry {
            seq,
            schema_version: SCHEMA_VERSION,
            change: Change {
                entity: Entity::Patient,
                row_id: Uuid::now_v7(),
                branch_id: branch,
                stamp: WireStamp {
                    hlc: 1 << 20,
                    device_id: device,
                },
                fields: [("full_name".to_owned(), json!(format!("Pesakit {seq}")))]
                    .into_iter()
                    .collect(),
                recorded_at: Utc::now(),
            },
            actor: None,
            approver: None,
        })
        .collect()
}

/// The encodings received so far, in order.
fn encodings(received: &Received) -> Vec<Option<String>> {
    received
        .lock()
        .unwrap()
        .iter()
        .map(|(encoding, _)| encoding.clone())
        .collect()
}

#[tokio::test]
async fn pushes_go_compressed_once_the_server_says_it_reads_zstd() {
    let (url, received) = stand_in(Behaviour::Reads).await;
    let client = SyncClient::new(&url, "token").unwrap();
    assert!(!client.compresses_pushes());
    let first = entries(1, 10);
    assert!(serde_json::to_vec(&first).unwrap().len() > COMPRESS_FROM_BYTES);
    assert_eq!(
        client.push_entries(first.clone()).await.unwrap().acked_seq,
        10
    );
    assert!(client.compresses_pushes());
    let second = entries(11, 10);
    assert_eq!(
        client.push_entries(second.clone()).await.unwrap().acked_seq,
        20
    );
    // Too short to gain: plain.
    let third = entries(21, 1);
    assert!(serde_json::to_vec(&third).unwrap().len() < COMPRESS_FROM_BYTES);
    assert_eq!(
        client.push_entries(third.clone()).await.unwrap().acked_seq,
        21
    );

    assert_eq!(encodings(&received), [None, Some("zstd".to_owned()), None]);
    // What arrived compressed is exactly the batch.
    let sent: Vec<Vec<OutboxEntry>> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, request)| request.entries.clone())
        .collect();
    assert_eq!(sent, [first, second, third]);
}

#[tokio::test]
async fn a_compressed_push_refused_on_the_way_is_sent_again_plain_and_so_are_the_later_ones() {
    for behaviour in [Behaviour::ProxyRefuses, Behaviour::Mangled] {
        let (url, received) = stand_in(behaviour).await;
        let client = SyncClient::new(&url, "token").unwrap();
        assert_eq!(
            client.push_entries(entries(1, 10)).await.unwrap().acked_seq,
            10
        );
        assert!(client.compresses_pushes());
        // Sent compressed, refused, sent again plain: the desk sees only the answer.
        let second = entries(11, 10);
        assert_eq!(
            client.push_entries(second.clone()).await.unwrap().acked_seq,
            20
        );
        assert!(!client.compresses_pushes(), "{behaviour:?}");
        // The answers still advertise zstd; the desk goes on plain all the same.
        assert_eq!(
            client
                .push_entries(entries(21, 10))
                .await
                .unwrap()
                .acked_seq,
            30
        );
        assert_eq!(
            encodings(&received),
            [None, Some("zstd".to_owned()), None, None],
            "{behaviour:?}"
        );
        let received = received.lock().unwrap();
        assert_eq!(received[1].1.entries, second);
        assert_eq!(received[2].1.entries, second);
    }
}

#[tokio::test]
async fn a_push_refused_plain_as_well_keeps_compression_on() {
    let (url, received) = stand_in(Behaviour::RefusesAll).await;
    let client = SyncClient::new(&url, "token").unwrap();
    let refused = |answer| matches!(answer, Err(SyncError::Refused { status: 400, ref code, .. }) if code == error_code::BAD_REQUEST);
    assert!(refused(client.push_entries(entries(1, 10)).await));
    assert!(client.compresses_pushes());
    // Compressed and refused, plain and refused: the refusal is the batch's, not the coding's.
    assert!(refused(client.push_entries(entries(1, 10)).await));
    assert!(client.compresses_pushes());
    assert_eq!(encodings(&received), [None, Some("zstd".to_owned()), None]);
}
