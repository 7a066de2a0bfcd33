//! The store against real SQLite files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use kaunter_core::{
    BranchId, DeviceId, IdType, NewPatient, RegistrationForm, SearchQuery, TenantId,
};
use kaunter_core::{Hlc, PatientId};
use kaunter_protocol::http::{
    Change, Entity, Fields, PatientRecord, PullResponse, PulledChange, RejectedEntry, WireStamp,
};
use kaunter_store::{DeskIdentity, KeyMaterial, MemorySecretStore, SecretStore, Store, StoreError};
use serde_json::{Value, json};
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
    assert_eq!(batch[0].change.fields["full_name"], json!(SEEDED[0].0));
    assert_eq!(batch[0].change.entity, Entity::Patient);
    let device = store.identity().unwrap().device_id.as_uuid();
    assert!(batch.iter().all(|e| e.change.stamp.device_id == device));
    assert!(
        batch
            .windows(2)
            .all(|w| w[0].change.stamp.hlc < w[1].change.stamp.hlc),
        "each write has a later stamp than the one before"
    );
    assert_eq!(store.pending_batch(2).unwrap().len(), 2);

    store.acknowledge(3, &[]).unwrap();
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
    assert!(matches!(
        store.acknowledge(9, &[]),
        Err(StoreError::Corrupt(_))
    ));
    // So does a batch's answer whose high-water mark is beyond it, even acknowledging only
    // the batch's own entries; nothing is dropped from the outbox.
    assert!(matches!(
        store.acknowledge_through(4, 9, &[]),
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(store.sync_state().unwrap().pending, 2);
    store.acknowledge(5, &[]).unwrap();
    assert_eq!(store.sync_state().unwrap().pending, 0);
}

/// A change made on another desk at `millis` (packed HLC), for `apply_pulled`.
fn remote_change(row_id: Uuid, branch_id: Uuid, millis: u64, fields: Fields) -> Change {
    Change {
        entity: Entity::Patient,
        row_id,
        branch_id,
        stamp: WireStamp {
            hlc: Hlc::new(millis, 0).unwrap().as_u64(),
            device_id: Uuid::from_u128(0xd35c),
        },
        fields,
        recorded_at: Utc::now(),
    }
}

fn page(changes: Vec<Change>, first_cursor: i64) -> PullResponse {
    let changes: Vec<PulledChange> = changes
        .into_iter()
        .zip(first_cursor..)
        .map(|(change, cursor)| PulledChange {
            cursor,
            change,
            created_at: None,
        })
        .collect();
    let next_cursor = changes.last().map_or(first_cursor - 1, |c| c.cursor);
    PullResponse {
        changes,
        next_cursor,
        has_more: false,
        open_conflicts: 0,
        remaining: None,
        checkpoint: None,
        purged_seq: None,
    }
}

fn fields(pairs: &[(&str, Value)]) -> Fields {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

fn now_millis() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap()
}

#[test]
fn pulled_changes_merge_per_field_with_local_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = enrolled_store(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let local = store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    let branch_id = store.identity().unwrap().branch_id.as_uuid();
    let lim = PatientRecord {
        id: Uuid::now_v7(),
        branch_id,
        full_name: "Lim Wei Jie".into(),
        id_type: kaunter_protocol::IdType::Mykad,
        id_number: "850315101235".into(),
        phone: Some("+60198765432".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1985, 3, 15),
        sex: Some(kaunter_protocol::Sex::Male),
    };
    let past = now_millis() - 60_000;
    let future = now_millis() + 60_000;
    let pulled = page(
        vec![
            remote_change(lim.id, branch_id, past, lim.fields()),
            // Older than the local registration: loses the name.
            remote_change(
                local.id,
                branch_id,
                past,
                fields(&[("full_name", json!("Stale"))]),
            ),
            // Newer: wins the phone, which the desk never set.
            remote_change(
                local.id,
                branch_id,
                future,
                fields(&[("phone", json!("+60133334444"))]),
            ),
        ],
        7,
    );
    assert_eq!(store.apply_pulled(&pulled, Utc::now()).unwrap(), 2);
    assert_eq!(store.sync_state().unwrap().pull_cursor, 9);
    let found = store
        .search_patients(&SearchQuery::parse("850315-10-1235"), 10)
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].synced);
    let ali = &store
        .search_patients(&SearchQuery::parse("900101145677"), 10)
        .unwrap()[0];
    assert_eq!(ali.full_name, "Ali bin Abu", "the later local name is kept");
    assert_eq!(
        ali.phone.as_deref(),
        Some("+60133334444"),
        "the later remote phone wins"
    );

    // Re-applying the same page changes nothing and never moves the cursor back.
    assert_eq!(store.apply_pulled(&pulled, Utc::now()).unwrap(), 0);
    assert_eq!(
        store
            .apply_pulled(&page(Vec::new(), 3), Utc::now())
            .unwrap(),
        0
    );
    assert_eq!(store.sync_state().unwrap().pull_cursor, 9);

    // The desk's next write sorts after the remote stamp it saw, though its wall clock is behind.
    store
        .edit_patient(
            PatientId::from_uuid(local.id),
            fields(&[("phone", json!("+60122223333"))]),
            Utc::now(),
        )
        .unwrap();
    let last = store.pending_batch(10).unwrap().pop().unwrap();
    assert!(last.change.stamp.hlc > Hlc::new(future, 0).unwrap().as_u64());
}

#[test]
fn edits_send_only_their_fields_and_deletes_are_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    let ali = store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
    let id = PatientId::from_uuid(ali.id);
    store
        .edit_patient(
            id,
            fields(&[("full_name", json!("Ali bin Abu Bakar"))]),
            Utc::now(),
        )
        .unwrap();
    let edit = store.pending_batch(10).unwrap().pop().unwrap();
    assert_eq!(
        edit.change.fields,
        fields(&[("full_name", json!("Ali bin Abu Bakar"))])
    );

    assert!(matches!(
        store.edit_patient(id, fields(&[("nickname", json!("Ali"))]), Utc::now()),
        Err(StoreError::UnknownField(_))
    ));
    assert!(matches!(
        store.edit_patient(
            PatientId::generate(),
            fields(&[("full_name", json!("X"))]),
            Utc::now()
        ),
        Err(StoreError::NotFound(_))
    ));

    store
        .edit_patient(id, fields(&[("deleted", json!(true))]), Utc::now())
        .unwrap();
    assert!(
        store
            .search_patients(&SearchQuery::All, 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .search_patients(&SearchQuery::parse("900101145677"), 10)
            .unwrap()
            .is_empty()
    );
    // A late edit from another desk, older than the delete, does not bring the row back.
    let branch_id = store.identity().unwrap().branch_id.as_uuid();
    store
        .apply_pulled(
            &page(
                vec![remote_change(
                    ali.id,
                    branch_id,
                    now_millis() - 1_000,
                    fields(&[("full_name", json!("Ali")), ("deleted", json!(false))]),
                )],
                1,
            ),
            Utc::now(),
        )
        .unwrap();
    assert!(
        store
            .search_patients(&SearchQuery::All, 10)
            .unwrap()
            .is_empty()
    );
    // The tombstone survives a restart, and the same IC may be registered anew.
    drop(store);
    let mut store = Store::open(&path, secrets).unwrap();
    let states = store.patient_states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].2["deleted"], json!(true));
    store
        .register_patient(&patient("Ali bin Abu", "900101-14-5677", ""), Utc::now())
        .unwrap();
}

#[test]
fn refused_entries_stay_visible_and_do_not_block_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = enrolled_store(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    register_seeded(&mut store);
    let refusal = RejectedEntry {
        seq: 2,
        code: "validation_failed".into(),
        message: "Some fields are not valid.".into(),
        fields: Vec::new(),
    };
    store.acknowledge(3, &[refusal]).unwrap();
    let state = store.sync_state().unwrap();
    assert_eq!((state.pending, state.rejected), (1, 1));
    let next: Vec<i64> = store
        .pending_batch(10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(next, [4], "the refused entry is not sent again");
    let refused = store.refused_changes().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].seq, refused[0].code.as_str()),
        (2, "validation_failed")
    );
    assert_eq!(refused[0].message, "Some fields are not valid.");
    assert!(refused[0].fields.contains(&"full_name".to_owned()));
    store.acknowledge(4, &[]).unwrap();
    let state = store.sync_state().unwrap();
    assert_eq!((state.pending, state.rejected), (0, 1));
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

/// The blind indexes a download of the whole branch leaves out while it runs.
fn blind_indexes(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index'
             AND name IN ('patients_id_number_bidx', 'patients_phone_bidx')",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_download_from_nothing_builds_its_blind_indexes_at_the_end_and_lookups_work_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    assert_eq!(blind_indexes(&path), 2);
    let branch = store.identity().unwrap().branch_id.as_uuid();
    let remote = |name: &str, ic: &str, phone: &str| {
        let record = PatientRecord {
            id: Uuid::now_v7(),
            branch_id: branch,
            full_name: name.to_owned(),
            id_type: kaunter_protocol::IdType::Mykad,
            id_number: ic.to_owned(),
            phone: Some(phone.to_owned()),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 1, 1),
            sex: None,
        };
        remote_change(record.id, branch, now_millis(), record.fields())
    };

    // The first page of a download from 0, with more to come: the indexes go.
    let mut first = page(
        vec![remote("Siti binti Ahmad", "900101145678", "+60123456789")],
        1,
    );
    first.has_more = true;
    assert_eq!(store.apply_pulled(&first, Utc::now()).unwrap(), 1);
    assert_eq!(blind_indexes(&path), 0);
    // Lookups by IC and phone still find her (by scanning), and a second registration of her
    // IC is still refused.
    for typed in ["900101-14-5678", "012-345 6789"] {
        let found = store
            .search_patients(&SearchQuery::parse(typed), 10)
            .unwrap();
        assert_eq!(found.len(), 1, "{typed}");
    }
    let again = store.register_patient(&patient("Siti Ahmad", "900101145678", ""), Utc::now());
    assert!(matches!(again, Err(StoreError::Invalid(_))), "{again:?}");

    // The app closes half-way: opening the store again builds them.
    drop(store);
    let mut store = Store::open(&path, secrets).unwrap();
    assert_eq!(blind_indexes(&path), 2);

    // A download resumed past 0 keeps them; its last page makes sure they exist.
    let mut second = page(
        vec![remote("Tan Mei Ling", "881224146248", "+60321458899")],
        2,
    );
    second.has_more = true;
    store.apply_pulled(&second, Utc::now()).unwrap();
    assert_eq!(blind_indexes(&path), 2);
    // A download from 0 again (a resync) leaves them out again until its end.
    store.begin_full_resync().unwrap();
    let mut restart = page(
        vec![remote("Awang bin Jali", "920715135127", "+6082456789")],
        3,
    );
    restart.has_more = true;
    store.apply_pulled(&restart, Utc::now()).unwrap();
    assert_eq!(blind_indexes(&path), 0);
    let last = page(vec![], 4);
    store.apply_pulled(&last, Utc::now()).unwrap();
    assert_eq!(blind_indexes(&path), 2);
    assert_eq!(
        store
            .search_patients(&SearchQuery::parse("920715-13-5127"), 10)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn closing_the_store_folds_the_wal_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = enrolled_store(&path, secrets.clone());
    for i in 0..300 {
        let ic = format!("900101{:06}", 140_000 + i);
        store
            .register_patient(&patient(&format!("Pesakit {i}"), &ic, ""), Utc::now())
            .unwrap();
    }
    let wal = dir.path().join("desk.db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    // The commits did not checkpoint (the thread does, off the write path): the WAL holds them.
    assert!(wal_size() > 0);
    drop(store);
    assert_eq!(wal_size(), 0, "the WAL is emptied when the store closes");
    let store = Store::open(&path, secrets).unwrap();
    assert_eq!(
        store
            .search_patients(&SearchQuery::All, 1000)
            .unwrap()
            .len(),
        300
    );
}
