//! People at the desk, end to end over real HTTP: an ADMIN sets a desk PIN at head office; the
//! desk's next round brings the roster; from then on the desk asks for a sign-in, checks the
//! PIN with the network gone, and the registration that follows reaches the server naming
//! that person. A push naming another business's person is refused on its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{enrolled_store, patient};
use kaunter_core::access::Permission;
use kaunter_protocol::http::{SessionView, SignUpResponse};
use kaunter_store::StoreError;
use kaunter_sync_client::{SyncClient, SyncEngine};
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{ADMIN_PASSWORD, TestDatabase, sign_up_form};
use serde_json::json;

#[tokio::test]
async fn a_person_signs_in_at_the_desk_offline_and_their_registration_names_them() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    let mut business: Vec<SignUpResponse> = Vec::new();
    let mut admins: Vec<SessionView> = Vec::new();
    for slug in ["klinik-pin", "klinik-lain"] {
        let created: SignUpResponse = http
            .post(server.url("/v1/signup"))
            .json(&sign_up_form(
                slug,
                &format!("Klinik {slug}"),
                &format!("admin@{slug}.my"),
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let login = http
            .post(server.url("/v1/auth/login"))
            .json(
                &json!({"business": slug, "email": format!("admin@{slug}.my"),
                          "password": ADMIN_PASSWORD}),
            )
            .send()
            .await
            .unwrap();
        let cookie = login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let view: SessionView = login.json().await.unwrap();
        let weak = http
            .post(server.url("/v1/auth/pin"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &view.csrf_token)
            .json(&json!({"pin": "123456"}))
            .send()
            .await
            .unwrap();
        assert_eq!(weak.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        let set = http
            .post(server.url("/v1/auth/pin"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &view.csrf_token)
            .json(&json!({"pin": "472913"}))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), reqwest::StatusCode::NO_CONTENT);
        business.push(created);
        admins.push(view);
    }
    let (ours, theirs) = (&business[0], &admins[1]);

    let code = admin::create_enrolment_code(
        server.pool(),
        TenantId::from_uuid(ours.tenant_id),
        BranchId::from_uuid(ours.branch_id),
        DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let enrolled = SyncClient::enrol_rotating(&server.base_url, &code, "Kaunter 1")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = enrolled_store(dir.path(), &enrolled, "Kaunter 1", &server.base_url);
    let client = SyncClient::with_credentials(&server.base_url, store.credentials()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let engine = SyncEngine::new(store.clone(), client);
    engine.sync_now(Utc::now).await.unwrap();

    // The roster arrived: the admin of this business only, and a sign-in is now required.
    let (admin_id, staff) = {
        let store = store.lock().unwrap();
        (admins[0].user_id, store.staff().unwrap())
    };
    assert_eq!(staff.len(), 1);
    assert_eq!(staff[0].user_id, admin_id);
    assert_eq!(staff[0].roles, ["ADMIN"]);
    assert!(matches!(
        store.lock().unwrap().require(Permission::PatientsWrite),
        Err(StoreError::SignInRequired)
    ));

    // The network goes: the PIN is checked on the desk alone.
    drop(server);
    {
        let mut store = store.lock().unwrap();
        assert!(matches!(
            store.sign_in(admin_id, "000000"),
            Err(StoreError::WrongPin)
        ));
        store.sign_in(admin_id, "472913").unwrap();
        store.require(Permission::PatientsWrite).unwrap();
        let patient = patient("Aminah binti Ali", "900101-14-5678");
        store.register_patient(&patient, Utc::now()).unwrap();
    }

    // Back online (a new server on the same database): the change names the admin.
    let server = db.spawn_server().await.unwrap();
    let client =
        SyncClient::with_credentials(&server.base_url, store.lock().unwrap().credentials())
            .unwrap();
    let engine = SyncEngine::new(store.clone(), client);
    let report = engine.sync_now(Utc::now).await.unwrap();
    assert_eq!(report.pushed, 1);
    let owner = db.owner_client().await.unwrap();
    let actors: Vec<Option<uuid::Uuid>> = owner
        .query(
            "SELECT actor_id FROM changes WHERE tenant_id = $1 ORDER BY seq",
            &[&ours.tenant_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(actors, [Some(admin_id)]);

    // The ADMIN may refund alone: the server, asking their roles now, takes it.
    store
        .lock()
        .unwrap()
        .record_cash(
            &kaunter_store::NewCashMovement {
                kind: kaunter_protocol::records::CashKind::Refund,
                amount: kaunter_protocol::records::ringgit::parse("12.00").unwrap(),
                patient_id: None,
                note: None,
            },
            Utc::now(),
        )
        .unwrap();
    let report = engine.sync_now(Utc::now).await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0));
    let logged: (Option<uuid::Uuid>, Option<uuid::Uuid>) = {
        let row = owner
            .query_one(
                "SELECT actor_id, approver_id FROM changes WHERE tenant_id = $1 AND entity = 'cash_movement'",
                &[&ours.tenant_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(logged, (Some(admin_id), None));

    // Naming the other business's admin is refused on its own, and nothing is applied.
    let mut entry = store.lock().unwrap().outbox_entry(1).unwrap();
    assert!(entry.is_none(), "acknowledged entries leave the outbox");
    {
        let mut store = store.lock().unwrap();
        let patient = patient("Tan Mei Ling", "881224-14-6248");
        store.register_patient(&patient, Utc::now()).unwrap();
        entry = store.outbox_entry(3).unwrap();
    }
    let mut forged = entry.unwrap();
    forged.actor = Some(theirs.user_id);
    let token = store.lock().unwrap().device_token().unwrap();
    let answer: serde_json::Value = http
        .post(server.url("/v1/sync/push"))
        .bearer_auth(token.as_str())
        .json(&json!({"schema_version": kaunter_protocol::SCHEMA_VERSION, "entries": [forged]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["acked_seq"], json!(3));
    assert_eq!(
        answer["rejected"][0]["code"],
        json!("unknown_actor"),
        "{answer}"
    );
    let applied: i64 = owner
        .query_one(
            "SELECT count(*) FROM changes WHERE tenant_id = $1",
            &[&ours.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        applied, 2,
        "the registration and the refund, not the forged entry"
    );
    drop(server);
    db.drop_db().await.unwrap();
}
