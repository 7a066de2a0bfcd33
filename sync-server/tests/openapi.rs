//! The OpenAPI document: the server serves exactly what `openapi::document` builds, and the
//! committed copy (`sync-server/openapi.json`, for reviewers and API clients) is current.
//! `KAUNTER_BLESS=1 cargo test -p kaunter-sync-server --test openapi` rewrites the copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kaunter_sync_server::openapi;
use kaunter_sync_server::test_support::TestDatabase;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_document_is_current() {
    let built = serde_json::to_string_pretty(&openapi::document()).unwrap() + "\n";
    if std::env::var_os("KAUNTER_BLESS").is_some() {
        std::fs::write(COMMITTED, &built).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == built,
        "sync-server/openapi.json is stale: run KAUNTER_BLESS=1 cargo test -p kaunter-sync-server --test openapi"
    );
}

#[tokio::test]
async fn the_server_serves_the_document() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let served: serde_json::Value = reqwest::get(server.url("/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, openapi::document());
    assert_eq!(served["openapi"], "3.0.3");
    assert!(served["paths"]["/v1/sync/push"]["post"]["requestBody"].is_object());
    drop(server);
    db.drop_db().await.unwrap();
}
