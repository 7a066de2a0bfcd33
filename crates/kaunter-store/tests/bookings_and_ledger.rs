//! Bookings, the cash ledger, and the desk's side of the tombstone horizon, against real SQLite
//! files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use kaunter_core::{BranchId, DeviceId, Hlc, TenantId};
use kaunter_protocol::http::{
    Change, DELETED_FIELD, Entity, PullResponse, PulledChange, RejectedEntry, WireStamp, error_code,
};
use kaunter_protocol::records::{CashKind, ringgit};
use kaunter_store::{
    DeskIdentity, MemorySecretStore, NewBooking, NewCashMovement, SecretStore, Store, StoreError,
};
use serde_json::json;
use uuid::Uuid;

fn store(dir: &tempfile::TempDir) -> Store {
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let mut store = Store::open(dir.path().join("desk.db"), secrets).unwrap();
    store
        .enrol(
            DeskIdentity {
                tenant_id: TenantId::generate(),
                branch_id: BranchId::generate(),
                device_id: DeviceId::generate(),
                device_name: "Desk".into(),
                server_url: "http://127.0.0.1:1".into(),
                business_name: "Klinik Ujian".into(),
                branch_name: "Ipoh".into(),
            },
            "kt1.token",
        )
        .unwrap();
    store
}

fn at(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, minute, 0).unwrap()
}

fn booking(practitioner: Uuid, from: (u32, u32), to: (u32, u32)) -> NewBooking {
    NewBooking {
        patient_id: Uuid::now_v7(),
        practitioner_id: practitioner,
        starts_at: at(from.0, from.1),
        ends_at: at(to.0, to.1),
        note: Some("Sakit kepala berulang".to_owned()),
    }
}

fn codes(error: StoreError) -> Vec<(String, String)> {
    match error {
        StoreError::InvalidRecord(errors) => {
            errors.into_iter().map(|e| (e.field, e.code)).collect()
        }
        other => panic!("expected field errors, got {other:?}"),
    }
}

fn page(changes: Vec<(i64, Change)>, purged_seq: i64, last: bool) -> PullResponse {
    let next_cursor = changes.last().map_or(0, |(cursor, _)| *cursor);
    PullResponse {
        changes: changes
            .into_iter()
            .map(|(cursor, change)| PulledChange {
                cursor,
                change,
                created_at: None,
            })
            .collect(),
        next_cursor,
        has_more: !last,
        open_conflicts: 0,
        remaining: None,
        checkpoint: last.then(|| kaunter_protocol::http::Checkpoint {
            cursor: next_cursor,
            digest: String::new(),
        }),
        purged_seq: Some(purged_seq),
    }
}

/// This desk's own outbox entries as the server would hand them back.
fn pulled_back(store: &Store, first_cursor: i64) -> Vec<(i64, Change)> {
    store
        .pending_batch(100)
        .unwrap()
        .into_iter()
        .zip(first_cursor..)
        .map(|(entry, cursor)| (cursor, entry.change))
        .collect()
}

#[test]
fn a_practitioner_is_not_booked_twice_on_one_desk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let doctor = Uuid::now_v7();
    let first = store
        .book_appointment(&booking(doctor, (9, 0), (9, 30)), Utc::now())
        .unwrap();
    let clash = store
        .book_appointment(&booking(doctor, (9, 15), (9, 45)), Utc::now())
        .unwrap_err();
    assert_eq!(
        codes(clash),
        [("starts_at".to_owned(), "practitioner_busy".to_owned())]
    );
    // Back to back, or another practitioner: fine.
    store
        .book_appointment(&booking(doctor, (9, 30), (10, 0)), Utc::now())
        .unwrap();
    store
        .book_appointment(&booking(Uuid::now_v7(), (9, 0), (9, 30)), Utc::now())
        .unwrap();
    let backwards = store
        .book_appointment(&booking(doctor, (11, 0), (10, 0)), Utc::now())
        .unwrap_err();
    assert_eq!(
        codes(backwards),
        [("ends_at".to_owned(), "invalid".to_owned())]
    );
    assert_eq!(
        store.sync_state().unwrap().pending,
        3,
        "refusals write nothing"
    );

    // Cancelling the first frees its slot; moving a booking sends start and end together.
    store
        .edit_row(
            Entity::Appointment,
            first.id,
            [("status".to_owned(), json!("cancelled"))].into(),
            Utc::now(),
        )
        .unwrap();
    let moved = store
        .book_appointment(&booking(doctor, (8, 0), (8, 30)), Utc::now())
        .unwrap();
    store
        .edit_row(
            Entity::Appointment,
            moved.id,
            [("starts_at".to_owned(), json!(at(8, 15)))].into(),
            Utc::now(),
        )
        .unwrap();
    let last = store.pending_batch(100).unwrap().pop().unwrap();
    assert_eq!(
        last.change.fields["ends_at"],
        json!(at(8, 30)),
        "the end travels too"
    );
    store
        .edit_row(
            Entity::Appointment,
            moved.id,
            [
                ("starts_at".to_owned(), json!(at(9, 0))),
                ("ends_at".to_owned(), json!(at(9, 30))),
            ]
            .into(),
            Utc::now(),
        )
        .unwrap();
    let last = store.pending_batch(100).unwrap().pop().unwrap();
    let sent: Vec<&String> = last.change.fields.keys().collect();
    assert_eq!(sent, ["ends_at", "starts_at"]);

    let day = store.appointments_between(at(0, 0), at(23, 59)).unwrap();
    let starts: Vec<_> = day
        .iter()
        .map(|b| (b.starts_at, b.status.as_str()))
        .collect();
    assert_eq!(
        starts,
        [
            (at(9, 0), "cancelled"),
            (at(9, 0), "booked"),
            (at(9, 0), "booked"),
            (at(9, 30), "booked"),
        ]
    );
    // The note is clinical: not in the file as plain text.
    store.checkpoint().unwrap();
    let bytes = std::fs::read(dir.path().join("desk.db")).unwrap();
    assert!(!bytes.windows(10).any(|w| w == b"Sakit kepa"));
}

#[test]
fn the_drawer_balance_is_derived_from_entries_never_edited() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let entry = |kind, amount: &str| NewCashMovement {
        kind,
        amount: ringgit::parse(amount).unwrap(),
        patient_id: None,
        note: None,
    };
    store
        .record_cash(&entry(CashKind::FloatIn, "100.00"), Utc::now())
        .unwrap();
    let paid = store
        .record_cash(&entry(CashKind::Payment, "35.50"), Utc::now())
        .unwrap();
    store
        .record_cash(&entry(CashKind::PayOut, "20.00"), Utc::now())
        .unwrap();
    assert_eq!(store.cash_balance_sen().unwrap(), 10_000 + 3_550 - 2_000);
    assert!(matches!(
        store.edit_row(
            Entity::CashMovement,
            paid.id,
            [("amount".to_owned(), json!("3.55"))].into(),
            Utc::now()
        ),
        Err(StoreError::LedgerImmutable)
    ));
    let zero = store
        .record_cash(&entry(CashKind::Payment, "0.00"), Utc::now())
        .unwrap_err();
    assert_eq!(codes(zero), [("amount".to_owned(), "invalid".to_owned())]);

    // Another desk's entries arrive and count; this desk's own, pulled back, count once.
    let mut changes = pulled_back(&store, 1);
    changes.push((
        4,
        Change {
            entity: Entity::CashMovement,
            row_id: Uuid::now_v7(),
            branch_id: store.identity().unwrap().branch_id.as_uuid(),
            stamp: WireStamp {
                hlc: Hlc::new(1, 0).unwrap().as_u64(),
                device_id: Uuid::now_v7(),
            },
            fields: [
                ("kind".to_owned(), json!("refund")),
                ("amount".to_owned(), json!("5.00")),
                ("patient_id".to_owned(), json!(null)),
                ("note".to_owned(), json!(null)),
            ]
            .into(),
            recorded_at: Utc::now(),
        },
    ));
    store.acknowledge(3, &[]).unwrap();
    store
        .apply_pulled(&page(changes, 0, true), Utc::now())
        .unwrap();
    assert_eq!(store.cash_balance_sen().unwrap(), 11_550 - 500);
}

#[test]
fn purged_tombstones_leave_the_desk_and_a_resync_keeps_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let doctor = Uuid::now_v7();
    let gone = store
        .book_appointment(&booking(doctor, (9, 0), (9, 30)), Utc::now())
        .unwrap();
    let kept = store
        .book_appointment(&booking(doctor, (10, 0), (10, 30)), Utc::now())
        .unwrap();
    store
        .edit_row(
            Entity::Appointment,
            gone.id,
            [(DELETED_FIELD.to_owned(), json!(true))].into(),
            Utc::now(),
        )
        .unwrap();
    // Pushed and pulled back: cursors 1, 2, 3.
    let changes = pulled_back(&store, 1);
    store.acknowledge(3, &[]).unwrap();
    store
        .apply_pulled(&page(changes, 0, true), Utc::now())
        .unwrap();
    let digest_with_tombstone = store.state_digest().unwrap();
    assert_eq!(store.row_states(Entity::Appointment).unwrap().len(), 2);

    // A middle page saying the horizon moved changes nothing yet; the last page does.
    store
        .apply_pulled(&page(vec![], 3, false), Utc::now())
        .unwrap();
    assert_eq!(store.row_states(Entity::Appointment).unwrap().len(), 2);
    store
        .apply_pulled(&page(vec![], 3, true), Utc::now())
        .unwrap();
    let left: Vec<Uuid> = store
        .row_states(Entity::Appointment)
        .unwrap()
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(left, [kept.id]);
    assert_ne!(store.state_digest().unwrap(), digest_with_tombstone);

    // An edit waiting in the outbox survives a full resync; everything else is dropped.
    store
        .edit_row(
            Entity::Appointment,
            kept.id,
            [("note".to_owned(), json!("Bawa laporan"))].into(),
            Utc::now(),
        )
        .unwrap();
    let other = store
        .book_appointment(&booking(Uuid::now_v7(), (11, 0), (11, 30)), Utc::now())
        .unwrap();
    let changes = pulled_back(&store, 4);
    store.acknowledge(4, &[]).unwrap();
    // Entry 4 (the note) was acknowledged... and entry 5 (the new booking) still waits.
    store
        .apply_pulled(&page(changes[..1].to_vec(), 3, true), Utc::now())
        .unwrap();
    store.begin_full_resync().unwrap();
    let left: Vec<Uuid> = store
        .row_states(Entity::Appointment)
        .unwrap()
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(left, [other.id]);
    assert_eq!(store.sync_state().unwrap().pull_cursor, 0);
    assert_eq!(store.sync_state().unwrap().pending, 1);

    // The server refuses a change to a row it purged: the desk drops its copy too.
    store
        .acknowledge(
            5,
            &[RejectedEntry {
                seq: 5,
                code: error_code::ROW_PURGED.to_owned(),
                message: "gone".to_owned(),
                fields: vec![],
            }],
        )
        .unwrap();
    assert!(store.row_states(Entity::Appointment).unwrap().is_empty());
    assert_eq!(store.state_digest().unwrap(), format!("{:016x}", 0));
    assert_eq!(
        store.refused_changes().unwrap()[0].code,
        error_code::ROW_PURGED
    );
}

#[test]
fn a_refused_change_is_discarded_and_the_record_comes_back_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    let doctor = Uuid::now_v7();
    let booked = store
        .book_appointment(&booking(doctor, (9, 0), (9, 30)), Utc::now())
        .unwrap();
    let registered = pulled_back(&store, 1);
    store.acknowledge(1, &[]).unwrap();
    store
        .apply_pulled(&page(registered.clone(), 0, true), Utc::now())
        .unwrap();
    let synced_digest = store.state_digest().unwrap();
    // A note the server refuses, then a later edit still waiting: discarding must wait.
    let edit = |store: &mut Store, note: &str| {
        store
            .edit_row(
                Entity::Appointment,
                booked.id,
                [("note".to_owned(), json!(note))].into(),
                Utc::now(),
            )
            .unwrap();
    };
    edit(&mut store, "refused note");
    store
        .acknowledge(
            2,
            &[RejectedEntry {
                seq: 2,
                code: error_code::VALIDATION_FAILED.to_owned(),
                message: "no".to_owned(),
                fields: vec![],
            }],
        )
        .unwrap();
    edit(&mut store, "waiting note");
    let blocked = store.discard_refused(2).unwrap_err();
    assert_eq!(
        codes(blocked),
        [("seq".to_owned(), "later_changes_pending".to_owned())]
    );
    // That edit is refused too; now both go, with this desk's copy of the booking.
    store
        .acknowledge(
            3,
            &[RejectedEntry {
                seq: 3,
                code: error_code::VALIDATION_FAILED.to_owned(),
                message: "no".to_owned(),
                fields: vec![],
            }],
        )
        .unwrap();
    assert!(matches!(
        store.discard_refused(1),
        Err(StoreError::NotFound(_))
    ));
    store.discard_refused(2).unwrap();
    assert!(store.refused_changes().unwrap().is_empty());
    assert!(store.row_states(Entity::Appointment).unwrap().is_empty());
    assert_eq!(store.sync_state().unwrap().pull_cursor, 0);
    // The next pull (from 0) brings the server's version back: as it was before the edits.
    store
        .apply_pulled(&page(registered, 0, true), Utc::now())
        .unwrap();
    let day = store.appointments_between(at(0, 0), at(23, 59)).unwrap();
    assert_eq!(day[0].note.as_deref(), Some("Sakit kepala berulang"));
    assert_eq!(store.state_digest().unwrap(), synced_digest);
}

#[test]
fn a_page_asked_for_before_the_cursor_was_reset_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store(&dir);
    store
        .book_appointment(&booking(Uuid::now_v7(), (9, 0), (9, 30)), Utc::now())
        .unwrap();
    let changes = pulled_back(&store, 1);
    store.acknowledge(1, &[]).unwrap();
    store
        .apply_pulled(&page(changes.clone(), 0, true), Utc::now())
        .unwrap();
    assert_eq!(store.sync_state().unwrap().pull_cursor, 1);
    // A resync reset the cursor to 0 while a page asked for from 1 was on its way.
    store.begin_full_resync().unwrap();
    let late = page(vec![(2, changes[0].1.clone())], 0, true);
    assert_eq!(store.apply_pulled_from(1, &late, Utc::now()).unwrap(), None);
    assert_eq!(store.sync_state().unwrap().pull_cursor, 0);
    assert!(store.row_states(Entity::Appointment).unwrap().is_empty());
}
