//! What the desk-and-server tests of this crate share: a desk's store enrolled from the
//! server's answer, and a registration with the network irrelevant. Each test binary uses
//! some of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use kaunter_core::{IdType, NewPatient, RegistrationForm};
use kaunter_protocol::http::EnrolResponse;
use kaunter_store::{DeskIdentity, MemorySecretStore, Store};

/// A store in `dir` enrolled with `enrolled` (its rotating credentials, when it has them, in an
/// in-memory secret store).
pub fn enrolled_store(dir: &Path, enrolled: &EnrolResponse, name: &str, server_url: &str) -> Store {
    let mut store = Store::open(dir.join("desk.db"), Arc::new(MemorySecretStore::new())).unwrap();
    store
        .enrol_with_refresh(
            DeskIdentity::from_enrolment(enrolled, name, server_url),
            &enrolled.device_token,
            enrolled.refresh_token.as_deref(),
        )
        .unwrap();
    store
}

/// A valid MyKad registration (the birth date and sex come from the number).
pub fn patient(name: &str, mykad: &str) -> NewPatient {
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
}

/// Registers a patient at the desk (must succeed).
pub fn register(store: &Mutex<Store>, name: &str, mykad: &str) {
    store
        .lock()
        .unwrap()
        .register_patient(&patient(name, mykad), Utc::now())
        .unwrap();
}
