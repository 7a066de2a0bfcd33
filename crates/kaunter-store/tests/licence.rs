//! The licence lease at the desk, offline: verified against the key the desk pinned, for this
//! desk only, never replaced by an older one; full access, then read-only, then suspended on
//! the lease's own schedule, judged at the latest time the desk has ever seen (a clock turned
//! back buys nothing); kept across restarts; a lease removed from the database leaves the desk
//! read-only, never open. Reading and exporting are never refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{desk, lease, patient_form, sign};
use ed25519_dalek::SigningKey;
use kaunter_core::SearchQuery;
use kaunter_core::subscription::Access;
use kaunter_store::{MemorySecretStore, Store, StoreError};

fn write(store: &mut Store, n: u32, at: DateTime<Utc>) -> Result<(), StoreError> {
    let mykad = format!("900101-14-{:04}", 1000 + n);
    store
        .register_patient(&patient_form("Pesakit Ujian", &mykad), at)
        .map(|_| ())
}

fn rejected(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::LicenceRejected(why)) => why,
        other => panic!("expected the lease to be refused, got {other:?}"),
    }
}

#[test]
fn the_desk_enforces_its_lease_offline_and_a_clock_turned_back_buys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets = Arc::new(MemorySecretStore::new());
    let mut store = desk(&path, secrets.clone());
    let t0 = Utc::now().trunc_subsecs(0);
    let server = SigningKey::from_bytes(&[7u8; 32]);

    // Before any lease (a desk enrolled before leases existed): full access.
    assert_eq!(store.licence_status(t0).unwrap().access, Access::Full);
    write(&mut store, 1, t0).unwrap();

    // The first lease pins the server's key.
    store
        .accept_licence(&sign(&server, &lease(&store, t0, 30)), t0)
        .unwrap();
    let status = store.licence_status(t0).unwrap();
    assert_eq!(status.access, Access::Full);
    assert_eq!(status.licence.as_ref().unwrap().modules, ["CLINIC"]);

    // Refused, keeping the lease held: tampered, another key, another desk, another layout.
    let mut tampered = sign(&server, &lease(&store, t0, 3650));
    tampered.payload = sign(&server, &lease(&store, t0, 3651)).payload;
    assert!(rejected(store.accept_licence(&tampered, t0)).contains("signature"));
    let stranger = SigningKey::from_bytes(&[9u8; 32]);
    assert!(
        rejected(store.accept_licence(&sign(&stranger, &lease(&store, t0, 3650)), t0))
            .contains("another key")
    );
    let mut elsewhere = lease(&store, t0, 3650);
    elsewhere.device_id = uuid::Uuid::now_v7();
    assert!(
        rejected(store.accept_licence(&sign(&server, &elsewhere), t0)).contains("another desk")
    );
    let mut future_layout = lease(&store, t0, 3650);
    future_layout.version = 2;
    rejected(store.accept_licence(&sign(&server, &future_layout), t0));
    let held = store.licence_status(t0).unwrap().licence.unwrap();
    assert_eq!(held.full_until, t0 + Duration::days(30));

    // A newer lease replaces it; an older one replayed afterwards does not.
    let t1 = t0 + Duration::days(1);
    store
        .accept_licence(&sign(&server, &lease(&store, t1, 2)), t1)
        .unwrap();
    store
        .accept_licence(&sign(&server, &lease(&store, t0, 30)), t1)
        .unwrap();
    let held = store.licence_status(t1).unwrap().licence.unwrap();
    assert_eq!(held.issued_at, t1);
    let full_until = t1 + Duration::days(2);

    // Full access until full_until; then read-only; a week later suspended. Reading never stops.
    write(&mut store, 2, full_until - Duration::seconds(1)).unwrap();
    assert!(matches!(
        write(&mut store, 3, full_until),
        Err(StoreError::SubscriptionReadOnly)
    ));
    assert_eq!(
        store.licence_status(full_until).unwrap().access,
        Access::ReadOnly
    );
    // The clock turned back to before the lease ran out: still read-only.
    assert!(matches!(
        write(&mut store, 3, t0),
        Err(StoreError::SubscriptionReadOnly)
    ));
    assert_eq!(store.licence_status(t0).unwrap().access, Access::ReadOnly);
    let suspended = full_until + Duration::days(7);
    assert_eq!(
        store.licence_status(suspended).unwrap().access,
        Access::Suspended
    );
    assert!(matches!(
        write(&mut store, 3, suspended),
        Err(StoreError::SubscriptionSuspended)
    ));
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        2
    );

    // A restart keeps it all, the latest time seen included.
    drop(store);
    let mut store = Store::open(&path, secrets.clone()).unwrap();
    assert_eq!(store.licence_status(t0).unwrap().access, Access::Suspended);
    assert!(matches!(
        write(&mut store, 3, t0),
        Err(StoreError::SubscriptionSuspended)
    ));

    // Suspended, the desk still exports everything it holds.
    let export = dir.path().join("export");
    let files = store.export_csv(&export, false).unwrap();
    let patients = files
        .iter()
        .find(|file| file.path.ends_with("patients.csv"))
        .unwrap();
    assert_eq!(patients.records, 2);
    let text = std::fs::read_to_string(&patients.path).unwrap();
    assert!(
        text.starts_with("\u{feff}id,branch_id,full_name,"),
        "{text}"
    );
    assert_eq!(text.matches("Pesakit Ujian").count(), 2);
    assert!(
        !files
            .iter()
            .any(|file| file.path.ends_with("clinical_entries.csv"))
    );

    // A new lease after payment opens it again (issued at the desk's latest time or after).
    let paid = suspended + Duration::hours(1);
    store
        .accept_licence(&sign(&server, &lease(&store, paid, 30)), paid)
        .unwrap();
    write(&mut store, 3, paid).unwrap();
    drop(store);

    // The lease removed from the database: the desk stays shut for writes, not open.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("DELETE FROM meta WHERE key = 'licence'", [])
        .unwrap();
    drop(raw);
    let mut store = Store::open(&path, secrets).unwrap();
    assert_eq!(
        store.licence_status(paid).unwrap().access,
        Access::Suspended
    );
    assert!(matches!(
        write(&mut store, 4, paid),
        Err(StoreError::SubscriptionSuspended)
    ));
    assert_eq!(
        store.search_patients(&SearchQuery::All, 10).unwrap().len(),
        3
    );
}

#[test]
fn removing_the_licence_rows_from_the_database_does_not_reopen_the_desk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let secrets = Arc::new(MemorySecretStore::new());
    let mut store = desk(&path, secrets.clone());
    let t0 = Utc::now().trunc_subsecs(0);
    let server = SigningKey::from_bytes(&[7u8; 32]);
    store
        .accept_licence(&sign(&server, &lease(&store, t0, 1)), t0)
        .unwrap();
    let later = t0 + Duration::days(3);
    assert_eq!(
        store.licence_status(later).unwrap().access,
        Access::ReadOnly
    );
    drop(store);

    // Every licence row removed, and the clock turned back to the lease's day: the pin kept in
    // the OS keyring still holds the desk shut for writes.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("DELETE FROM meta WHERE key LIKE 'licence%'", [])
        .unwrap();
    drop(raw);
    let mut store = Store::open(&path, secrets.clone()).unwrap();
    assert_eq!(store.licence_status(t0).unwrap().access, Access::Suspended);
    assert!(matches!(
        write(&mut store, 1, t0),
        Err(StoreError::SubscriptionSuspended)
    ));
    // Another server's lease is still refused: the pin was not lost with the rows.
    let stranger = SigningKey::from_bytes(&[9u8; 32]);
    assert!(
        rejected(store.accept_licence(&sign(&stranger, &lease(&store, later, 30)), later))
            .contains("another key")
    );
    // The real server's next lease opens it again.
    store
        .accept_licence(&sign(&server, &lease(&store, later, 30)), later)
        .unwrap();
    write(&mut store, 1, later).unwrap();
}

#[test]
fn a_clock_once_set_far_ahead_does_not_lock_a_paying_desk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = desk(
        &dir.path().join("desk.db"),
        Arc::new(MemorySecretStore::new()),
    );
    let t0 = Utc::now().trunc_subsecs(0);
    let server = SigningKey::from_bytes(&[7u8; 32]);
    store
        .accept_licence(&sign(&server, &lease(&store, t0, 30)), t0)
        .unwrap();
    // Someone types next year for a minute: the desk sees it, and is read-only meanwhile.
    let typo = t0 + Duration::days(365);
    assert_eq!(
        store.licence_status(typo).unwrap().access,
        Access::Suspended
    );
    // The clock is put right and the next round brings a lease: the server's time wins.
    let t1 = t0 + Duration::hours(1);
    store
        .accept_licence(&sign(&server, &lease(&store, t1, 30)), t1)
        .unwrap();
    assert_eq!(store.licence_status(t1).unwrap().access, Access::Full);
    write(&mut store, 1, t1).unwrap();
}
