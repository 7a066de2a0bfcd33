//! The store against real SQLite files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use kaunter_core::{
    BranchId, DeviceId, IdType, NewPatient, RegistrationForm, SearchQuery, TenantId,
};
use kaunter_protocol::http::{Change, ChangeBody, PatientRecord, PullResponse, PulledChange};
use kaunter_store::{DeskIdentity, KeyMaterial, MemorySecretStore, SecretStore, Store, StoreError};
use uuid::Uuid;

/// Seeded patients: (name, MyKad as typed, phone as typed, E.164).
const SEEDED: &[(&str, &str, &str, &str)] = &[
    (
        "Siti Nurhaliza binti Tarudin",
        "790111-10-5342",
        "012-345 6789",
        "+60123456789",
    ),
    (
        "Muthusamy a/l Ramasamy",
        "650302-08-5011",
        "011-2233 4455",
        "+601122334455",
    ),
    (
        "Tan Mei Ling",
        "881224-14-6248",
        "03-2145 8899",
        "+60321458899",
    ),
    (
        "Awang Kassim bin Jali",
        "920715-13-5127",
        "082-456 789",
        "+6082456789",
    ),
];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
}

fn identity() -> DeskIdentity {
    DeskIdentity {
        tenant_id: TenantId::generate(),
        branch_id: BranchId::generate(),
        device_id: DeviceId::generate(),
        device_name: "Front desk marker 7731".into(),
        server_url: "http://127.0.0.1:1".into(),
        business_name: "Klinik Ujian".into(),
        branch_name: "Shah Alam".into(),
    }
}

fn enrolled_store(path: &Path, secrets: Arc<dyn SecretStore>) -> Store {
    let mut store = Store::open(path, secrets).unwrap();
    store.enrol(identity(), "kt1.token").unwrap();
    store
}

fn patient(name: &str, mykad: &str, phone: &str) -> NewPatient {
    NewPatient::validate(
        &RegistrationForm {
            full_name: name,
            id_type: IdType::MyKad,
            id_number: mykad,
            phone,
            date_of_birth: None,
            sex: None,
        },
        today(),
    )
    .unwrap()
}

fn register_seeded(store: &mut Store) {
    for (name, mykad, phone, _) in SEEDED {
        store
            .register_patient(&patient(name, mykad, phone), Utc::now())
            .unwrap();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Every plaintext form of the seeded personal data that must never reach the disk.
fn forbidden_needles() -> Vec<(String, Vec<u8>)> {
    let mut needles = Vec::new();
    for (name, mykad, phone, e164) in SEEDED {
        let digits: String = mykad.chars().filter(char::is_ascii_digit).collect();
        for text in [*name, *mykad, digits.as_str(), *phone, *e164, &e164[3..]] {
            needles.push((text.to_owned(), text.as_bytes().to_vec()));
            needles.push((format!("{text} (UTF-16)"), utf16le(text)));
        }
        // The first word of each name alone is distinctive enough to catch a leak.
        let first = name.split(' ').next().unwrap();
        needles.push((first.to_owned(), first.as_bytes().to_vec()));
    }
    needles
}

fn assert_no_plaintext(files: &[(&str, Vec<u8>)]) {
    for (file, bytes) in files {
        for (label, needle) in forbidden_needles() {
            assert!(
                !contains(bytes, &needle),
                "{file} contains plaintext {label:?}"
            );
        }
    }
}

#[test]
fn database_and_wal_hold_no_personal_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets);
    register_seeded(&mut store);
    // Searches must not write plaintext anywhere either.
    for (name, mykad, phone, _) in SEEDED {
        assert_eq!(
            store
                .search_patients(&SearchQuery::parse(mykad), 10)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .search_patients(&SearchQuery::parse(phone), 10)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .search_patients(&SearchQuery::parse(name), 10)
                .unwrap()
                .len(),
            1
        );
    }

    let wal_path = dir.path().join("desk.db-wal");
    let db = std::fs::read(&path).unwrap();
    let wal = std::fs::read(&wal_path).unwrap();
    assert!(!wal.is_empty(), "the writes should still be in the WAL");
    // Control: the scan does see what is stored in clear (the desk name), so a miss is real.
    assert!(
        contains(&db, b"Front desk marker 7731") || contains(&wal, b"Front desk marker 7731"),
        "the byte scan cannot see stored text at all"
    );
    assert_no_plaintext(&[("desk.db", db), ("desk.db-wal", wal)]);

    // And after the WAL is folded back into the main file.
    store.checkpoint().unwrap();
    let db = std::fs::read(&path).unwrap();
    assert!(contains(&db, b"Front desk marker 7731"));
    assert_no_plaintext(&[("desk.db after checkpoint", db)]);
}

#[test]
fn search_by_ic_phone_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = enrolled_store(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    register_seeded(&mut store);

    let by_ic = store
        .search_patients(&SearchQuery::parse("790111105342"), 10)
        .unwrap();
    assert_eq!(by_ic.len(), 1);
    assert_eq!(by_ic[0].full_name, "Siti Nurhaliza binti Tarudin");
    assert_eq!(by_ic[0].id_number, "790111-10-5342");
    assert_eq!(by_ic[0].phone.as_deref(), Some("+60123456789"));
    assert_eq!(by_ic[0].date_of_birth, NaiveDate::from_ymd_opt(1979, 1, 11));
    assert_eq!(by_ic[0].sex, Some(kaunter_protocol::Sex::Female));
    assert!(!by_ic[0].synced);

    let by_phone = store
        .search_patients(&SearchQuery::parse("+60 11-2233 4455"), 10)
        .unwrap();
    assert_eq!(by_phone.len(), 1);
    assert_eq!(by_phone[0].full_name, "Muthusamy a/l Ramasamy");

    let by_name = store
        .search_patients(&SearchQuery::parse("mei LING"), 10)
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].full_name, "Tan Mei Ling");

    let partial_ic = store
        .search_patients(&SearchQuery::parse("920715"), 10)
        .unwrap();
    assert_eq!(partial_ic.len(), 1);
    assert_eq!(partial_ic[0].full_name, "Awang Kassim bin Jali");

    assert!(
        store
            .search_patients(&SearchQuery::parse("010101-14-0001"), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_patients(&SearchQuery::parse("nobody"), 10)
            .unwrap()
            .is_empty()
    );

    let all = store.search_patients(&SearchQuery::All, 10).unwrap();
    assert_eq!(all.len(), SEEDED.len());
    assert_eq!(all[0].full_name, "Awang Kassim bin Jali", "newest first");
    assert_eq!(
        store.search_patients(&SearchQuery::All, 2).unwrap().len(),
        2
    );
}

#[test]
fn a_second_registration_of_one_ic_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = enrolled_store(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    let again = store.register_patient(&patient("Ali Abu", "900101145677", ""), Utc::now());
    match again {
        Err(StoreError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].code, "id_number_already_registered");
        }
        other => panic!("expected a field error, got {other:?}"),
    }
    assert_eq!(store.sync_state().unwrap().pending, 1);
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        1
    );
}

#[test]
fn a_ciphertext_copied_to_another_row_fails_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    register_seeded(&mut store);
    drop(store);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let (first, second): (String, String) = raw
        .query_row("SELECT MIN(id), MAX(id) FROM patients", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    raw.execute(
        "UPDATE patients SET id_number = (SELECT id_number FROM patients WHERE id = ?1) WHERE id = ?2",
        [&first, &second],
    )
    .unwrap();
    drop(raw);

    let store = Store::open(&path, secrets).unwrap();
    let result = store.search_patients(&SearchQuery::All, 10);
    assert!(
        matches!(
            result,
            Err(StoreError::Tampered {
                table: "patients",
                column: "id_number"
            })
        ),
        "got {result:?}"
    );
}

#[test]
fn a_missing_or_wrong_key_is_a_clear_error_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    register_seeded(&mut store);
    drop(store);
    let original = secrets.get("data-keys").unwrap().unwrap();

    secrets.remove("data-keys");
    let missing = Store::open(&path, secrets.clone());
    assert!(
        matches!(missing, Err(StoreError::KeyMissing)),
        "got {missing:?}"
    );
    assert!(missing.unwrap_err().to_string().contains("keyring"));
    assert!(
        secrets.get("data-keys").unwrap().is_none(),
        "no key may be invented"
    );

    secrets
        .set("data-keys", &KeyMaterial::generate().unwrap().export())
        .unwrap();
    let wrong = Store::open(&path, secrets.clone());
    assert!(matches!(wrong, Err(StoreError::WrongKey)), "got {wrong:?}");

    secrets.set("data-keys", &original).unwrap();
    let store = Store::open(&path, secrets).unwrap();
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        SEEDED.len()
    );
}

#[test]
fn a_write_and_its_outbox_entry_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    // Make the outbox insert fail after the patient row was written in the same transaction.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER outbox_fails BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    let failed = store.register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now());
    assert!(
        matches!(failed, Err(StoreError::Sqlite(_))),
        "got {failed:?}"
    );
    assert!(
        store
            .search_patients(&SearchQuery::All, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.sync_state().unwrap().pending, 0);
    assert_eq!(
        store.sync_state().unwrap().last_seq,
        0,
        "no sequence number was used"
    );

    raw.execute_batch("DROP TRIGGER outbox_fails;").unwrap();
    store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        1
    );
    assert_eq!(store.pending_batch(10).unwrap()[0].seq, 1);
}

#[test]
fn outbox_entries_are_numbered_acknowledged_and_never_renumbered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    register_seeded(&mut store);

    let batch = store.pending_batch(10).unwrap();
    assert_eq!(
        batch.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    match &batch[0].change.body {
        ChangeBody::PatientUpsert(record) => assert_eq!(record.full_name, SEEDED[0].0),
    }
    assert_eq!(store.pending_batch(2).unwrap().len(), 2);

    store.acknowledge(3).unwrap();
    let state = store.sync_state().unwrap();
    assert_eq!((state.pending, state.acked_seq, state.last_seq), (1, 3, 4));
    // The acknowledged entries are gone, yet the next entry continues the numbering.
    store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    drop(store);
    let mut store = Store::open(&path, secrets).unwrap();
    let seqs: Vec<i64> = store
        .pending_batch(10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [4, 5]);
    assert!(
        store
            .search_patients(&SearchQuery::parse("790111105342"), 1)
            .unwrap()[0]
            .synced
    );

    // An acknowledgement beyond anything this desk made means this file is an old copy.
    assert!(matches!(store.acknowledge(9), Err(StoreError::Corrupt(_))));
    store.acknowledge(5).unwrap();
    assert_eq!(store.sync_state().unwrap().pending, 0);
}

#[test]
fn pulled_changes_apply_except_over_pending_local_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = enrolled_store(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let local = store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    let branch_id = store.identity().unwrap().branch_id.as_uuid();
    let remote_record = |id: Uuid, name: &str, ic: &str| PatientRecord {
        id,
        branch_id,
        full_name: name.into(),
        id_type: kaunter_protocol::IdType::Mykad,
        id_number: ic.into(),
        phone: Some("+60198765432".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1985, 3, 15),
        sex: Some(kaunter_protocol::Sex::Male),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let page = PullResponse {
        changes: vec![
            PulledChange {
                cursor: 7,
                origin_device_id: Uuid::now_v7(),
                change: Change {
                    recorded_at: Utc::now(),
                    body: ChangeBody::PatientUpsert(remote_record(
                        Uuid::now_v7(),
                        "Lim Wei Jie",
                        "850315101235",
                    )),
                },
            },
            PulledChange {
                cursor: 8,
                origin_device_id: Uuid::now_v7(),
                change: Change {
                    recorded_at: Utc::now(),
                    body: ChangeBody::PatientUpsert(remote_record(
                        local.id,
                        "Overwritten",
                        "900101145677",
                    )),
                },
            },
        ],
        next_cursor: 8,
        has_more: false,
    };
    assert_eq!(store.apply_pulled(&page).unwrap(), 1);
    assert_eq!(store.sync_state().unwrap().pull_cursor, 8);
    let lim = store
        .search_patients(&SearchQuery::parse("850315-10-1235"), 10)
        .unwrap();
    assert_eq!(lim.len(), 1);
    assert!(lim[0].synced);
    let ali = store
        .search_patients(&SearchQuery::parse("900101145677"), 10)
        .unwrap();
    assert_eq!(ali[0].full_name, "Ali bin Abu", "pending local edit kept");
    // Re-applying the same page changes nothing and never moves the cursor back.
    store.apply_pulled(&page).unwrap();
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        2
    );
    assert_eq!(store.sync_state().unwrap().pull_cursor, 8);
}

#[test]
fn an_unenrolled_store_refuses_patient_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(
        dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    )
    .unwrap();
    assert!(store.identity().is_none());
    assert!(matches!(
        store.register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now()),
        Err(StoreError::NotEnrolled)
    ));
    assert!(matches!(
        store.search_patients(&SearchQuery::All, 1),
        Err(StoreError::NotEnrolled)
    ));
    store.enrol(identity(), "kt1.x").unwrap();
    assert!(matches!(
        store.enrol(identity(), "kt1.y"),
        Err(StoreError::AlreadyEnrolled)
    ));
    assert_eq!(store.device_token().unwrap().as_str(), "kt1.x");
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
