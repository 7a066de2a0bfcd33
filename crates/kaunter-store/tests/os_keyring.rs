//! The real OS keyring backend (Secret Service on Linux), exercised through the store.
//! scripts/test.sh runs this inside `dbus-run-session` with a private, unlocked gnome-keyring;
//! nextest's default filter leaves it out so nobody's own keyring is written to.

use std::sync::Arc;

use kaunter_store::{OsKeyring, SecretStore, Store, StoreError};

#[test]
fn the_data_key_lives_in_the_os_keyring_and_its_absence_is_an_error() {
    assert_eq!(
        std::env::var("KAUNTER_PRIVATE_KEYRING_SESSION").as_deref(),
        Ok("1"),
        "run this only inside a private Secret Service session (see scripts/test.sh)"
    );
    let profile = format!("test-{}", uuid::Uuid::now_v7());
    let keyring = OsKeyring::new("Kaunter test", profile.clone());
    assert!(keyring.get("data-keys").unwrap().is_none());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let store = Store::open(&path, Arc::new(keyring.clone())).unwrap();
    drop(store);
    let stored = keyring
        .get("data-keys")
        .unwrap()
        .expect("the key was saved in the keyring");
    assert!(stored.starts_with("kaunter-keys/v1:"));

    // A second handle on the same entry sees the same key and opens the database.
    let again = OsKeyring::new("Kaunter test", profile.clone());
    Store::open(&path, Arc::new(again)).unwrap();

    // Another profile has no key: the existing database refuses to open, and no key is made.
    let empty = OsKeyring::new("Kaunter test", format!("{profile}-other"));
    assert!(matches!(
        Store::open(&path, Arc::new(empty.clone())),
        Err(StoreError::KeyMissing)
    ));
    assert!(empty.get("data-keys").unwrap().is_none());
}
