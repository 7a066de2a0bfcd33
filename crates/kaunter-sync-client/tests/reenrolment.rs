//! A desk head office removed keeps its data and its outbox, and is reconnected with a new
//! enrolment code of its own branch, over real HTTP with the real server and a real store:
//! - while removed, its rounds fail as shut out and what it writes waits;
//! - only the reconnect code head office issued for it reconnects it: not a plain code, not
//!   another business's, and no reconnect code is issued for a desk that was not removed; its
//!   own code enrols no new desk, and is refused (not used up) when the server holds more of
//!   the desk's changes than it wrote;
//! - reconnected under its own device id, it pushes what waited exactly once (its numbering
//!   continues), and its old refresh token stays dead without shutting it out again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{enrolled_store, register};
use kaunter_protocol::http::error_code;
use kaunter_sync_client::{SyncClient, SyncEngine, SyncError};
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, DeviceId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use serde_json::json;

async fn code(server: &TestServer, tenant: TenantId, branch: BranchId) -> String {
    admin::create_enrolment_code(server.pool(), tenant, branch, DEFAULT_ENROLMENT_CODE_TTL)
        .await
        .unwrap()
}

fn refused_code(result: Result<impl std::fmt::Debug, SyncError>) -> String {
    match result {
        Err(SyncError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_removed_desk_reconnects_with_a_new_code_and_loses_nothing() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let pool = server.pool();
    let ours = admin::create_business(pool, "Klinik Sambung", "Utama", None)
        .await
        .unwrap();
    let theirs = admin::create_business(pool, "Klinik Lain", "Utama", None)
        .await
        .unwrap();

    let first_code = code(&server, ours.tenant_id, ours.branch_id).await;
    let enrolled = SyncClient::enrol_rotating(&server.base_url, &first_code, "Kaunter 1")
        .await
        .unwrap();
    let old_refresh = enrolled.refresh_token.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = enrolled_store(dir.path(), &enrolled, "Kaunter 1", &server.base_url);
    let client = SyncClient::with_credentials(&server.base_url, store.credentials()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let engine = SyncEngine::new(store.clone(), client);
    register(&store, "Aminah binti Ali", "900101-14-5678");
    assert_eq!(engine.sync_now(Utc::now).await.unwrap().pushed, 1);
    assert!(!engine.live_status().shut_out);

    // Head office removes the desk. It keeps working offline; its rounds are shut out.
    let device = DeviceId::from_uuid(enrolled.device_id);
    admin::revoke_device(pool, ours.tenant_id, device)
        .await
        .unwrap();
    register(&store, "Tan Mei Ling", "881224-14-6248");
    let shut_out = engine.sync_now(Utc::now).await.unwrap_err();
    assert!(shut_out.is_shut_out(), "{shut_out:?}");
    assert!(engine.live_status().shut_out);
    assert_eq!(store.lock().unwrap().sync_state().unwrap().pending, 1);

    // A plain enrolment code does not reconnect it, even of its own branch.
    let plain = code(&server, ours.tenant_id, ours.branch_id).await;
    let last_seq = store.lock().unwrap().sync_state().unwrap().last_seq;
    let answer = SyncClient::reenrol(
        &server.base_url,
        &plain,
        "Kaunter 1",
        enrolled.device_id,
        last_seq,
    )
    .await;
    assert_eq!(refused_code(answer), error_code::DEVICE_NOT_REPLACEABLE);
    // No reconnect code is issued for a desk that was not removed.
    let sibling_code = code(&server, ours.tenant_id, ours.branch_id).await;
    let sibling = SyncClient::enrol(&server.base_url, &sibling_code, "Kaunter 2")
        .await
        .unwrap();
    assert!(matches!(
        admin::create_reconnect_code(
            pool,
            ours.tenant_id,
            DeviceId::from_uuid(sibling.device_id),
            DEFAULT_ENROLMENT_CODE_TTL
        )
        .await,
        Err(kaunter_sync_server::error::Error::DeviceNotReplaceable)
    ));
    // Another business's reconnect code (for its own removed desk) does not fit this desk.
    let their_code = code(&server, theirs.tenant_id, theirs.branch_id).await;
    let their_desk = SyncClient::enrol(&server.base_url, &their_code, "Lain 1")
        .await
        .unwrap();
    admin::revoke_device(
        pool,
        theirs.tenant_id,
        DeviceId::from_uuid(their_desk.device_id),
    )
    .await
    .unwrap();
    let their_reconnect = admin::create_reconnect_code(
        pool,
        theirs.tenant_id,
        DeviceId::from_uuid(their_desk.device_id),
        DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let answer = SyncClient::reenrol(
        &server.base_url,
        &their_reconnect,
        "Kaunter 1",
        enrolled.device_id,
        last_seq,
    )
    .await;
    assert_eq!(refused_code(answer), error_code::DEVICE_NOT_REPLACEABLE);

    // This desk's reconnect code: not for a new desk, nor for a desk that wrote less than the
    // server holds under its name (a copy wrote the rest); neither refusal uses the code up.
    let reconnect =
        admin::create_reconnect_code(pool, ours.tenant_id, device, DEFAULT_ENROLMENT_CODE_TTL)
            .await
            .unwrap();
    let as_new = SyncClient::enrol_rotating(&server.base_url, &reconnect, "Kaunter 9").await;
    assert_eq!(refused_code(as_new), error_code::DEVICE_NOT_REPLACEABLE);
    let behind = SyncClient::reenrol(
        &server.base_url,
        &reconnect,
        "Kaunter 1",
        enrolled.device_id,
        0,
    )
    .await;
    assert_eq!(refused_code(behind), error_code::DEVICE_WRITTEN_ELSEWHERE);

    // The right code: the same desk, new credentials, nothing lost.
    let again = SyncClient::reenrol(
        &server.base_url,
        &reconnect,
        "Kaunter 1",
        enrolled.device_id,
        last_seq,
    )
    .await
    .unwrap();
    assert_eq!(again.device_id, enrolled.device_id);
    {
        let mut store = store.lock().unwrap();
        store
            .reenrol(
                &again,
                &again.device_token,
                again.refresh_token.as_deref().unwrap(),
            )
            .unwrap();
    }
    engine.client().use_token(&again.device_token);
    let report = engine.sync_now(Utc::now).await.unwrap();
    assert_eq!(report.pushed, 1);
    assert!(!engine.live_status().shut_out);
    assert_eq!(store.lock().unwrap().sync_state().unwrap().pending, 0);
    let owner = db.owner_client().await.unwrap();
    let logged: Vec<i64> = owner
        .query(
            "SELECT device_seq FROM changes WHERE tenant_id = $1 AND device_id = $2
             ORDER BY device_seq",
            &[&ours.tenant_id.as_uuid(), &enrolled.device_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        logged,
        [1, 2],
        "each write applied once, numbering continued"
    );

    // The old refresh token is dead, and presenting it does not shut the desk out again.
    let http = reqwest::Client::new();
    let stale = http
        .post(server.url("/v1/devices/refresh"))
        .json(&json!({ "refresh_token": old_refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), reqwest::StatusCode::UNAUTHORIZED);
    register(&store, "Lim Ah Kow", "750505-08-5013");
    assert_eq!(engine.sync_now(Utc::now).await.unwrap().pushed, 1);

    // The store takes new credentials only for itself.
    let mut elsewhere = again.clone();
    elsewhere.device_id = sibling.device_id;
    assert!(matches!(
        store.lock().unwrap().reenrol(&elsewhere, "t", "r"),
        Err(kaunter_store::StoreError::NotThisDesk)
    ));
}
