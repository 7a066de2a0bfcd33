//! Patients' clinical records at the desk: only clinical roles read and write them; someone
//! whose role allows it opens one patient's record in an emergency, which is recorded with the
//! reason and lasts until it times out or they sign out; entries are never changed and never
//! plaintext on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use common::{desk, member, register, roster};
use kaunter_core::access::Permission;
use kaunter_protocol::http::Entity;
use kaunter_protocol::ipc::ClinicalAccess;
use kaunter_protocol::records::ClinicalKind;
use kaunter_store::{EMERGENCY_OPENING, MemorySecretStore, Store, StoreError};
use serde_json::Value;
use uuid::Uuid;

fn the_patient(store: &Store) -> Uuid {
    store
        .search_patients(&kaunter_core::SearchQuery::All, 10)
        .unwrap()
        .first()
        .unwrap()
        .id
}

fn field_codes(error: StoreError) -> Vec<String> {
    match error {
        StoreError::InvalidRecord(fields) => fields.into_iter().map(|f| f.field).collect(),
        other => panic!("expected field errors, got {other:?}"),
    }
}

#[test]
fn only_clinical_roles_read_and_write_and_others_open_a_record_only_in_an_emergency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let mut store = desk(&path, Arc::new(MemorySecretStore::new()));
    let daily = [Permission::PatientsRead, Permission::PatientsWrite];
    let doctor = member(
        "Dr Farid Hakim",
        "482915",
        &[
            daily[0],
            daily[1],
            Permission::ClinicalRead,
            Permission::ClinicalWrite,
        ],
    );
    let receptionist = member(
        "Nurul Penyambut",
        "593026",
        &[daily[0], daily[1], Permission::BreakGlass],
    );
    let clerk = member("Ah Kow Kerani", "604137", &daily);
    store
        .replace_staff(&roster(&[&doctor, &receptionist, &clerk]))
        .unwrap();
    store.sign_in(doctor.user_id, "482915").unwrap();
    register(&mut store, "Aminah binti Ali", "900101-14-5678").unwrap();
    let patient = the_patient(&store);
    // Whole seconds: the store keeps times to the microsecond.
    let now = Utc::now().trunc_subsecs(0);

    // The doctor writes; an empty entry and a hand-made emergency opening are refused.
    store
        .add_clinical_entry(patient, ClinicalKind::Allergy, "Penicillin: rash", now)
        .unwrap();
    let empty = store.add_clinical_entry(patient, ClinicalKind::Note, "   ", now);
    assert_eq!(field_codes(empty.unwrap_err()), ["body"]);
    let forged = store.add_clinical_entry(
        patient,
        ClinicalKind::EmergencyAccess,
        "Pretending to open it",
        now,
    );
    assert_eq!(field_codes(forged.unwrap_err()), ["kind"]);
    let seen = store.clinical_record(patient, now).unwrap();
    assert_eq!(seen.access, ClinicalAccess::Clinical);
    assert!(seen.may_write && !seen.may_open_in_emergency);
    assert_eq!(seen.entries.len(), 1);
    assert_eq!(seen.entries[0].body, "Penicillin: rash");
    assert_eq!(
        seen.entries[0].author_name.as_deref(),
        Some("Dr Farid Hakim")
    );
    assert!(!seen.entries[0].synced);

    // A clerk sees nothing of it and may not open it.
    store.sign_in(clerk.user_id, "604137").unwrap();
    let closed = store.clinical_record(patient, now).unwrap();
    assert_eq!(closed.access, ClinicalAccess::Closed);
    assert!(closed.entries.is_empty() && !closed.may_write && !closed.may_open_in_emergency);
    assert!(matches!(
        store.open_clinical_record_in_emergency(patient, "Collapsed at the counter", now),
        Err(StoreError::NotAllowed("clinical.break_glass"))
    ));
    assert!(matches!(
        store.add_clinical_entry(patient, ClinicalKind::Note, "Looks pale", now),
        Err(StoreError::NotAllowed("clinical.write"))
    ));

    // The receptionist may open it in an emergency, with a reason long enough.
    store.sign_in(receptionist.user_id, "593026").unwrap();
    let before = store.clinical_record(patient, now).unwrap();
    assert_eq!(before.access, ClinicalAccess::Closed);
    assert!(before.entries.is_empty() && before.may_open_in_emergency);
    let short = store.open_clinical_record_in_emergency(patient, "urgent", now);
    assert_eq!(field_codes(short.unwrap_err()), ["body"]);
    let opened = store
        .open_clinical_record_in_emergency(patient, "Collapsed at the counter", now)
        .unwrap();
    assert_eq!(opened.access, ClinicalAccess::Emergency);
    let lasts = Duration::from_std(EMERGENCY_OPENING).unwrap();
    assert_eq!(opened.access_until, Some(now + lasts));
    assert!(!opened.may_write);
    let kinds: Vec<ClinicalKind> = opened.entries.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [ClinicalKind::EmergencyAccess, ClinicalKind::Allergy],
        "newest first, the opening itself recorded in the record"
    );
    assert_eq!(opened.entries[0].body, "Collapsed at the counter");
    assert_eq!(
        opened.entries[0].author_name.as_deref(),
        Some("Nurul Penyambut")
    );
    // Reading does not let them write.
    assert!(matches!(
        store.add_clinical_entry(patient, ClinicalKind::Note, "Looks pale", now),
        Err(StoreError::NotAllowed("clinical.write"))
    ));
    // It closes after its time ...
    let later = now + lasts + Duration::seconds(1);
    assert_eq!(
        store.clinical_record(patient, later).unwrap().access,
        ClinicalAccess::Closed
    );
    // ... and when they sign out, even within it; another person signing in meanwhile does
    // not inherit it.
    store.sign_in(clerk.user_id, "604137").unwrap();
    assert_eq!(
        store.clinical_record(patient, now).unwrap().access,
        ClinicalAccess::Closed
    );
    store.sign_in(receptionist.user_id, "593026").unwrap();
    assert_eq!(
        store.clinical_record(patient, now).unwrap().access,
        ClinicalAccess::Emergency
    );
    store.sign_out().unwrap();
    store.sign_in(receptionist.user_id, "593026").unwrap();
    assert_eq!(
        store.clinical_record(patient, now).unwrap().access,
        ClinicalAccess::Closed
    );

    // Every entry is in the outbox naming who wrote it, as actor and as author.
    let pending = store.pending_batch(100).unwrap();
    let clinical: Vec<_> = pending
        .iter()
        .filter(|entry| entry.change.entity == Entity::ClinicalEntry)
        .collect();
    assert_eq!(clinical.len(), 2);
    for (entry, writer) in clinical.iter().zip([&doctor, &receptionist]) {
        assert_eq!(entry.actor, Some(writer.user_id));
        assert_eq!(
            entry.change.fields.get("author_id"),
            Some(&Value::String(writer.user_id.to_string()))
        );
    }
    // An entry is never changed.
    store.sign_in(doctor.user_id, "482915").unwrap();
    let entry_id = clinical[0].change.row_id;
    let edit = store.edit_row(
        Entity::ClinicalEntry,
        entry_id,
        [("body".to_owned(), Value::from("Amoxicillin"))].into(),
        now,
    );
    assert!(matches!(edit, Err(StoreError::LedgerImmutable)));
    assert!(matches!(
        store.clinical_record(Uuid::now_v7(), now),
        Err(StoreError::NotFound(_))
    ));
    drop(store);

    // Clinical text is an envelope on disk, never plaintext, in the file and its WAL.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(dir.path().join("desk.db-wal")).unwrap_or_default());
    for secret in ["Penicillin", "Collapsed at the counter"] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{secret} is in the file"
        );
    }
}

#[test]
fn at_a_desk_nobody_signs_in_to_the_record_is_open_and_entries_name_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    register(&mut store, "Aminah binti Ali", "900101-14-5678").unwrap();
    let patient = the_patient(&store);
    let now = Utc::now();
    store
        .add_clinical_entry(patient, ClinicalKind::Note, "BP 120/80", now)
        .unwrap();
    // Nothing to open in an emergency: the record is open, and no opening is recorded.
    let view = store
        .open_clinical_record_in_emergency(patient, "Collapsed at the counter", now)
        .unwrap();
    assert_eq!(view.access, ClinicalAccess::Clinical);
    assert_eq!(view.entries.len(), 1);
    assert_eq!(view.entries[0].author_name, None);
    let entry = store
        .pending_batch(100)
        .unwrap()
        .into_iter()
        .find(|entry| entry.change.entity == Entity::ClinicalEntry)
        .unwrap();
    assert_eq!(entry.actor, None);
    assert_eq!(entry.change.fields.get("author_id"), Some(&Value::Null));
}

#[test]
fn a_read_only_desk_still_opens_a_record_in_an_emergency_but_takes_no_notes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let doctor = member(
        "Dr Farid Hakim",
        "482915",
        &[
            Permission::PatientsRead,
            Permission::PatientsWrite,
            Permission::ClinicalRead,
            Permission::ClinicalWrite,
        ],
    );
    let receptionist = member(
        "Nurul Penyambut",
        "593026",
        &[Permission::PatientsRead, Permission::BreakGlass],
    );
    store
        .replace_staff(&roster(&[&doctor, &receptionist]))
        .unwrap();
    store.sign_in(doctor.user_id, "482915").unwrap();
    register(&mut store, "Aminah binti Ali", "900101-14-5678").unwrap();
    let patient = the_patient(&store);
    // The subscription ended a day ago: the desk's lease is read-only now.
    let now = Utc::now().trunc_subsecs(0);
    let server = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let issued = now - Duration::days(2);
    store
        .accept_licence(
            &common::sign(&server, &common::lease(&store, issued, 1)),
            now,
        )
        .unwrap();
    assert!(matches!(
        store.add_clinical_entry(patient, ClinicalKind::Note, "BP 120/80", now),
        Err(StoreError::SubscriptionReadOnly)
    ));
    // Reading is never refused, and an emergency opening is the record of a read.
    store.sign_in(receptionist.user_id, "593026").unwrap();
    let opened = store
        .open_clinical_record_in_emergency(patient, "Collapsed at the counter", now)
        .unwrap();
    assert_eq!(opened.access, ClinicalAccess::Emergency);
    assert_eq!(opened.entries[0].kind, ClinicalKind::EmergencyAccess);
    assert!(
        !opened.entries[0].synced,
        "it waits in the outbox to be sent"
    );
}
