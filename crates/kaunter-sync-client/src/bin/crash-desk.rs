//! The subject of the crash test (tests/crash.rs), not a product binary: a headless desk that
//! registers patients as fast as it can and syncs every few writes, printing `committed <id>`
//! after each commit, until it is killed. `--drain` syncs until the outbox is empty instead.
//!
//! Usage: crash-desk <desk.db> <secrets file> <run number> [--drain]
//! The desk must already be enrolled (the test does that), with its secrets in the file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../sim/file_secrets.rs"]
mod file_secrets;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeDelta, Utc};
use kaunter_core::{IdType, NewPatient, RegistrationForm};
use kaunter_store::Store;
use kaunter_sync_client::{SyncClient, sync_once};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, secrets, run, rest @ ..] = args.as_slice() else {
        eprintln!("usage: crash-desk <desk.db> <secrets file> <run number> [--drain]");
        std::process::exit(2);
    };
    let run: i64 = run.parse().expect("run number");
    let secrets = Arc::new(file_secrets::FileSecretStore::new(secrets));
    let store = Store::open(db, secrets).expect("the store opens after a kill");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "integrity {}",
        store.integrity_check().expect("integrity_check")
    )
    .unwrap();
    out.flush().unwrap();
    let identity = store.identity().expect("enrolled").clone();
    let client = SyncClient::new(&identity.server_url, &store.device_token().unwrap()).unwrap();
    let store = Mutex::new(store);

    if rest.iter().any(|arg| arg == "--drain") {
        for _ in 0..100 {
            let _ = sync_once(&store, &client).await;
            if store.lock().unwrap().sync_state().unwrap().pending == 0 {
                writeln!(out, "drained").unwrap();
                return;
            }
        }
        eprintln!("the outbox did not drain");
        std::process::exit(1);
    }

    // Unique MyKad numbers across runs: the birth date moves one day per run.
    let born = NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + TimeDelta::days(run);
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    for i in 0..10_000 {
        let ic = format!("{}14{:04}", born.format("%y%m%d"), i);
        let name = format!("Crash {run} {i}");
        let form = RegistrationForm {
            full_name: &name,
            id_type: IdType::MyKad,
            id_number: &ic,
            phone: "",
            date_of_birth: None,
            sex: None,
        };
        let patient = NewPatient::validate(&form, today).expect("a valid patient");
        let view = store
            .lock()
            .unwrap()
            .register_patient(&patient, Utc::now())
            .expect("register");
        writeln!(out, "committed {}", view.id).unwrap();
        out.flush().unwrap();
        if i % 7 == 6 {
            let _ = sync_once(&store, &client).await;
        }
    }
}
