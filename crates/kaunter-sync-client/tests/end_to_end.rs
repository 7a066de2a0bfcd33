//! End to end: real desks (encrypted SQLite stores + the real sync client) talking over real
//! HTTP to the real server on an ephemeral port, backed by a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use kaunter_core::{IdType, NewPatient, RegistrationForm, SearchQuery};
use kaunter_store::{DeskIdentity, MemorySecretStore, Store};
use kaunter_sync_client::{SyncClient, SyncError, sync_once};
use kaunter_sync_server::admin::{self, CreatedBusiness, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};

struct Desk {
    store: Mutex<Store>,
    client: SyncClient,
    token: String,
    _dir: tempfile::TempDir,
}

impl Desk {
    async fn enrol(server: &TestServer, business: CreatedBusiness, name: &str) -> Desk {
        let code = admin::create_enrolment_code(
            server.pool(),
            business.tenant_id,
            business.branch_id,
            DEFAULT_ENROLMENT_CODE_TTL,
        )
        .await
        .unwrap();
        let enrolled = SyncClient::enrol(&server.base_url, &code, name)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(
            dir.path().join("desk.db"),
            Arc::new(MemorySecretStore::new()),
        )
        .unwrap();
        store
            .enrol(
                DeskIdentity::from_enrolment(&enrolled, name, &server.base_url),
                &enrolled.device_token,
            )
            .unwrap();
        let client = SyncClient::new(&server.base_url, &enrolled.device_token).unwrap();
        Desk {
            store: Mutex::new(store),
            client,
            token: enrolled.device_token,
            _dir: dir,
        }
    }

    fn register(&self, name: &str, mykad: &str, phone: &str) {
        let patient = NewPatient::validate(
            &RegistrationForm {
                full_name: name,
                id_type: IdType::MyKad,
                id_number: mykad,
                phone,
                date_of_birth: None,
                sex: None,
            },
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        )
        .unwrap();
        self.store
            .lock()
            .unwrap()
            .register_patient(&patient, Utc::now())
            .unwrap();
    }

    fn names_found(&self, query: &str) -> Vec<String> {
        let store = self.store.lock().unwrap();
        store
            .search_patients(&SearchQuery::parse(query), 100)
            .unwrap()
            .into_iter()
            .map(|p| p.full_name)
            .collect()
    }

    fn pending(&self) -> u32 {
        self.store.lock().unwrap().sync_state().unwrap().pending
    }

    async fn sync(&self) -> kaunter_sync_client::SyncReport {
        sync_once(&self.store, &self.client).await.unwrap()
    }
}

async fn count(db: &TestDatabase, sql: &str, tenant: uuid::Uuid) -> i64 {
    let client = db.owner_client().await.unwrap();
    client.query_one(sql, &[&tenant]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_registered_offline_reaches_the_other_desk_and_no_other_business() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let clinic = admin::create_business(server.pool(), "Klinik Sentosa", "Shah Alam", None)
        .await
        .unwrap();
    let other = admin::create_business(server.pool(), "Klinik Lain", "Ipoh", None)
        .await
        .unwrap();
    let desk_a = Desk::enrol(&server, clinic, "Front desk A").await;
    let desk_b = Desk::enrol(&server, clinic, "Front desk B").await;
    let stranger = Desk::enrol(&server, other, "Other business desk").await;

    // Desk A is offline: its server address answers nothing.
    let unreachable = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        drop(socket);
        SyncClient::new(&format!("http://127.0.0.1:{port}"), &desk_a.token).unwrap()
    };
    desk_a.register(
        "Siti Nurhaliza binti Tarudin",
        "790111-10-5342",
        "012-345 6789",
    );
    let offline = sync_once(&desk_a.store, &unreachable).await;
    assert!(
        matches!(&offline, Err(error) if error.is_offline()),
        "got {offline:?}"
    );
    assert_eq!(desk_a.pending(), 1, "the registration waits in the outbox");
    assert_eq!(
        desk_a.names_found("790111105342"),
        ["Siti Nurhaliza binti Tarudin"]
    );

    // The other business registers a patient with the same MyKad: allowed, and separate.
    stranger.register("Someone Else", "790111-10-5342", "019-876 5432");
    assert_eq!(stranger.sync().await.pushed, 1);

    // Back online: A pushes, B pulls.
    let report = desk_a.sync().await;
    assert_eq!(report.pushed, 1);
    assert_eq!(desk_a.pending(), 0);
    assert!(
        desk_b.names_found("790111-10-5342").is_empty(),
        "B has not synced yet"
    );
    let report = desk_b.sync().await;
    assert_eq!(report.applied, 1);
    assert_eq!(
        desk_b.names_found("790111-10-5342"),
        ["Siti Nurhaliza binti Tarudin"]
    );
    assert_eq!(
        desk_b.names_found("+60123456789"),
        ["Siti Nurhaliza binti Tarudin"]
    );
    assert_eq!(
        desk_b.names_found("nurhaliza"),
        ["Siti Nurhaliza binti Tarudin"]
    );

    // The other business's desk never sees the clinic's patient, and the clinic never sees its.
    stranger.sync().await;
    assert_eq!(stranger.names_found(""), ["Someone Else"]);
    assert!(stranger.names_found("Siti").is_empty());
    desk_a.sync().await;
    assert!(desk_a.names_found("Someone").is_empty());
    assert!(desk_b.names_found("+60198765432").is_empty());
    assert_eq!(
        desk_a.names_found("790111105342"),
        ["Siti Nurhaliza binti Tarudin"]
    );

    let per_tenant = "SELECT count(*) FROM patients WHERE tenant_id = $1";
    assert_eq!(count(&db, per_tenant, clinic.tenant_id.as_uuid()).await, 1);
    assert_eq!(count(&db, per_tenant, other.tenant_id.as_uuid()).await, 1);
    drop(server);
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_pushed_twice_is_stored_once() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let clinic = admin::create_business(server.pool(), "Klinik Sentosa", "Shah Alam", None)
        .await
        .unwrap();
    let desk = Desk::enrol(&server, clinic, "Front desk A").await;
    let peer = Desk::enrol(&server, clinic, "Front desk B").await;
    desk.register("Tan Mei Ling", "881224-14-6248", "03-2145 8899");
    desk.register("Awang Kassim bin Jali", "920715-13-5127", "082-456 789");

    let batch = desk.store.lock().unwrap().pending_batch(100).unwrap();
    assert_eq!(batch.len(), 2);
    let first = desk.client.push_entries(batch.clone()).await.unwrap();
    // The answer was "lost": the desk never acknowledged, so it sends the batch again.
    let second = desk.client.push_entries(batch.clone()).await.unwrap();
    assert_eq!(first, second, "a replay gets the same answer");
    assert_eq!(first.acked_seq, 2);
    // And a full round resends it once more before acknowledging.
    assert_eq!(desk.sync().await.pushed, 2);
    assert_eq!(desk.pending(), 0);

    let tenant = clinic.tenant_id.as_uuid();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM patients WHERE tenant_id = $1",
            tenant
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM changes WHERE tenant_id = $1",
            tenant
        )
        .await,
        2
    );
    peer.sync().await;
    assert_eq!(peer.names_found("").len(), 2);

    // A batch that skips a sequence number is refused with what the server expects.
    let mut gap = batch.clone();
    gap[0].seq = 5;
    gap.truncate(1);
    match desk.client.push_entries(gap).await {
        Err(SyncError::Refused {
            status,
            code,
            expected_seq,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str(), expected_seq),
                (409, "sequence_gap", Some(3))
            );
        }
        other => panic!("expected a sequence gap, got {other:?}"),
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM changes WHERE tenant_id = $1",
            tenant
        )
        .await,
        2
    );
    drop(server);
    db.drop_db().await.unwrap();
}

/// Every patient of a desk as (id, fields), deleted ones included, for comparing replicas.
fn states(desk: &Desk) -> Vec<(uuid::Uuid, kaunter_protocol::http::Fields)> {
    desk.store
        .lock()
        .unwrap()
        .patient_states()
        .unwrap()
        .into_iter()
        .map(|(id, _, fields, _)| (id, fields))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_desks_editing_different_fields_offline_both_keep_their_edit() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let clinic = admin::create_business(server.pool(), "Klinik Sentosa", "Shah Alam", None)
        .await
        .unwrap();
    let desk_a = Desk::enrol(&server, clinic, "Front desk A").await;
    let desk_b = Desk::enrol(&server, clinic, "Front desk B").await;
    desk_a.register("Tan Mei Ling", "881224-14-6248", "03-2145 8899");
    desk_a.sync().await;
    desk_b.sync().await;
    let id = states(&desk_b)[0].0;
    let id = kaunter_core::PatientId::from_uuid(id);

    // Both offline: A corrects the name, B the phone, then B (later) also the name.
    let edit = |desk: &Desk, field: &str, value: &str| {
        let fields = [(field.to_owned(), serde_json::json!(value))].into();
        desk.store
            .lock()
            .unwrap()
            .edit_patient(id, fields, Utc::now())
            .unwrap();
    };
    edit(&desk_a, "full_name", "Tan Mei Ling binti Abdullah");
    edit(&desk_b, "phone", "+60177778888");
    // B syncs first; A's older name edit arrives after B's phone edit.
    desk_b.sync().await;
    desk_a.sync().await;
    desk_b.sync().await;

    assert_eq!(states(&desk_a), states(&desk_b), "the desks converge");
    let (_, fields) = &states(&desk_a)[0];
    assert_eq!(fields["full_name"], "Tan Mei Ling binti Abdullah");
    assert_eq!(fields["phone"], "+60177778888");

    // The server holds the same merged row.
    let row = db
        .owner_client()
        .await
        .unwrap()
        .query_one(
            "SELECT full_name, phone FROM patients WHERE tenant_id = $1",
            &[&clinic.tenant_id.as_uuid()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "Tan Mei Ling binti Abdullah");
    assert_eq!(row.get::<_, String>(1), "+60177778888");

    // A deletes; B's stale edit afterwards does not bring the patient back anywhere.
    edit(&desk_b, "full_name", "Tan M. L.");
    {
        let fields = [("deleted".to_owned(), serde_json::json!(true))].into();
        desk_a
            .store
            .lock()
            .unwrap()
            .edit_patient(id, fields, Utc::now())
            .unwrap();
    }
    desk_a.sync().await;
    desk_b.sync().await;
    desk_a.sync().await;
    assert_eq!(states(&desk_a), states(&desk_b));
    assert!(desk_a.names_found("").is_empty());
    assert!(desk_b.names_found("").is_empty());
    drop(server);
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mykad_registered_offline_on_two_desks_becomes_a_conflict_that_a_person_resolves() {
    use kaunter_protocol::http::{ConflictKind, Resolution};

    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let clinic = admin::create_business(server.pool(), "Klinik Sentosa", "Shah Alam", None)
        .await
        .unwrap();
    let other = admin::create_business(server.pool(), "Klinik Lain", "Ipoh", None)
        .await
        .unwrap();
    let desk_a = Desk::enrol(&server, clinic, "Front desk A").await;
    let desk_b = Desk::enrol(&server, clinic, "Front desk B").await;
    let elsewhere = Desk::enrol(&server, other, "Other business").await;

    // Both desks offline register the same person; B also has her phone.
    desk_a.register("Nur Aisyah binti Hassan", "950612-10-5518", "");
    desk_b.register("Nur Aisyah Hassan", "950612-10-5518", "019-876 5432");
    // The same MyKad in another business is that business's own patient, not a conflict.
    elsewhere.register("Nur Aisyah", "950612-10-5518", "");
    elsewhere.sync().await;
    desk_a.sync().await;
    desk_b.sync().await;
    desk_a.sync().await;

    // Nothing was dropped: both records are on every desk of the branch.
    assert_eq!(desk_a.names_found("950612105518").len(), 2);
    let status = |desk: &Desk| {
        desk.store
            .lock()
            .unwrap()
            .sync_state()
            .unwrap()
            .open_conflicts
    };
    assert_eq!((status(&desk_a), status(&desk_b)), (1, 1));
    assert_eq!(status(&elsewhere), 0);
    let open = desk_b.client.conflicts(false).await.unwrap().conflicts;
    assert_eq!(open.len(), 1);
    let conflict = &open[0];
    assert_eq!(conflict.kind, ConflictKind::DuplicateIdNumber);
    assert_eq!(conflict.version_a["full_name"], "Nur Aisyah binti Hassan");
    assert_eq!(conflict.version_b["phone"], "+60198765432");
    assert!(
        elsewhere
            .client
            .conflicts(true)
            .await
            .unwrap()
            .conflicts
            .is_empty(),
        "another business never sees it"
    );
    // Another business cannot resolve it either: to it, the conflict does not exist.
    match elsewhere
        .client
        .resolve_conflict(conflict.conflict_id, Resolution::KeepBoth)
        .await
    {
        Err(SyncError::Refused { status: 404, .. }) => {}
        other => panic!("expected 404, got {other:?}"),
    }

    // A person on desk B merges them: A keeps its name and gains B's phone; B goes.
    let (a, b) = (
        kaunter_core::PatientId::from_uuid(conflict.row_a),
        kaunter_core::PatientId::from_uuid(conflict.row_b),
    );
    let resolved = desk_b
        .client
        .resolve_conflict(conflict.conflict_id, Resolution::MergeIntoA)
        .await
        .unwrap();
    assert_eq!(resolved.resolution, Some(Resolution::MergeIntoA));
    desk_b
        .store
        .lock()
        .unwrap()
        .resolve_duplicate(a, b, Resolution::MergeIntoA, Utc::now())
        .unwrap();
    // Saying it twice is fine; changing one's mind after the fact is refused.
    assert_eq!(
        desk_a
            .client
            .resolve_conflict(conflict.conflict_id, Resolution::MergeIntoA)
            .await
            .unwrap(),
        resolved
    );
    match desk_a
        .client
        .resolve_conflict(conflict.conflict_id, Resolution::KeepB)
        .await
    {
        Err(SyncError::Refused {
            status: 409, code, ..
        }) => {
            assert_eq!(code, "conflict_already_resolved");
        }
        other => panic!("expected 409, got {other:?}"),
    }

    desk_b.sync().await;
    desk_a.sync().await;
    assert_eq!(states(&desk_a), states(&desk_b));
    let found = desk_a.names_found("950612105518");
    assert_eq!(found, ["Nur Aisyah binti Hassan"]);
    let phone = desk_a
        .store
        .lock()
        .unwrap()
        .search_patients(&SearchQuery::parse("950612105518"), 10)
        .unwrap()[0]
        .phone
        .clone();
    assert_eq!(phone.as_deref(), Some("+60198765432"));
    assert_eq!((status(&desk_a), status(&desk_b)), (0, 0));
    assert_eq!(
        desk_a.client.conflicts(true).await.unwrap().conflicts.len(),
        1,
        "the resolved conflict stays on record"
    );
    drop(server);
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_that_missed_a_change_notices_by_the_checkpoint_and_repairs_itself() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let clinic = admin::create_business(server.pool(), "Klinik Sentosa", "Shah Alam", None)
        .await
        .unwrap();
    let desk_a = Desk::enrol(&server, clinic, "Front desk A").await;
    let desk_b = Desk::enrol(&server, clinic, "Front desk B").await;
    desk_a.register("Tan Mei Ling", "881224-14-6248", "");
    desk_a.register("Awang Kassim bin Jali", "920715-13-5127", "");
    desk_a.register("Lim Wei Jie", "850315-10-1235", "");
    desk_a.sync().await;

    // A faulty network or server hands desk B the last page without its middle change.
    let mut page = desk_b.client.pull_page(0, 500, true).await.unwrap();
    assert_eq!(page.changes.len(), 3);
    assert_eq!(page.remaining, Some(3), "asked to count, the server counts");
    let checkpoint = page
        .checkpoint
        .clone()
        .expect("the last page carries a checkpoint");
    assert_eq!(checkpoint.cursor, page.next_cursor);
    page.changes.remove(1);
    desk_b
        .store
        .lock()
        .unwrap()
        .apply_pulled(&page, Utc::now())
        .unwrap();
    assert_eq!(desk_b.names_found("").len(), 2);
    assert_ne!(
        desk_b.store.lock().unwrap().state_digest().unwrap(),
        checkpoint.digest
    );

    // The next round compares digests, downloads the branch again and agrees.
    let report = desk_b.sync().await;
    assert!(report.repaired, "{report:?}");
    assert_eq!(desk_b.names_found("").len(), 3);
    assert_eq!(states(&desk_a), states(&desk_b));
    let digest = |desk: &Desk| desk.store.lock().unwrap().state_digest().unwrap();
    assert_eq!(digest(&desk_a), digest(&desk_b));
    // And a healthy desk is not repaired.
    assert!(!desk_a.sync().await.repaired);
    assert!(!desk_b.sync().await.repaired);
    drop(server);
    db.drop_db().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_office_sees_each_desks_backlog_and_last_sync_and_no_other_business_does() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let business = admin::create_business(server.pool(), "Klinik Status", "Main", None)
        .await
        .unwrap();
    let other = admin::create_business(server.pool(), "Klinik Lain", "Main", None)
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
    let enrolled = SyncClient::enrol(&server.base_url, &code, "Kaunter 1")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    )
    .unwrap();
    store
        .enrol(
            DeskIdentity::from_enrolment(&enrolled, "Kaunter 1", &server.base_url),
            &enrolled.device_token,
        )
        .unwrap();
    let store = Arc::new(Mutex::new(store));
    let client = SyncClient::new(&server.base_url, &enrolled.device_token).unwrap();
    let engine = kaunter_sync_client::SyncEngine::new(
        store.clone(),
        SyncClient::new(&server.base_url, &enrolled.device_token).unwrap(),
    );

    let before = admin::sync_status(server.pool(), business.tenant_id)
        .await
        .unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].device_name, "Kaunter 1");
    assert_eq!((before[0].reported_at, before[0].pending), (None, None));

    engine.sync_now(Utc::now).await.unwrap();
    let after = admin::sync_status(server.pool(), business.tenant_id)
        .await
        .unwrap();
    let desk = &after[0];
    assert!(desk.reported_at.is_some() && desk.last_seen_at.is_some());
    assert_eq!((desk.pending, desk.refused), (Some(0), Some(0)));
    assert!(desk.last_synced_at.is_some());
    assert_eq!(desk.last_error, None);
    assert_eq!(
        desk.schema_version,
        Some(i32::try_from(kaunter_protocol::SCHEMA_VERSION).unwrap())
    );
    assert_eq!(desk.app_version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(!desk.revoked);

    // A backlog and an error as the desk reports them.
    let mut state = store.lock().unwrap().sync_state().unwrap();
    state.pending = 7;
    state.last_error = Some("x".repeat(800));
    client
        .report_status(&kaunter_sync_client::status_report(&state))
        .await
        .unwrap();
    let reported = &admin::sync_status(server.pool(), business.tenant_id)
        .await
        .unwrap()[0];
    assert_eq!(reported.pending, Some(7));
    assert_eq!(reported.last_error.as_ref().map(String::len), Some(500));

    // Another business sees only its own desks (none).
    assert!(
        admin::sync_status(server.pool(), other.tenant_id)
            .await
            .unwrap()
            .is_empty()
    );
    drop(engine);
    drop(server);
    db.drop_db().await.unwrap();
}
