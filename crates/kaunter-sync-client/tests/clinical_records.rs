//! Clinical records end to end over real HTTP: a clinic's ADMIN writes an allergy at one desk;
//! a Receptionist, whose role does not read clinical records, opens the record in an emergency
//! with a reason; both entries reach the sibling desk (and no other business, and no desk too
//! old to know them), the server refuses an entry whose writer may not write it, and head
//! office reviews the emergency opening once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{clinic_with_admin_pin, enrolled_store, log_in, patient};
use kaunter_protocol::http::{Entity, error_code};
use kaunter_protocol::ipc::ClinicalAccess;
use kaunter_protocol::records::ClinicalKind;
use kaunter_store::Store;
use kaunter_sync_client::{SyncClient, SyncEngine};
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const RECEPTIONIST_PASSWORD: &str = "bunga raya kembang pagi";

async fn desk(
    server: &TestServer,
    tenant: Uuid,
    branch: Uuid,
    dir: &std::path::Path,
    name: &str,
) -> (Arc<Mutex<Store>>, SyncEngine) {
    let code = admin::create_enrolment_code(
        server.pool(),
        TenantId::from_uuid(tenant),
        BranchId::from_uuid(branch),
        DEFAULT_ENROLMENT_CODE_TTL,
    )
    .await
    .unwrap();
    let enrolled = SyncClient::enrol_rotating(&server.base_url, &code, name)
        .await
        .unwrap();
    let store = enrolled_store(dir, &enrolled, name, &server.base_url);
    let client = SyncClient::with_credentials(&server.base_url, store.credentials()).unwrap();
    let store = Arc::new(Mutex::new(store));
    let engine = SyncEngine::new(store.clone(), client);
    (store, engine)
}

#[tokio::test]
async fn clinical_entries_sync_to_their_branch_and_emergency_openings_are_reviewed() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let http = reqwest::Client::new();
    let (clinic, admin) = clinic_with_admin_pin(&http, &server, "klinik-rekod", "472913").await;
    let (_other, other_admin) =
        clinic_with_admin_pin(&http, &server, "klinik-jiran", "583024").await;

    // A Receptionist with a desk PIN and a password (head office's invitation flow is tested
    // elsewhere; here the person is simply there).
    let receptionist = Uuid::now_v7();
    let owner = db.owner_client().await.unwrap();
    owner
        .execute(
            "INSERT INTO users (tenant_id, user_id, email, email_key, name, status, password_hash,
                 pin_hash)
             VALUES ($1, $2, 'nurul@klinik-rekod.my', 'nurul@klinik-rekod.my', 'Nurul Penyambut',
                     'ACTIVE', $3, $4)",
            &[
                &clinic.tenant_id,
                &receptionist,
                &kaunter_sync_server::password::hash(RECEPTIONIST_PASSWORD).unwrap(),
                &kaunter_sync_server::password::hash("593026").unwrap(),
            ],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO user_roles (tenant_id, user_id, role_id)
             SELECT tenant_id, $2, role_id FROM roles WHERE tenant_id = $1 AND name = 'Receptionist'",
            &[&clinic.tenant_id, &receptionist],
        )
        .await
        .unwrap();

    let (dir1, dir2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (desk1, engine1) = desk(
        &server,
        clinic.tenant_id,
        clinic.branch_id,
        dir1.path(),
        "Kaunter 1",
    )
    .await;
    let (desk2, engine2) = desk(
        &server,
        clinic.tenant_id,
        clinic.branch_id,
        dir2.path(),
        "Kaunter 2",
    )
    .await;
    engine1.sync_now(Utc::now).await.unwrap();

    // At desk 1: the ADMIN registers a patient and writes an allergy; the Receptionist, who
    // cannot see it, opens the record in an emergency.
    let patient_id = {
        let mut store = desk1.lock().unwrap();
        store.sign_in(admin.view.user_id, "472913").unwrap();
        let registered = store
            .register_patient(&patient("Aminah binti Ali", "900101-14-5678"), Utc::now())
            .unwrap();
        store
            .add_clinical_entry(
                registered.id,
                ClinicalKind::Allergy,
                "Penicillin: rash",
                Utc::now(),
            )
            .unwrap();
        store.sign_in(receptionist, "593026").unwrap();
        let closed = store.clinical_record(registered.id, Utc::now()).unwrap();
        assert_eq!(closed.access, ClinicalAccess::Closed);
        assert!(closed.entries.is_empty());
        let opened = store
            .open_clinical_record_in_emergency(
                registered.id,
                "Collapsed at the counter, unconscious",
                Utc::now(),
            )
            .unwrap();
        assert_eq!(opened.entries.len(), 2);
        registered.id
    };
    let report = engine1.sync_now(Utc::now).await.unwrap();
    assert_eq!((report.pushed, report.rejected), (3, 0));

    // Desk 2 gets both entries, with their authors, and its digest agrees with the server's.
    let report = engine2.sync_now(Utc::now).await.unwrap();
    assert!(!report.repaired);
    {
        let mut store = desk2.lock().unwrap();
        store.sign_in(admin.view.user_id, "472913").unwrap();
        let record = store.clinical_record(patient_id, Utc::now()).unwrap();
        let seen: Vec<(ClinicalKind, &str, Option<&str>)> = record
            .entries
            .iter()
            .map(|e| (e.kind, e.body.as_str(), e.author_name.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    ClinicalKind::EmergencyAccess,
                    "Collapsed at the counter, unconscious",
                    Some("Nurul Penyambut")
                ),
                (
                    ClinicalKind::Allergy,
                    "Penicillin: rash",
                    Some("Pentadbir Klinik klinik-rekod")
                ),
            ]
        );
        assert!(record.entries.iter().all(|e| e.synced));
    }

    // A desk of schema 4 is not sent clinical entries.
    let token = desk2.lock().unwrap().device_token().unwrap();
    let old: Value = http
        .get(server.url("/v1/sync/pull?cursor=0&schema_version=4"))
        .bearer_auth(token.as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entities: Vec<&str> = old["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["change"]["entity"].as_str().unwrap())
        .collect();
    assert!(entities.contains(&"patient"), "{entities:?}");
    assert!(!entities.contains(&"clinical_entry"), "{entities:?}");

    // The server refuses a note by the Receptionist, and one naming another author, alone.
    let mut note = {
        let mut store = desk1.lock().unwrap();
        store.sign_in(admin.view.user_id, "472913").unwrap();
        store
            .add_clinical_entry(patient_id, ClinicalKind::Note, "BP 120/80", Utc::now())
            .unwrap();
        store.pending_batch(10).unwrap().remove(0)
    };
    assert_eq!(note.change.entity, Entity::ClinicalEntry);
    // The ADMIN's note, pushed as the Receptionist's; and another naming the Receptionist as
    // the author of the ADMIN's write.
    let mut by_other = note.clone();
    by_other.seq += 1;
    by_other.change.row_id = Uuid::now_v7();
    by_other.change.fields.insert(
        "author_id".to_owned(),
        Value::String(receptionist.to_string()),
    );
    note.actor = Some(receptionist);
    note.change.fields.insert(
        "author_id".to_owned(),
        Value::String(receptionist.to_string()),
    );
    let token = desk1.lock().unwrap().device_token().unwrap();
    let answer: Value = http
        .post(server.url("/v1/sync/push"))
        .bearer_auth(token.as_str())
        .json(&json!({"schema_version": kaunter_protocol::SCHEMA_VERSION,
                      "entries": [note, by_other]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [error_code::FORBIDDEN, error_code::FORBIDDEN],
        "{answer}"
    );
    let stored: i64 = owner
        .query_one(
            "SELECT count(*) FROM clinical_entries WHERE tenant_id = $1",
            &[&clinic.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);

    // Head office: the opening waits for review, naming the patient, the person and the reason.
    let list = |who: &common::HeadOffice, query: &'static str| {
        let request = http
            .get(server.url(&format!("/v1/emergency-access{query}")))
            .header("cookie", &who.cookie);
        async move { request.send().await.unwrap() }
    };
    let pending: Value = list(&admin, "").await.json().await.unwrap();
    assert_eq!(pending["pending"], json!(1));
    let opening = &pending["openings"][0];
    assert_eq!(opening["patient_name"], json!("Aminah binti Ali"));
    assert_eq!(opening["opened_by_name"], json!("Nurul Penyambut"));
    assert_eq!(
        opening["reason"],
        json!("Collapsed at the counter, unconscious")
    );
    assert_eq!(opening["review"], Value::Null);
    let entry_id = opening["entry_id"].as_str().unwrap().to_owned();

    // Only someone with access.review sees the list; another business sees nothing of it.
    let nurul = log_in(
        &http,
        &server,
        "klinik-rekod",
        "nurul@klinik-rekod.my",
        RECEPTIONIST_PASSWORD,
    )
    .await;
    assert_eq!(list(&nurul, "").await.status(), StatusCode::FORBIDDEN);
    let theirs: Value = list(&other_admin, "?state=all").await.json().await.unwrap();
    assert_eq!(theirs, json!({"openings": [], "pending": 0}));
    let review = |who: &common::HeadOffice, body: Value| {
        let request = http
            .post(server.url("/v1/emergency-access/review"))
            .header("cookie", &who.cookie)
            .header("x-csrf-token", &who.view.csrf_token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let body = json!({"entry_id": entry_id, "outcome": "justified", "note": "Ambulance called"});
    assert_eq!(
        review(&other_admin, body.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
    let missing_csrf = http
        .post(server.url("/v1/emergency-access/review"))
        .header("cookie", &admin.cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(missing_csrf.status(), StatusCode::FORBIDDEN);

    // Reviewed once; a second review is refused and the first stands.
    let reviewed = review(&admin, body.clone()).await;
    assert_eq!(reviewed.status(), StatusCode::OK);
    let reviewed: Value = reviewed.json().await.unwrap();
    assert_eq!(reviewed["review"]["outcome"], json!("justified"));
    assert_eq!(reviewed["review"]["reviewed_by"], json!(admin.view.user_id));
    let again = review(
        &admin,
        json!({"entry_id": entry_id, "outcome": "not_justified"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["code"], json!(error_code::ALREADY_REVIEWED));
    let pending: Value = list(&admin, "").await.json().await.unwrap();
    assert_eq!(pending, json!({"openings": [], "pending": 0}));
    let all: Value = list(&admin, "?state=all").await.json().await.unwrap();
    assert_eq!(
        all["openings"][0]["review"]["note"],
        json!("Ambulance called")
    );
    // An allergy is not an emergency opening: it cannot be reviewed.
    let allergy: Uuid = owner
        .query_one(
            "SELECT entry_id FROM clinical_entries WHERE tenant_id = $1 AND kind = 'allergy'",
            &[&clinic.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        review(&admin, json!({"entry_id": allergy, "outcome": "justified"}))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}
