//! A desk with rotating credentials over real HTTP: its device token expires every second,
//! and sync rounds go on regardless because the client renews the pair and keeps it in the
//! desk's secret store; once the desk is revoked, the round fails as unauthorized and the
//! desk's data and outbox stay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{enrolled_store, register};
use kaunter_sync_client::{SyncClient, SyncError, sync_once};
use kaunter_sync_server::AppState;
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};

#[tokio::test]
async fn sync_goes_on_across_expiring_device_tokens() {
    let db = TestDatabase::create().await.unwrap();
    let server = TestServer::start(
        AppState::new(db.app_pool().unwrap()).with_access_token_ttl(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let business = admin::create_business(server.pool(), "Klinik Putar", "Utama", None)
        .await
        .unwrap();
    let code = admin::create_enrolment_code(
        server.pool(),
        business.tenant_id,
        business.branch_id,
        DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let enrolled = SyncClient::enrol_rotating(&server.base_url, &code, "Kaunter 1")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = enrolled_store(dir.path(), &enrolled, "Kaunter 1", &server.base_url);
    let credentials = store.credentials();
    let store = Mutex::new(store);
    let client = SyncClient::with_credentials(&server.base_url, credentials.clone()).unwrap();

    let mut tokens = vec![credentials.device_token().unwrap().to_string()];
    let mut refreshes = vec![credentials.refresh_token().unwrap().unwrap().to_string()];
    for (round, (name, mykad)) in [
        ("Aminah binti Ali", "900101-14-5678"),
        ("Tan Mei Ling", "850505-10-1234"),
        ("Rajesh a/l Kumar", "780312-08-4321"),
    ]
    .into_iter()
    .enumerate()
    {
        register(&store, name, mykad);
        // Past the device token's life: the round renews it on its own.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let report = sync_once(&store, &client).await.unwrap();
        assert_eq!(report.pushed, 1, "round {round}");
        tokens.push(credentials.device_token().unwrap().to_string());
        refreshes.push(credentials.refresh_token().unwrap().unwrap().to_string());
    }
    // Each round renewed the pair, and the desk's store holds the newest one.
    tokens.dedup();
    refreshes.dedup();
    assert_eq!((tokens.len(), refreshes.len()), (4, 4), "{tokens:?}");
    let on_server = admin::sync_status(server.pool(), business.tenant_id)
        .await
        .unwrap();
    assert_eq!(on_server.len(), 1);

    // Revoked: the round fails as unauthorized, the registration waits in the outbox.
    admin::revoke_device(
        server.pool(),
        business.tenant_id,
        kaunter_sync_server::ids::DeviceId::from_uuid(enrolled.device_id),
    )
    .await
    .unwrap();
    register(&store, "Siti Nurhaliza", "790111-01-5555");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let refused = sync_once(&store, &client).await.unwrap_err();
    assert!(matches!(refused, SyncError::Unauthorized), "{refused:?}");
    assert_eq!(store.lock().unwrap().sync_state().unwrap().pending, 1);
    drop(server);
    db.drop_db().await.unwrap();
}
