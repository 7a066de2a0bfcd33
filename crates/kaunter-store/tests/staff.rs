//! People at the desk: the roster from the server (names and PIN hashes kept as envelopes),
//! sign-in checked offline, lock-out after wrong PINs, permission checks, and every outbox
//! entry naming who was signed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use common::{desk, member, pin_hash, register, roster};
use kaunter_core::access::Permission;
use kaunter_core::{IdType, NewPatient, RegistrationForm};
use kaunter_protocol::http::{StaffMember, StaffResponse};
use kaunter_store::{MemorySecretStore, PIN_ATTEMPTS, Store, StoreError};
use uuid::Uuid;

#[test]
fn people_sign_in_offline_and_every_entry_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets = Arc::new(MemorySecretStore::new());
    let mut store = desk(&path, secrets.clone());

    // Nobody has a PIN yet: one shared desk, entries name nobody.
    assert!(!store.requires_sign_in().unwrap());
    register(&mut store, "Aminah binti Ali", "900101-14-5678").unwrap();
    let siti = member(
        "Siti Pendaftar Zulaikha",
        "472913",
        &[Permission::PatientsRead, Permission::PatientsWrite],
    );
    let viewer = member("Lim Pemerhati", "135790", &[Permission::PatientsRead]);
    store.replace_staff(&roster(&[&siti, &viewer])).unwrap();
    assert!(store.requires_sign_in().unwrap());
    let names: Vec<String> = store.staff().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["Lim Pemerhati", "Siti Pendaftar Zulaikha"]);

    // From now on, nothing is written without someone signed in.
    assert!(matches!(
        register(&mut store, "Tan Mei Ling", "881224-14-6248"),
        Err(StoreError::SignInRequired)
    ));
    // Wrong PINs, then the lock, which even the right PIN does not open.
    for _ in 1..PIN_ATTEMPTS {
        assert!(matches!(
            store.sign_in(siti.user_id, "999999"),
            Err(StoreError::WrongPin)
        ));
    }
    assert!(matches!(
        store.sign_in(siti.user_id, "999998"),
        Err(StoreError::WrongPin)
    ));
    assert!(matches!(
        store.sign_in(siti.user_id, "472913"),
        Err(StoreError::PinLocked(_))
    ));
    // The viewer signs in: reads, but may not register.
    let signed = store.sign_in(viewer.user_id, "135790").unwrap();
    assert_eq!(signed.name, "Lim Pemerhati");
    assert!(store.require(Permission::PatientsRead).is_ok());
    assert!(matches!(
        register(&mut store, "Tan Mei Ling", "881224-14-6248"),
        Err(StoreError::NotAllowed("patients.write"))
    ));
    assert!(matches!(
        store.sign_in(Uuid::now_v7(), "135790"),
        Err(StoreError::NotFound(_))
    ));

    // A person who may register does; the entry names them. Signing out, the next is refused.
    let other = member(
        "Rajesh Penyambut",
        "246802",
        &[Permission::PatientsRead, Permission::PatientsWrite],
    );
    store
        .replace_staff(&roster(&[&siti, &viewer, &other]))
        .unwrap();
    store.sign_in(other.user_id, "246802").unwrap();
    register(&mut store, "Tan Mei Ling", "881224-14-6248").unwrap();
    store.sign_out().unwrap();
    assert!(matches!(
        register(&mut store, "Muthu a/l Sami", "650302-08-5011"),
        Err(StoreError::SignInRequired)
    ));
    let actors: Vec<Option<Uuid>> = store
        .pending_batch(10)
        .unwrap()
        .into_iter()
        .map(|entry| entry.actor)
        .collect();
    assert_eq!(actors, [None, Some(other.user_id)]);

    // Someone taken off the roster (set away, PIN removed) is signed out by the next roster.
    store.sign_in(other.user_id, "246802").unwrap();
    store.replace_staff(&roster(&[&viewer])).unwrap();
    assert!(store.signed_in().is_none());

    // A restart signs everyone out; the roster stays.
    store.sign_in(viewer.user_id, "135790").unwrap();
    drop(store);
    let mut store = Store::open(&path, secrets).unwrap();
    assert!(store.signed_in().is_none());
    assert!(matches!(
        register(&mut store, "Muthu a/l Sami", "650302-08-5011"),
        Err(StoreError::SignInRequired)
    ));
    assert_eq!(store.staff().unwrap().len(), 1);
    drop(store);

    // Names and PIN hashes are envelopes, never plaintext, in the file and its WAL.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(dir.path().join("desk.db-wal")).unwrap_or_default());
    for secret in [
        "Siti Pendaftar Zulaikha",
        "Lim Pemerhati",
        viewer.pin_verifier.as_str(),
        "$argon2id$",
    ] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "{secret} is in the file"
        );
    }
}

#[test]
fn a_pin_lock_survives_a_restart_and_ends_after_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets = Arc::new(MemorySecretStore::new());
    let mut store = desk(&path, secrets.clone());
    let siti = member("Siti", "472913", &[Permission::PatientsWrite]);
    store.replace_staff(&roster(&[&siti])).unwrap();
    let now = Utc::now();
    // Four wrong PINs, a restart, one more: the count was kept, so the fifth locks.
    for _ in 1..PIN_ATTEMPTS {
        assert!(matches!(
            store.sign_in_at(siti.user_id, "999999", now),
            Err(StoreError::WrongPin)
        ));
    }
    drop(store);
    let mut store = Store::open(&path, secrets.clone()).unwrap();
    assert!(matches!(
        store.sign_in_at(siti.user_id, "999999", now),
        Err(StoreError::WrongPin)
    ));
    assert!(matches!(
        store.sign_in_at(siti.user_id, "472913", now),
        Err(StoreError::PinLocked(_))
    ));
    drop(store);
    let mut store = Store::open(&path, secrets).unwrap();
    assert!(matches!(
        store.sign_in_at(siti.user_id, "472913", now + chrono::Duration::minutes(4)),
        Err(StoreError::PinLocked(_))
    ));
    // Past the lock, the right PIN signs in and the count starts again from nothing.
    let later = now + chrono::Duration::minutes(6);
    store.sign_in_at(siti.user_id, "472913", later).unwrap();
    for _ in 1..PIN_ATTEMPTS {
        assert!(matches!(
            store.sign_in_at(siti.user_id, "999999", later),
            Err(StoreError::WrongPin)
        ));
    }
    store.sign_in_at(siti.user_id, "472913", later).unwrap();
}

#[test]
fn the_roster_keeps_the_desk_guarded_and_the_signed_in_person_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let patient = |name: &str, mykad: &str| {
        NewPatient::validate(
            &RegistrationForm {
                full_name: name,
                id_type: IdType::MyKad,
                id_number: mykad,
                phone: "",
                date_of_birth: None,
                sex: None,
            },
            NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        )
        .unwrap()
    };
    let siti = member(
        "Siti",
        "472913",
        &[Permission::PatientsRead, Permission::PatientsWrite],
    );
    store.replace_staff(&roster(&[&siti])).unwrap();
    // The store itself refuses a write nobody signed in for, whichever command calls it.
    assert!(matches!(
        store.register_patient(&patient("Aminah", "900101-14-5678"), Utc::now()),
        Err(StoreError::SignInRequired)
    ));

    // Her role loses patients.write at head office: the next roster takes it away at once.
    store.sign_in(siti.user_id, "472913").unwrap();
    let demoted = StaffMember {
        permissions: vec![Permission::PatientsRead.as_str().to_owned()],
        ..siti.clone()
    };
    store.replace_staff(&roster(&[&demoted])).unwrap();
    assert_eq!(store.signed_in().unwrap().user_id, siti.user_id);
    assert!(matches!(
        store.require(Permission::PatientsWrite),
        Err(StoreError::NotAllowed("patients.write"))
    ));
    // A new PIN signs her out.
    let new_pin = StaffMember {
        pin_verifier: pin_hash("246802"),
        ..demoted.clone()
    };
    store.replace_staff(&roster(&[&new_pin])).unwrap();
    assert!(store.signed_in().is_none());

    // Her only PIN holder set away: an empty roster still asks for a sign-in (nobody can give
    // one), it does not open the desk.
    store
        .replace_staff(&StaffResponse {
            staff: Vec::new(),
            sign_in_required: true,
        })
        .unwrap();
    assert!(store.requires_sign_in().unwrap());
    assert!(matches!(
        store.require(Permission::PatientsRead),
        Err(StoreError::SignInRequired)
    ));

    // A PIN hash demanding more than a desk can afford is ignored, not run.
    let costly = StaffMember {
        pin_verifier: "$argon2id$v=19$m=4194304,t=4,p=1$YSBzYWx0IG9mIHNpeHRlZW4$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ..member("Mahal", "135790", &[Permission::PatientsRead])
    };
    store.replace_staff(&roster(&[&costly, &siti])).unwrap();
    let names: Vec<String> = store.staff().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["Siti"]);
}

#[test]
fn a_refund_by_staff_needs_a_managers_pin_and_names_both() {
    use kaunter_protocol::records::{CashKind, ringgit};
    use kaunter_store::NewCashMovement;
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let manager = member(
        "Pengurus",
        "583920",
        &[Permission::SalesWrite, Permission::SalesRefund],
    );
    let clerk = member("Kerani", "716204", &[Permission::SalesWrite]);
    store.replace_staff(&roster(&[&manager, &clerk])).unwrap();
    let cash = |kind: CashKind| NewCashMovement {
        kind,
        amount: ringgit::parse("15.00").unwrap(),
        patient_id: None,
        note: None,
    };
    let now = Utc::now();

    store.sign_in(clerk.user_id, "716204").unwrap();
    // A payment is the clerk's own to take; a refund is not.
    store.record_cash(&cash(CashKind::Payment), now).unwrap();
    assert!(matches!(
        store.record_cash(&cash(CashKind::Refund), now),
        Err(StoreError::ApprovalRequired)
    ));
    // Approving one's own refund is no approval; a wrong PIN counts as one.
    assert!(matches!(
        store.record_cash_approved(
            &cash(CashKind::Refund),
            Some((clerk.user_id, "716204")),
            now
        ),
        Err(StoreError::ApprovalRequired)
    ));
    assert!(matches!(
        store.record_cash_approved(
            &cash(CashKind::Refund),
            Some((manager.user_id, "000000")),
            now
        ),
        Err(StoreError::WrongPin)
    ));
    // Someone without sales.refund cannot approve either.
    let other_clerk = member("Kerani Dua", "402817", &[Permission::SalesWrite]);
    store
        .replace_staff(&roster(&[&manager, &clerk, &other_clerk]))
        .unwrap();
    store.sign_in(clerk.user_id, "716204").unwrap();
    assert!(matches!(
        store.record_cash_approved(
            &cash(CashKind::Refund),
            Some((other_clerk.user_id, "402817")),
            now
        ),
        Err(StoreError::NotAllowed("sales.refund"))
    ));
    let before = store.sync_state().unwrap().last_seq;
    store
        .record_cash_approved(
            &cash(CashKind::Refund),
            Some((manager.user_id, "583920")),
            now,
        )
        .unwrap();
    let entry = store.outbox_entry(before + 1).unwrap().unwrap();
    assert_eq!(entry.actor, Some(clerk.user_id));
    assert_eq!(entry.approver, Some(manager.user_id));
    // The approval signed nobody else in.
    assert_eq!(store.signed_in().unwrap().user_id, clerk.user_id);
    // Only the approved refund and the payment were written.
    assert_eq!(store.sync_state().unwrap().pending, 2);
    assert_eq!(store.cash_balance_sen().unwrap(), 0);

    // The manager refunds alone.
    store.sign_in(manager.user_id, "583920").unwrap();
    store.record_cash(&cash(CashKind::Refund), now).unwrap();
    let entry = store.outbox_entry(before + 2).unwrap().unwrap();
    assert_eq!((entry.actor, entry.approver), (Some(manager.user_id), None));
}

#[test]
fn a_desk_left_alone_signs_its_person_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let siti = member(
        "Siti Pendaftar Zulaikha",
        "472913",
        &[Permission::PatientsRead, Permission::PatientsWrite],
    );
    store.replace_staff(&roster(&[&siti])).unwrap();
    let idle = chrono::Duration::from_std(kaunter_store::IDLE_SIGN_OUT).unwrap();
    let start = Utc::now();
    store.sign_in_at(siti.user_id, "472913", start).unwrap();
    // Each thing they do starts the wait again.
    let worked = start + idle - chrono::Duration::seconds(1);
    assert!(!store.sign_out_if_idle(worked).unwrap());
    store.touch(worked);
    assert!(!store.sign_out_if_idle(start + idle).unwrap());
    // A clock turned back is activity, not a reason to sign out or to wait longer than the
    // idle time from the new time.
    let back = start - chrono::Duration::hours(3);
    assert!(!store.sign_out_if_idle(back).unwrap());
    assert!(
        !store
            .sign_out_if_idle(back + idle - chrono::Duration::seconds(1))
            .unwrap()
    );
    assert!(store.signed_in().is_some());
    // Left alone for the idle time: signed out, and the desk asks again.
    assert!(store.sign_out_if_idle(back + idle).unwrap());
    assert!(store.signed_in().is_none());
    assert!(matches!(
        store.require(Permission::PatientsRead),
        Err(StoreError::SignInRequired)
    ));
    // Nobody signed in: nothing to do.
    assert!(!store.sign_out_if_idle(back + idle * 2).unwrap());
}
